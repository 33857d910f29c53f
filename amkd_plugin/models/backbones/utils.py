# Copyright (c) amkd-mmrazor contributors.
"""Helpers shared by the CIFAR backbones."""
from typing import List, Sequence, Tuple, Union

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


def freeze_norm_stats(module: nn.Module) -> None:
    """Put every BatchNorm of ``module`` in eval mode (``norm_eval``)."""
    for child in module.modules():
        if isinstance(child, _BatchNorm):
            child.eval()
