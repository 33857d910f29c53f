# Copyright (c) amkd-mmrazor contributors.
"""MobileNetV2 for 32x32 inputs (RepDistiller ``mobile_half``).

The variant of "Knowledge Distillation via Route Constrained Optimization"
used by the KD benchmark: a stride-2 stem, seven groups of inverted
residuals with ImageNet strides after the stem, and a 1x1 conv to 1280
channels, so 32x32 inputs end at 2x2.
"""
from typing import Optional, Sequence, Union

import torch
from mmpretrain.registry import MODELS
from torch import nn

from .utils import DEFAULT_INIT_CFG, CIFARBackbone


def _conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int,
                  stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class InvertedResidual(nn.Module):
    """Expand (1x1) - depthwise (3x3) - linear project (1x1), each with BN.

    Unlike torchvision, the 1x1 expansion exists even for an expand ratio of
    1, as in the reference. The input is added back when stride is 1 and
    the width is unchanged.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Stride of the depthwise conv, 1 or 2.
        expand_ratio (int): Hidden width as a multiple of ``in_channels``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 expand_ratio: int) -> None:
        super().__init__()
        hidden = in_channels * expand_ratio
        self.use_residual = stride == 1 and in_channels == out_channels
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(
                hidden,
                hidden,
                3,
                stride=stride,
                padding=1,
                groups=hidden,
                bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block.

        Args:
            x (torch.Tensor): Input of shape (N, C_in, H, W).

        Returns:
            torch.Tensor: Output (not activated) of shape
            (N, C_out, H / stride, W / stride).
        """
        out = self.conv(x)
        return x + out if self.use_residual else out


@MODELS.register_module()
class CIFARMobileNetV2(CIFARBackbone):
    """CIFAR MobileNetV2 (RepDistiller ``models/mobilenetv2.py``).

    Parameter names (``conv1.0/1``, ``blocks.{i}.{j}.conv.{k}``,
    ``conv2.0/1``) match RepDistiller so its checkpoints load after adding
    the ``backbone.`` prefix. Stages 0-6 are the seven inverted-residual
    groups, stage 7 the final 1x1 conv. On 32x32 inputs stages 0-1 are
    16x16, 2 is 8x8, 3-4 are 4x4 and 5-7 are 2x2.

    Args:
        widen_factor (float): Width multiplier of the stem and the blocks;
            the final conv keeps 1280 channels unless it is above 1.
            Defaults to 0.5 (``mobile_half``).
        expand_ratio (int): Expand ratio T of every group but the first,
            which uses 1. Defaults to 6.
        in_channels (int): Input image channels. Defaults to 3.
        out_indices (Sequence[int]): Stages whose outputs are returned.
            Defaults to ``(7, )``, the final conv.
        frozen_stages (int): Stages to freeze, as in
            :class:`CIFARBackbone`. Defaults to -1.
        norm_eval (bool): Keep BatchNorm statistics frozen in training.
            Defaults to False.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to Kaiming fan-out convs and unit BatchNorm.
    """

    # (width, blocks, stride of the first block) of the seven groups.
    arch_setting = ((16, 1, 1), (24, 2, 1), (32, 3, 2), (64, 4, 2),
                    (96, 3, 1), (160, 3, 2), (320, 1, 1))
    num_stages = 8
    stem_names = ('conv1', )
    stage_names = tuple(f'blocks.{i}'
                        for i in range(len(arch_setting))) + ('conv2', )

    def __init__(self,
                 widen_factor: float = 0.5,
                 expand_ratio: int = 6,
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (7, ),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 init_cfg: Optional[Union[dict, list]] = DEFAULT_INIT_CFG
                 ) -> None:
        super().__init__(out_indices, frozen_stages, norm_eval, init_cfg)
        self.widen_factor = widen_factor

        stage_in = int(32 * widen_factor)
        self.conv1 = _conv_bn_relu(in_channels, stage_in, 3, stride=2)
        stage_channels = []
        blocks = []
        for i, (width, num_blocks, stride) in enumerate(self.arch_setting):
            stage_out = int(width * widen_factor)
            ratio = 1 if i == 0 else expand_ratio
            group = []
            for j in range(num_blocks):
                group.append(
                    InvertedResidual(stage_in, stage_out,
                                     stride if j == 0 else 1, ratio))
                stage_in = stage_out
            blocks.append(nn.Sequential(*group))
            stage_channels.append(stage_out)
        self.blocks = nn.ModuleList(blocks)
        last_channels = int(1280 * max(widen_factor, 1.))
        self.conv2 = _conv_bn_relu(stage_in, last_channels, 1)
        stage_channels.append(last_channels)
        self.out_channels = tuple(stage_channels[i] for i in self.out_indices)

        self._freeze_stages()

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        """Apply conv1, a conv-BN-ReLU of stride 2."""
        return self.conv1(x)
