# Copyright (c) amkd-mmrazor contributors.
"""ResNet for 32x32 inputs as used throughout the KD literature.

Follows the RepDistiller/CRD/DKD networks (resnet8 ... resnet110, resnet8x4,
resnet32x4): a 3x3 stem, three stages of BasicBlocks with strides 1, 2, 2 and
1x1-conv + BN shortcuts whenever the shape changes.
"""
from typing import Optional, Sequence, Tuple, Union

import torch
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.registry import MODELS
from torch import nn

from .utils import (DEFAULT_INIT_CFG, freeze_norm_stats,
                    normalize_out_indices)


def _conv3x3(in_channels: int, out_channels: int,
             stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(
        in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Post-activation residual block: conv-BN-ReLU-conv-BN, add, ReLU.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Stride of the first conv. Defaults to 1.
    """

    def __init__(self, in_channels: int, out_channels: int,
                 stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample: Optional[nn.Sequential] = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(
                    in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block.

        Args:
            x (torch.Tensor): Input of shape (N, C_in, H, W).

        Returns:
            torch.Tensor: Output of shape (N, C_out, H / stride, W / stride).
        """
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


@MODELS.register_module()
class CIFARResNet(BaseBackbone):
    """CIFAR ResNet of depth 6n+2 (RepDistiller convention).

    Parameter names (``conv1``, ``bn1``, ``layer{i}.{j}.conv1`` ...,
    ``downsample.0/1``) match RepDistiller's ``models/resnet.py`` so its
    released teacher checkpoints load after adding the ``backbone.`` prefix.

    Args:
        depth (int): Network depth, 6n+2 (8, 14, 20, 32, 44, 56, 110, ...).
        widths (Sequence[int]): Stem width followed by the three stage
            widths. ``(16, 16, 32, 64)`` gives resnet8..resnet110 and
            ``(32, 64, 128, 256)`` the x4 variants. Defaults to
            ``(16, 16, 32, 64)``.
        in_channels (int): Input image channels. Defaults to 3.
        out_indices (Sequence[int]): Stages whose outputs are returned.
            Defaults to ``(2, )``, the last stage.
        frozen_stages (int): Stages to freeze (no grad, eval mode); 0 freezes
            the stem only, ``i > 0`` the stem and stages 1..i, -1 nothing.
            Defaults to -1.
        norm_eval (bool): Keep every BatchNorm in eval mode during training,
            freezing running statistics. Defaults to False.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to Kaiming fan-out convs and unit BatchNorm.
    """

    num_stages = 3

    def __init__(self,
                 depth: int,
                 widths: Sequence[int] = (16, 16, 32, 64),
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (2, ),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 init_cfg: Optional[Union[dict, list]] = DEFAULT_INIT_CFG
                 ) -> None:
        super().__init__(init_cfg)
        if depth < 8 or (depth - 2) % 6 != 0:
            raise ValueError(
                f'CIFARResNet depth must be 6n+2 with n >= 1 (e.g. 8, 14, 20, '
                f'32, 44, 56, 110), got {depth}')
        if len(widths) != self.num_stages + 1:
            raise ValueError('widths must hold the stem width and 3 stage '
                             f'widths, got {tuple(widths)}')
        if not -1 <= frozen_stages <= self.num_stages:
            raise ValueError(f'frozen_stages must be in [-1, '
                             f'{self.num_stages}], got {frozen_stages}')
        self.depth = depth
        self.out_indices = normalize_out_indices(out_indices, self.num_stages)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval

        self.conv1 = _conv3x3(in_channels, widths[0])
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)

        blocks_per_stage = (depth - 2) // 6
        self.layer_names = []
        stage_in = widths[0]
        for i, stage_out in enumerate(widths[1:]):
            stride = 1 if i == 0 else 2
            blocks = [BasicBlock(stage_in, stage_out, stride)]
            blocks += [
                BasicBlock(stage_out, stage_out)
                for _ in range(blocks_per_stage - 1)
            ]
            name = f'layer{i + 1}'
            self.add_module(name, nn.Sequential(*blocks))
            self.layer_names.append(name)
            stage_in = stage_out
        self.out_channels = tuple(widths[1 + i] for i in self.out_indices)

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

    def train(self, mode: bool = True) -> 'CIFARResNet':
        """Set train mode while keeping frozen stages and norms in eval.

        Args:
            mode (bool): Whether to set training mode. Defaults to True.

        Returns:
            CIFARResNet: self.
        """
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            freeze_norm_stats(self)
        return self
