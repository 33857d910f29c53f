# Copyright (c) amkd-mmrazor contributors.
"""VGG with BatchNorm for 32x32 inputs (vgg8 ... vgg19 as in RepDistiller).

Five conv blocks without fully connected layers: 2x2 max pooling follows the
first three blocks only, so 32x32 inputs reach the last two blocks at 4x4
and the classifier sees 512 globally averaged channels.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from torch import nn

from .utils import DEFAULT_INIT_CFG, CIFARBackbone


def _make_block(in_channels: int, widths: Sequence[int]) -> nn.Sequential:
    """Build conv-BN-ReLU layers whose last ReLU is left to the caller.

    The caller applies that ReLU functionally, so the Sequential indices
    (conv at 0, 3, ...; BN at 1, 4, ...) match RepDistiller's ``block{i}``.
    """
    layers: List[nn.Module] = []
    for width in widths:
        layers += [
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True)
        ]
        in_channels = width
    return nn.Sequential(*layers[:-1])


@MODELS.register_module()
class CIFARVGG(CIFARBackbone):
    """CIFAR VGG with BatchNorm (RepDistiller ``vgg{depth}_bn``).

    ``block0`` (one or two 64-channel convs at full resolution) acts as the
    stem; ``block1`` ... ``block4`` are the four stages. Parameter names
    (``block{i}.{j}.*``) match RepDistiller's ``models/vgg.py`` so its
    released checkpoints load after adding the ``backbone.`` prefix.
    Convs keep their biases, as in the reference, although BN follows them.
    Stage outputs have strides 2, 4, 8 and 8 relative to the input (16 for
    the last stage on 64x64 inputs).

    Args:
        depth (int): Network depth: 8, 11, 13, 16 or 19.
        in_channels (int): Input image channels. Defaults to 3.
        out_indices (Sequence[int]): Stages (``block1`` ... ``block4``)
            whose ReLU-activated outputs are returned. Defaults to ``(3, )``.
        frozen_stages (int): Stages to freeze (no grad, eval mode); 0 freezes
            ``block0`` only, ``i > 0`` also ``block1`` ... ``block{i}``, -1
            nothing. Defaults to -1.
        norm_eval (bool): Keep BatchNorm statistics frozen in training.
            Defaults to False.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to Kaiming fan-out convs and unit BatchNorm.
    """

    # Conv widths of block0 ... block4 per depth (RepDistiller's cfg
    # 'S', 'A', 'B', 'D', 'E').
    arch_settings: Dict[int, Tuple[Tuple[int, ...], ...]] = {
        8: ((64, ), (128, ), (256, ), (512, ), (512, )),
        11: ((64, ), (128, ), (256, 256), (512, 512), (512, 512)),
        13: ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512)),
        16: ((64, 64), (128, 128), (256, ) * 3, (512, ) * 3, (512, ) * 3),
        19: ((64, 64), (128, 128), (256, ) * 4, (512, ) * 4, (512, ) * 4),
    }
    num_stages = 4
    stem_names = ('block0', )
    stage_names = ('block1', 'block2', 'block3', 'block4')

    def __init__(self,
                 depth: int,
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (3, ),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 init_cfg: Optional[Union[dict, list]] = DEFAULT_INIT_CFG
                 ) -> None:
        if depth not in self.arch_settings:
            raise ValueError(f'CIFARVGG depth must be one of '
                             f'{sorted(self.arch_settings)}, got {depth}')
        super().__init__(out_indices, frozen_stages, norm_eval, init_cfg)
        self.depth = depth

        for name, widths in zip(self.stem_names + self.stage_names,
                                self.arch_settings[depth]):
            self.add_module(name, _make_block(in_channels, widths))
            in_channels = widths[-1]
        self.out_channels = tuple(self.arch_settings[depth][1 + i][-1]
                                  for i in self.out_indices)

        self._freeze_stages()

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        """Apply block0 and the ReLU that :func:`_make_block` leaves out."""
        return F.relu(self.block0(x))

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Extract features, see :meth:`CIFARBackbone.forward`.

        Each stage max-pools its input, applies its block and the block's
        last ReLU.
        """
        # The reference pools before block4 only for 64x64 (Tiny ImageNet)
        # inputs, so that both sizes end at 4x4.
        pool_before_last = x.shape[2] == 64

        def forward_stage(index: int, x: torch.Tensor) -> torch.Tensor:
            if index < self.num_stages - 1 or pool_before_last:
                x = F.max_pool2d(x, 2, 2)
            return F.relu(self.forward_stage(index, x))

        return self._run_stages(self.forward_stem(x), forward_stage)
