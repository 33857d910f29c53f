# Copyright (c) amkd-mmrazor contributors.
"""Bottleneck ResNet-50/101/152 for 32x32 inputs (RepDistiller ``ResNet50``).

ImageNet widths (64 ... 512, expansion 4) on a CIFAR stem: one stride-1 3x3
conv and no max pooling, so stages run at 32, 16, 8 and 4 pixels.
"""
from typing import Optional, Sequence, Union

import torch
from mmpretrain.registry import MODELS
from torch import nn

from .utils import DEFAULT_INIT_CFG, CIFARBackbone, projection_shortcut


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
        self.shortcut = projection_shortcut(in_channels, out_channels, stride)

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
class CIFARBottleneckResNet(CIFARBackbone):
    """CIFAR bottleneck ResNet (RepDistiller ``models/resnetv2.py``).

    Despite the reference's file name this is a post-activation ResNet.
    Parameter names (``conv1``, ``bn1``, ``layer{i}.{j}.conv1`` ...,
    ``shortcut.0/1``) match RepDistiller so its released ``ResNet50``
    checkpoint loads after adding the ``backbone.`` prefix. Stage i's output
    has stride ``2**i`` relative to the input.

    Args:
        depth (int): Network depth: 50, 101 or 152.
        in_channels (int): Input image channels. Defaults to 3.
        out_indices (Sequence[int]): Stages whose outputs are returned.
            Defaults to ``(3, )``, the last stage.
        frozen_stages (int): Stages to freeze, as in
            :class:`CIFARBackbone`. Defaults to -1.
        norm_eval (bool): Keep BatchNorm statistics frozen in training.
            Defaults to False.
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
    stem_names = ('conv1', 'bn1')
    stage_names = ('layer1', 'layer2', 'layer3', 'layer4')

    def __init__(self,
                 depth: int,
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (3, ),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 init_cfg: Optional[Union[dict, list]] = DEFAULT_INIT_CFG
                 ) -> None:
        if depth not in self.arch_settings:
            raise ValueError(f'CIFARBottleneckResNet depth must be one of '
                             f'{sorted(self.arch_settings)}, got {depth}')
        super().__init__(out_indices, frozen_stages, norm_eval, init_cfg)
        self.depth = depth

        stem_channels = self.stage_widths[0]
        self.conv1 = nn.Conv2d(
            in_channels, stem_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_channels)
        self.relu = nn.ReLU(inplace=True)

        stage_in = stem_channels
        for i, (name, num_blocks, width) in enumerate(
                zip(self.stage_names, self.arch_settings[depth],
                    self.stage_widths)):
            blocks = [Bottleneck(stage_in, width, 1 if i == 0 else 2)]
            stage_in = width * Bottleneck.expansion
            blocks += [
                Bottleneck(stage_in, width) for _ in range(num_blocks - 1)
            ]
            self.add_module(name, nn.Sequential(*blocks))
        self.out_channels = tuple(self.stage_widths[i] * Bottleneck.expansion
                                  for i in self.out_indices)

        self._freeze_stages()

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        """Apply conv1-BN-ReLU, see :meth:`CIFARBackbone.forward_stem`."""
        return self.relu(self.bn1(self.conv1(x)))
