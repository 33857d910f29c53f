# Copyright (c) amkd-mmrazor contributors.
"""Helpers and the base class shared by the CIFAR backbones."""
from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

# Kaiming fan-out for convs and unit BN, as in RepDistiller/CRD, so students
# and teachers trained here start from the same init as the published runs.
DEFAULT_INIT_CFG: List[dict] = [
    dict(type='Kaiming', layer='Conv2d', mode='fan_out',
         nonlinearity='relu'),
    dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm']),
]


def normalize_out_indices(out_indices: Union[int, Sequence[int]],
                          num_stages: int) -> Tuple[int, ...]:
    """Validate stage indices and map negative ones to non-negative.

    Args:
        out_indices (int | Sequence[int]): Indices of the stages whose
            outputs are returned; negative values count from the end.
        num_stages (int): Number of stages in the backbone.

    Returns:
        tuple[int, ...]: Sorted, non-negative, de-duplicated indices.

    Raises:
        ValueError: If an index is outside ``[-num_stages, num_stages)``.
    """
    if isinstance(out_indices, int):
        out_indices = [out_indices]
    for index in out_indices:
        if not -num_stages <= index < num_stages:
            raise ValueError(
                f'out_indices must be in [{-num_stages}, {num_stages}), '
                f'got {tuple(out_indices)}')
    return tuple(sorted({index % num_stages for index in out_indices}))


def projection_shortcut(in_channels: int, out_channels: int,
                        stride: int) -> Optional[nn.Sequential]:
    """Build the 1x1 conv + BN shortcut of a residual block, if needed.

    Args:
        in_channels (int): Input channels of the block.
        out_channels (int): Output channels of the block.
        stride (int): Stride of the block.

    Returns:
        nn.Sequential | None: The projection (conv at index 0, BN at 1, as
        in RepDistiller's checkpoints), or None when the shape is unchanged
        and the identity serves.
    """
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
        nn.BatchNorm2d(out_channels))


def freeze_norm_stats(module: nn.Module) -> None:
    """Put every BatchNorm of ``module`` in eval mode (``norm_eval``)."""
    for child in module.modules():
        if isinstance(child, _BatchNorm):
            child.eval()


class CIFARBackbone(BaseBackbone):
    """A stem followed by ``num_stages`` stages, returning chosen stages.

    Holds what every CIFAR backbone here shares: ``out_indices``
    normalisation, the ``frozen_stages`` range and the freezing itself,
    ``norm_eval`` and the forward pass through the stages. A subclass
    registers its modules under the reference checkpoints' names, names
    them in ``stem_names`` and ``stage_names`` and implements
    :meth:`forward_stem`. Call :meth:`_freeze_stages` once the modules
    exist, since ``train()`` is not called on construction.

    Args:
        out_indices (int | Sequence[int]): Stages whose outputs are
            returned; negative values count from the end.
        frozen_stages (int): Stages to freeze (no grad, eval mode); 0 freezes
            the stem only, ``i > 0`` the stem and stages 1..i, -1 nothing.
            Defaults to -1.
        norm_eval (bool): Keep every BatchNorm in eval mode during training,
            freezing running statistics. Defaults to False.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to Kaiming fan-out convs and unit BatchNorm.
    """

    num_stages: int
    # Submodule names (dotted paths allowed) of the stem, and of stage i at
    # index i; a stage that is not a single module overrides forward_stage
    # and _stage_modules instead of being listed.
    stem_names: Tuple[str, ...]
    stage_names: Tuple[str, ...]

    def __init__(self,
                 out_indices: Union[int, Sequence[int]],
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 init_cfg: Optional[Union[dict, list]] = DEFAULT_INIT_CFG
                 ) -> None:
        super().__init__(init_cfg)
        if not -1 <= frozen_stages <= self.num_stages:
            raise ValueError(f'frozen_stages must be in [-1, '
                             f'{self.num_stages}], got {frozen_stages}')
        self.out_indices = normalize_out_indices(out_indices, self.num_stages)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the stem.

        Args:
            x (torch.Tensor): Images of shape (N, C, H, W).

        Returns:
            torch.Tensor: Input of the first stage.
        """
        raise NotImplementedError

    def forward_stage(self, index: int, x: torch.Tensor) -> torch.Tensor:
        """Apply stage ``index``.

        Args:
            index (int): Stage index in ``[0, num_stages)``.
            x (torch.Tensor): Output of the previous stage or of the stem.

        Returns:
            torch.Tensor: Output of the stage.
        """
        return self.get_submodule(self.stage_names[index])(x)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Extract features.

        Args:
            x (torch.Tensor): Images of shape (N, C, H, W).

        Returns:
            tuple[torch.Tensor, ...]: Outputs of the stages in
            ``out_indices``, in stage order.
        """
        return self._run_stages(self.forward_stem(x), self.forward_stage)

    def _run_stages(
        self, x: torch.Tensor,
        forward_stage: Callable[[int, torch.Tensor], torch.Tensor]
    ) -> Tuple[torch.Tensor, ...]:
        """Run every stage on the stem output, keeping ``out_indices``.

        Args:
            x (torch.Tensor): Output of the stem.
            forward_stage (Callable): Maps a stage index and its input to
                its output; a parameter so that a forward pass depending on
                the input size can bind that size in.

        Returns:
            tuple[torch.Tensor, ...]: Outputs of the stages in
            ``out_indices``, in stage order.
        """
        outs = []
        for index in range(self.num_stages):
            x = forward_stage(index, x)
            if index in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def _stage_modules(self, index: int) -> List[nn.Module]:
        """Return the modules holding the parameters of stage ``index``."""
        return [self.get_submodule(self.stage_names[index])]

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        frozen = [self.get_submodule(name) for name in self.stem_names]
        for index in range(self.frozen_stages):
            frozen += self._stage_modules(index)
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'CIFARBackbone':
        """Set train mode while keeping frozen stages and norms in eval.

        Args:
            mode (bool): Whether to set training mode. Defaults to True.

        Returns:
            CIFARBackbone: self.
        """
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            freeze_norm_stats(self)
        return self
