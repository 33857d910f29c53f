# Copyright (c) amkd-mmrazor contributors.
"""ShuffleNetV1 for 32x32 inputs (RepDistiller ``ShuffleV1``).

A 1x1 stem conv to 24 channels without stride or pooling, then three stages
of ShuffleNet units whose first unit halves the resolution, so 32x32 inputs
end at 4x4.
"""
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmpretrain.models.utils import channel_shuffle
from mmpretrain.registry import MODELS
from torch import nn

from .utils import DEFAULT_INIT_CFG, CIFARBackbone


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
class CIFARShuffleNetV1(CIFARBackbone):
    """CIFAR ShuffleNetV1 (RepDistiller ``models/ShuffleNetv1.py``).

    Parameter names (``conv1``, ``bn1``, ``layer{i}.{j}.conv1`` ...
    ``bn3``) match RepDistiller so its checkpoints load after adding the
    ``backbone.`` prefix. The defaults give ``ShuffleV1`` (groups 3).
    Stage i's output has stride ``2**(i + 1)`` relative to the input.

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
        frozen_stages (int): Stages to freeze, as in
            :class:`CIFARBackbone`. Defaults to -1.
        norm_eval (bool): Keep BatchNorm statistics frozen in training.
            Defaults to False.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to Kaiming fan-out convs and unit BatchNorm.
    """

    num_stages = 3
    stem_channels = 24
    stem_names = ('conv1', 'bn1')
    stage_names = ('layer1', 'layer2', 'layer3')

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
        if len(stage_channels) != self.num_stages or len(
                stage_blocks) != self.num_stages:
            raise ValueError('stage_channels and stage_blocks must hold 3 '
                             f'values each, got {tuple(stage_channels)} and '
                             f'{tuple(stage_blocks)}')
        super().__init__(out_indices, frozen_stages, norm_eval, init_cfg)
        self.groups = groups

        self.conv1 = nn.Conv2d(
            in_channels, self.stem_channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(self.stem_channels)

        stage_in = self.stem_channels
        for i, (name, stage_out, num_blocks) in enumerate(
                zip(self.stage_names, stage_channels, stage_blocks)):
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
            self.add_module(name, nn.Sequential(*units))
            stage_in = stage_out
        self.out_channels = tuple(stage_channels[i] for i in self.out_indices)

        self._freeze_stages()

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        """Apply conv1-BN-ReLU, see :meth:`CIFARBackbone.forward_stem`."""
        return F.relu(self.bn1(self.conv1(x)))
