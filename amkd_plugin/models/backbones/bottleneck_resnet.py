# Copyright (c) amkd-mmrazor contributors.
"""Bottleneck ResNet-50/101/152 for 32x32 inputs (RepDistiller ``ResNet50``).

ImageNet widths (64 ... 512, expansion 4) on a CIFAR stem: one stride-1 3x3
conv and no max pooling, so stages run at 32, 16, 8 and 4 pixels.
"""
from typing import Optional, Sequence, Tuple, Union

import torch
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.registry import MODELS
from torch import nn

from .utils import (DEFAULT_INIT_CFG, freeze_norm_stats,
                    normalize_out_indices)


class Bottleneck(nn.Module):
    """1x1-3x3-1x1 bottleneck with the stride on the 3x3 conv.

    conv-BN-ReLU, conv-BN-ReLU, conv-BN, add the shortcut, ReLU; the
    shortcut is a 1x1 conv + BN whenever the shape changes.

    Args:
        in_channels (int): Input channels.
        mid_channels (int): Channels of the 3x3 conv; the output has
            ``expansion`` times as many.
        stride (int): Stride of the 3x3 conv and of the shortcut.
            Defaults to 1.
    """

    expansion = 4

    def __init__(self, in_channels: int, mid_channels: int,
                 stride: int = 1) -> None:
        super().__init__()
        out_channels = mid_channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, mid_channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid_channels)
        self.conv2 = nn.Conv2d(
            mid_channels, mid_channels, 3, stride=stride, padding=1,
            bias=False)
        self.bn2 = nn.BatchNorm2d(mid_channels)
        self.conv3 = nn.Conv2d(mid_channels, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        # Named `shortcut` to keep RepDistiller's state_dict keys.
        self.shortcut: Optional[nn.Sequential] = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(
                    in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block.

        Args:
            x (torch.Tensor): Input of shape (N, C_in, H, W).

        Returns:
            torch.Tensor: Output of shape
            (N, 4 * mid_channels, H / stride, W / stride).
        """
        identity = x if self.shortcut is None else self.shortcut(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


@MODELS.register_module()
class CIFARBottleneckResNet(BaseBackbone):
    """CIFAR bottleneck ResNet (RepDistiller ``models/resnetv2.py``).

    Despite the reference's file name this is a post-activation ResNet.
    Parameter names (``conv1``, ``bn1``, ``layer{i}.{j}.conv1`` ...,
    ``shortcut.0/1``) match RepDistiller so its released ``ResNet50``
    checkpoint loads after adding the ``backbone.`` prefix.

    Args:
        depth (int): Network depth: 50, 101 or 152.
        in_channels (int): Input image channels. Defaults to 3.
        out_indices (Sequence[int]): Stages whose outputs are returned.
            Defaults to ``(3, )``, the last stage.
        frozen_stages (int): Stages to freeze (no grad, eval mode); 0 freezes
            the stem only, ``i > 0`` the stem and stages 1..i, -1 nothing.
            Defaults to -1.
        norm_eval (bool): Keep every BatchNorm in eval mode during training,
            freezing running statistics. Defaults to False.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to Kaiming fan-out convs and unit BatchNorm.
    """

    arch_settings = {
        50: (3, 4, 6, 3),
        101: (3, 4, 23, 3),
        152: (3, 8, 36, 3),
    }
    stage_widths = (64, 128, 256, 512)
    num_stages = 4

    def __init__(self,
                 depth: int,
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (3, ),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 init_cfg: Optional[Union[dict, list]] = DEFAULT_INIT_CFG
                 ) -> None:
        super().__init__(init_cfg)
        if depth not in self.arch_settings:
            raise ValueError(f'CIFARBottleneckResNet depth must be one of '
                             f'{sorted(self.arch_settings)}, got {depth}')
        if not -1 <= frozen_stages <= self.num_stages:
            raise ValueError(f'frozen_stages must be in [-1, '
                             f'{self.num_stages}], got {frozen_stages}')
        self.depth = depth
        self.out_indices = normalize_out_indices(out_indices, self.num_stages)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval

        stem_channels = self.stage_widths[0]
        self.conv1 = nn.Conv2d(
            in_channels, stem_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_channels)
        self.relu = nn.ReLU(inplace=True)

        self.layer_names = []
        stage_in = stem_channels
        for i, (num_blocks, width) in enumerate(
                zip(self.arch_settings[depth], self.stage_widths)):
            blocks = [Bottleneck(stage_in, width, 1 if i == 0 else 2)]
            stage_in = width * Bottleneck.expansion
            blocks += [
                Bottleneck(stage_in, width) for _ in range(num_blocks - 1)
            ]
            name = f'layer{i + 1}'
            self.add_module(name, nn.Sequential(*blocks))
            self.layer_names.append(name)
        self.out_channels = tuple(self.stage_widths[i] * Bottleneck.expansion
                                  for i in self.out_indices)

        self._freeze_stages()

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        frozen = [self.conv1, self.bn1] + [
            getattr(self, name)
            for name in self.layer_names[:self.frozen_stages]
        ]
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Extract features.

        Args:
            x (torch.Tensor): Images of shape (N, C, H, W).

        Returns:
            tuple[torch.Tensor, ...]: Outputs of the stages in
            ``out_indices``; stage i has stride ``2**i`` relative to input.
        """
        x = self.relu(self.bn1(self.conv1(x)))
        outs = []
        for i, name in enumerate(self.layer_names):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def train(self, mode: bool = True) -> 'CIFARBottleneckResNet':
        """Set train mode while keeping frozen stages and norms in eval.

        Args:
            mode (bool): Whether to set training mode. Defaults to True.

        Returns:
            CIFARBottleneckResNet: self.
        """
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            freeze_norm_stats(self)
        return self
