# Copyright (c) amkd-mmrazor contributors.
"""ShuffleNetV2 for 32x32 inputs (RepDistiller ``ShuffleV2``).

A 1x1 stem conv to 24 channels without stride or pooling, three stages that
each start with a stride-2 down-sampling unit, and a final 1x1 conv, so
32x32 inputs end at 4x4.
"""
from typing import List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmpretrain.models.utils import channel_shuffle
from mmpretrain.registry import MODELS
from torch import nn

from .utils import DEFAULT_INIT_CFG, CIFARBackbone


def _depthwise(channels: int, stride: int) -> nn.Conv2d:
    return nn.Conv2d(
        channels,
        channels,
        3,
        stride=stride,
        padding=1,
        groups=channels,
        bias=False)


class SplitUnit(nn.Module):
    """Stride-1 unit: keep half the channels, transform the other half.

    The second half goes through 1x1 conv-BN-ReLU, depthwise 3x3 conv-BN,
    1x1 conv-BN-ReLU; it is concatenated after the first half and the
    channels are shuffled in two groups.

    Args:
        channels (int): Input and output channels, even.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        branch = channels // 2
        self.branch_channels = branch
        self.conv1 = nn.Conv2d(branch, branch, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(branch)
        self.conv2 = _depthwise(branch, 1)
        self.bn2 = nn.BatchNorm2d(branch)
        self.conv3 = nn.Conv2d(branch, branch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(branch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the unit.

        Args:
            x (torch.Tensor): Input of shape (N, C, H, W).

        Returns:
            torch.Tensor: Output of the same shape.
        """
        kept = x[:, :self.branch_channels]
        out = x[:, self.branch_channels:]
        out = F.relu(self.bn1(self.conv1(out)))
        out = self.bn2(self.conv2(out))
        out = F.relu(self.bn3(self.conv3(out)))
        return channel_shuffle(torch.cat([kept, out], 1), 2)


class DownUnit(nn.Module):
    """Stride-2 unit: two branches on the whole input, each giving half.

    Left: depthwise 3x3 conv-BN (stride 2), 1x1 conv-BN-ReLU. Right: 1x1
    conv-BN-ReLU, depthwise 3x3 conv-BN (stride 2), 1x1 conv-BN-ReLU. The
    branches are concatenated (left first) and shuffled in two groups.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels, even.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        mid_channels = out_channels // 2
        self.conv1 = _depthwise(in_channels, 2)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv2 = nn.Conv2d(in_channels, mid_channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid_channels)
        self.conv3 = nn.Conv2d(in_channels, mid_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(mid_channels)
        self.conv4 = _depthwise(mid_channels, 2)
        self.bn4 = nn.BatchNorm2d(mid_channels)
        self.conv5 = nn.Conv2d(mid_channels, mid_channels, 1, bias=False)
        self.bn5 = nn.BatchNorm2d(mid_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the unit.

        Args:
            x (torch.Tensor): Input of shape (N, C_in, H, W).

        Returns:
            torch.Tensor: Output of shape (N, C_out, H / 2, W / 2).
        """
        left = self.bn1(self.conv1(x))
        left = F.relu(self.bn2(self.conv2(left)))
        right = F.relu(self.bn3(self.conv3(x)))
        right = self.bn4(self.conv4(right))
        right = F.relu(self.bn5(self.conv5(right)))
        return channel_shuffle(torch.cat([left, right], 1), 2)


@MODELS.register_module()
class CIFARShuffleNetV2(CIFARBackbone):
    """CIFAR ShuffleNetV2 (RepDistiller ``models/ShuffleNetv2.py``).

    Parameter names (``conv1``, ``bn1``, ``layer{i}.0.conv1..5`` for the
    down-sampling unit, ``layer{i}.{j}.conv1..3`` for the others, ``conv2``,
    ``bn2``) match RepDistiller so its checkpoints load after adding the
    ``backbone.`` prefix. Stages 0-2 are the unit stages, with stride
    ``2**(i + 1)`` relative to the input, stage 3 the final 1x1 conv
    (stride 8). The defaults give ``ShuffleV2`` (net_size 1).

    Args:
        stage_channels (Sequence[int]): Output channels of the three unit
            stages. Defaults to ``(116, 232, 464)``.
        stage_blocks (Sequence[int]): Stride-1 units per stage, after its
            down-sampling unit. Defaults to ``(3, 7, 3)``.
        last_channels (int): Output channels of the final 1x1 conv.
            Defaults to 1024.
        in_channels (int): Input image channels. Defaults to 3.
        out_indices (Sequence[int]): Stages whose outputs are returned.
            Defaults to ``(3, )``, the final conv.
        frozen_stages (int): Stages to freeze, as in
            :class:`CIFARBackbone`. Defaults to -1.
        norm_eval (bool): Keep BatchNorm statistics frozen in training.
            Defaults to False.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to Kaiming fan-out convs and unit BatchNorm.
    """

    num_stages = 4
    stem_channels = 24
    stem_names = ('conv1', 'bn1')
    # Stage 3, the final conv, is the top-level conv2 + bn2 (RepDistiller's
    # names), so it is not a single module and not listed here.
    stage_names = ('layer1', 'layer2', 'layer3')

    def __init__(self,
                 stage_channels: Sequence[int] = (116, 232, 464),
                 stage_blocks: Sequence[int] = (3, 7, 3),
                 last_channels: int = 1024,
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (3, ),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 init_cfg: Optional[Union[dict, list]] = DEFAULT_INIT_CFG
                 ) -> None:
        if len(stage_channels) != 3 or len(stage_blocks) != 3:
            raise ValueError('stage_channels and stage_blocks must hold 3 '
                             f'values each, got {tuple(stage_channels)} and '
                             f'{tuple(stage_blocks)}')
        super().__init__(out_indices, frozen_stages, norm_eval, init_cfg)

        self.conv1 = nn.Conv2d(
            in_channels, self.stem_channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(self.stem_channels)

        stage_in = self.stem_channels
        for name, stage_out, num_blocks in zip(self.stage_names,
                                               stage_channels, stage_blocks):
            units = [DownUnit(stage_in, stage_out)]
            units += [SplitUnit(stage_out) for _ in range(num_blocks)]
            self.add_module(name, nn.Sequential(*units))
            stage_in = stage_out
        self.conv2 = nn.Conv2d(stage_in, last_channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(last_channels)
        all_channels = tuple(stage_channels) + (last_channels, )
        self.out_channels = tuple(all_channels[i] for i in self.out_indices)

        self._freeze_stages()

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        """Apply conv1-BN-ReLU, see :meth:`CIFARBackbone.forward_stem`."""
        return F.relu(self.bn1(self.conv1(x)))

    def forward_stage(self, index: int, x: torch.Tensor) -> torch.Tensor:
        """Apply a stage, see :meth:`CIFARBackbone.forward_stage`.

        The final conv (stage 3) runs only when its output is returned and
        passes ``x`` through otherwise.
        """
        if index < len(self.stage_names):
            return super().forward_stage(index, x)
        # As in the reference: skipping the unused head saves its compute
        # and leaves bn2's running statistics untouched in training.
        if index not in self.out_indices:
            return x
        return F.relu(self.bn2(self.conv2(x)))

    def _stage_modules(self, index: int) -> List[nn.Module]:
        if index < len(self.stage_names):
            return super()._stage_modules(index)
        return [self.conv2, self.bn2]
