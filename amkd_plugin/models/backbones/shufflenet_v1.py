# Copyright (c) amkd-mmrazor contributors.
"""ShuffleNetV1 for 32x32 inputs (RepDistiller ``ShuffleV1``).

A 1x1 stem conv to 24 channels without stride or pooling, then three stages
of ShuffleNet units whose first unit halves the resolution, so 32x32 inputs
end at 4x4.
"""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.models.utils import channel_shuffle
from mmpretrain.registry import MODELS
from torch import nn

from .utils import (DEFAULT_INIT_CFG, freeze_norm_stats,
                    normalize_out_indices)


class ShuffleUnit(nn.Module):
    """ShuffleNetV1 unit as implemented by the KD benchmark.

    Grouped 1x1 conv-BN-ReLU, channel shuffle, depthwise 3x3 conv-BN-ReLU,
    grouped 1x1 conv-BN; then ReLU of the sum with the input (stride 1) or
    of the concatenation with a 3x3 average pool of the input (stride 2).
    The ReLU after the depthwise conv is the reference's, not the paper's.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Channels of the residual branch; a stride-2
            unit outputs ``in_channels + out_channels``.
        stride (int): Stride of the depthwise conv, 1 or 2.
        groups (int): Groups of the second 1x1 conv.
        first_groups (int): Groups of the first 1x1 conv and of the shuffle
            after it.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 groups: int, first_groups: int) -> None:
        super().__init__()
        mid_channels = out_channels // 4
        self.stride = stride
        self.first_groups = first_groups
        self.conv1 = nn.Conv2d(
            in_channels, mid_channels, 1, groups=first_groups, bias=False)
        self.bn1 = nn.BatchNorm2d(mid_channels)
        self.conv2 = nn.Conv2d(
            mid_channels,
            mid_channels,
            3,
            stride=stride,
            padding=1,
            groups=mid_channels,
            bias=False)
        self.bn2 = nn.BatchNorm2d(mid_channels)
        self.conv3 = nn.Conv2d(
            mid_channels, out_channels, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the unit.

        Args:
            x (torch.Tensor): Input of shape (N, C_in, H, W).

        Returns:
            torch.Tensor: Output of shape (N, C_out, H / stride, W / stride)
            with ``C_out = out_channels`` for stride 1 and
            ``C_in + out_channels`` for stride 2.
        """
        out = F.relu(self.bn1(self.conv1(x)))
        out = channel_shuffle(out, self.first_groups)
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.stride == 2:
            shortcut = F.avg_pool2d(x, 3, stride=2, padding=1)
            return F.relu(torch.cat([out, shortcut], 1))
        return F.relu(out + x)


@MODELS.register_module()
class CIFARShuffleNetV1(BaseBackbone):
    """CIFAR ShuffleNetV1 (RepDistiller ``models/ShuffleNetv1.py``).

    Parameter names (``conv1``, ``bn1``, ``layer{i}.{j}.conv1`` ...
    ``bn3``) match RepDistiller so its checkpoints load after adding the
    ``backbone.`` prefix. The defaults give ``ShuffleV1`` (groups 3).

    Args:
        groups (int): Groups of the grouped 1x1 convs. The very first one
            takes the 24-channel stem and is not grouped. Defaults to 3.
        stage_channels (Sequence[int]): Output channels of the three
            stages. Defaults to ``(240, 480, 960)``.
        stage_blocks (Sequence[int]): Units per stage. Defaults to
            ``(4, 8, 4)``.
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
    stem_channels = 24

    def __init__(self,
                 groups: int = 3,
                 stage_channels: Sequence[int] = (240, 480, 960),
                 stage_blocks: Sequence[int] = (4, 8, 4),
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (2, ),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 init_cfg: Optional[Union[dict, list]] = DEFAULT_INIT_CFG
                 ) -> None:
        super().__init__(init_cfg)
        if len(stage_channels) != self.num_stages or len(
                stage_blocks) != self.num_stages:
            raise ValueError('stage_channels and stage_blocks must hold 3 '
                             f'values each, got {tuple(stage_channels)} and '
                             f'{tuple(stage_blocks)}')
        if not -1 <= frozen_stages <= self.num_stages:
            raise ValueError(f'frozen_stages must be in [-1, '
                             f'{self.num_stages}], got {frozen_stages}')
        self.groups = groups
        self.out_indices = normalize_out_indices(out_indices, self.num_stages)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval

        self.conv1 = nn.Conv2d(
            in_channels, self.stem_channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(self.stem_channels)

        self.layer_names = []
        stage_in = self.stem_channels
        for i, (stage_out, num_blocks) in enumerate(
                zip(stage_channels, stage_blocks)):
            # The stride-2 unit concatenates its input, so its branch only
            # adds the missing channels.
            units = [
                ShuffleUnit(stage_in, stage_out - stage_in, 2, groups,
                            1 if i == 0 else groups)
            ]
            units += [
                ShuffleUnit(stage_out, stage_out, 1, groups, groups)
                for _ in range(num_blocks - 1)
            ]
            name = f'layer{i + 1}'
            self.add_module(name, nn.Sequential(*units))
            self.layer_names.append(name)
            stage_in = stage_out
        self.out_channels = tuple(stage_channels[i] for i in self.out_indices)

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
            ``out_indices``; stage i has stride ``2**(i + 1)`` relative to
            input.
        """
        x = F.relu(self.bn1(self.conv1(x)))
        outs = []
        for i, name in enumerate(self.layer_names):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def train(self, mode: bool = True) -> 'CIFARShuffleNetV1':
        """Set train mode while keeping frozen stages and norms in eval.

        Args:
            mode (bool): Whether to set training mode. Defaults to True.

        Returns:
            CIFARShuffleNetV1: self.
        """
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            freeze_norm_stats(self)
        return self
