# Copyright (c) amkd-mmrazor contributors.
"""Wide ResNet for 32x32 inputs (WRN-16-2, WRN-40-2, ... as in RepDistiller).

Depth 6n+4, pre-activation (BN-ReLU-conv) blocks, stage widths
16k / 32k / 64k after a 16-channel 3x3 stem, and a final BN + ReLU.
"""
from collections import OrderedDict
from typing import Optional, Sequence, Union

import torch
from mmpretrain.registry import MODELS
from torch import nn

from .utils import DEFAULT_INIT_CFG, CIFARBackbone


class PreActBlock(nn.Module):
    """Pre-activation wide block: BN-ReLU-conv-BN-ReLU-(dropout)-conv, add.

    When the shape changes, the shortcut is a 1x1 conv applied to the
    activated input, as in the original WRN.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Stride of the first conv and of the shortcut.
        drop_rate (float): Dropout probability between the two convs.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 drop_rate: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(
            in_channels, out_channels, 3, stride=stride, padding=1,
            bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu2 = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(drop_rate)
        self.conv2 = nn.Conv2d(
            out_channels, out_channels, 3, padding=1, bias=False)
        # camelCase keeps RepDistiller's state_dict keys.
        self.convShortcut: Optional[nn.Conv2d] = None
        if stride != 1 or in_channels != out_channels:
            self.convShortcut = nn.Conv2d(
                in_channels, out_channels, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block.

        Args:
            x (torch.Tensor): Input of shape (N, C_in, H, W).

        Returns:
            torch.Tensor: Output (not activated) of shape
            (N, C_out, H / stride, W / stride).
        """
        activated = self.relu1(self.bn1(x))
        if self.convShortcut is None:
            shortcut = x
        else:
            shortcut = self.convShortcut(activated)
        out = self.relu2(self.bn2(self.conv1(activated)))
        out = self.conv2(self.dropout(out))
        return out + shortcut


@MODELS.register_module()
class CIFARWideResNet(CIFARBackbone):
    """CIFAR Wide ResNet WRN-d-k (RepDistiller convention).

    Parameter names (``conv1``, ``block{i}.layer.{j}.*``, ``bn1``) match
    RepDistiller's ``models/wrn.py`` so its released teacher checkpoints
    load after adding the ``backbone.`` prefix. Stage i's output has stride
    ``2**i`` relative to the input. Unlike the other backbones it has no
    ``frozen_stages`` argument and never freezes anything.

    Args:
        depth (int): Network depth d, 6n+4 (10, 16, 22, 28, 40, ...).
        widen_factor (int): Width multiplier k. Defaults to 1.
        drop_rate (float): Dropout probability inside each block.
            Defaults to 0.
        in_channels (int): Input image channels. Defaults to 3.
        out_indices (Sequence[int]): Stages whose outputs are returned.
            The last stage's output includes the final BN + ReLU; earlier
            ones are the raw (pre-activation) residual sums. Defaults to
            ``(2, )``.
        norm_eval (bool): Keep BatchNorm statistics frozen in training.
            Defaults to False.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to Kaiming fan-out convs and unit BatchNorm.
    """

    num_stages = 3
    # No stem_names: without frozen_stages nothing is ever frozen.
    stage_names = ('block1', 'block2', 'block3')

    def __init__(self,
                 depth: int,
                 widen_factor: int = 1,
                 drop_rate: float = 0.,
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (2, ),
                 norm_eval: bool = False,
                 init_cfg: Optional[Union[dict, list]] = DEFAULT_INIT_CFG
                 ) -> None:
        if depth < 10 or (depth - 4) % 6 != 0:
            raise ValueError(
                f'CIFARWideResNet depth must be 6n+4 with n >= 1 (e.g. 10, '
                f'16, 22, 28, 40), got {depth}')
        super().__init__(out_indices, norm_eval=norm_eval, init_cfg=init_cfg)
        self.depth = depth
        self.widen_factor = widen_factor

        widths = [16] + [w * widen_factor for w in (16, 32, 64)]
        self.conv1 = nn.Conv2d(
            in_channels, widths[0], 3, padding=1, bias=False)
        blocks_per_stage = (depth - 4) // 6
        for i, name in enumerate(self.stage_names):
            stage_in, stage_out = widths[i], widths[i + 1]
            blocks = [
                PreActBlock(stage_in if j == 0 else stage_out, stage_out,
                            1 if i == 0 or j > 0 else 2, drop_rate)
                for j in range(blocks_per_stage)
            ]
            self.add_module(
                name, nn.Sequential(OrderedDict(layer=nn.Sequential(*blocks))))
        # Pre-activation blocks leave the last output un-normalized.
        self.bn1 = nn.BatchNorm2d(widths[-1])
        self.relu = nn.ReLU(inplace=True)
        self.out_channels = tuple(widths[1 + i] for i in self.out_indices)

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        """Apply conv1 alone, see :meth:`CIFARBackbone.forward_stem`."""
        return self.conv1(x)

    def forward_stage(self, index: int, x: torch.Tensor) -> torch.Tensor:
        """Apply a stage, see :meth:`CIFARBackbone.forward_stage`.

        The last stage also applies the final BN + ReLU.
        """
        x = super().forward_stage(index, x)
        if index == self.num_stages - 1:
            x = self.relu(self.bn1(x))
        return x
