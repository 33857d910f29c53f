# Copyright (c) amkd-mmrazor contributors.
"""ResNet for 32x32 inputs as used throughout the KD literature.

Follows the RepDistiller/CRD/DKD networks (resnet8 ... resnet110, resnet8x4,
resnet32x4): a 3x3 stem, three stages of BasicBlocks with strides 1, 2, 2 and
1x1-conv + BN shortcuts whenever the shape changes.
"""
from typing import Optional, Sequence, Union

import torch
from mmpretrain.registry import MODELS
from torch import nn

from .utils import DEFAULT_INIT_CFG, CIFARBackbone, projection_shortcut


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
        self.downsample = projection_shortcut(in_channels, out_channels,
                                              stride)

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
class CIFARResNet(CIFARBackbone):
    """CIFAR ResNet of depth 6n+2 (RepDistiller convention).

    Parameter names (``conv1``, ``bn1``, ``layer{i}.{j}.conv1`` ...,
    ``downsample.0/1``) match RepDistiller's ``models/resnet.py`` so its
    released teacher checkpoints load after adding the ``backbone.`` prefix.
    Stage i's output has stride ``2**i`` relative to the input.

    Args:
        depth (int): Network depth, 6n+2 (8, 14, 20, 32, 44, 56, 110, ...).
        widths (Sequence[int]): Stem width followed by the three stage
            widths. ``(16, 16, 32, 64)`` gives resnet8..resnet110 and
            ``(32, 64, 128, 256)`` the x4 variants. Defaults to
            ``(16, 16, 32, 64)``.
        in_channels (int): Input image channels. Defaults to 3.
        out_indices (Sequence[int]): Stages whose outputs are returned.
            Defaults to ``(2, )``, the last stage.
        frozen_stages (int): Stages to freeze, as in
            :class:`CIFARBackbone`. Defaults to -1.
        norm_eval (bool): Keep BatchNorm statistics frozen in training.
            Defaults to False.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to Kaiming fan-out convs and unit BatchNorm.
    """

    num_stages = 3
    stem_names = ('conv1', 'bn1')
    stage_names = ('layer1', 'layer2', 'layer3')

    def __init__(self,
                 depth: int,
                 widths: Sequence[int] = (16, 16, 32, 64),
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (2, ),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 init_cfg: Optional[Union[dict, list]] = DEFAULT_INIT_CFG
                 ) -> None:
        if depth < 8 or (depth - 2) % 6 != 0:
            raise ValueError(
                f'CIFARResNet depth must be 6n+2 with n >= 1 (e.g. 8, 14, 20, '
                f'32, 44, 56, 110), got {depth}')
        if len(widths) != self.num_stages + 1:
            raise ValueError('widths must hold the stem width and 3 stage '
                             f'widths, got {tuple(widths)}')
        super().__init__(out_indices, frozen_stages, norm_eval, init_cfg)
        self.depth = depth

        self.conv1 = _conv3x3(in_channels, widths[0])
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)

        blocks_per_stage = (depth - 2) // 6
        stage_in = widths[0]
        for i, (name, stage_out) in enumerate(
                zip(self.stage_names, widths[1:])):
            stride = 1 if i == 0 else 2
            blocks = [BasicBlock(stage_in, stage_out, stride)]
            blocks += [
                BasicBlock(stage_out, stage_out)
                for _ in range(blocks_per_stage - 1)
            ]
            self.add_module(name, nn.Sequential(*blocks))
            stage_in = stage_out
        self.out_channels = tuple(widths[1 + i] for i in self.out_indices)

        self._freeze_stages()

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        """Apply conv1-BN-ReLU, see :meth:`CIFARBackbone.forward_stem`."""
        return self.relu(self.bn1(self.conv1(x)))
