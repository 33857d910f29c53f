# Copyright (c) amkd-mmrazor contributors.
"""Between a data preprocessor's normalised inputs and pixels in 0..255."""
from typing import Tuple

import torch
from torch import Tensor, nn


def pixel_bounds(data_preprocessor: nn.Module) -> Tuple[Tensor, Tensor]:
    """Normalised values of pixels 0 and 255 under ``data_preprocessor``.

    Per channel, shaped to broadcast over (N, C, H, W) images; (0, 255) when
    the preprocessor does not normalise.
    """
    mean = getattr(data_preprocessor, 'mean', None)
    if mean is None:
        return torch.tensor(0.), torch.tensor(255.)
    std = data_preprocessor.std
    return (0 - mean) / std, (255 - mean) / std


def to_pixels(images: Tensor, data_preprocessor: nn.Module) -> Tensor:
    """Undo the preprocessor's normalisation and channel swap: float32 CHW
    pixels in 0..255, in the dataset's channel order (as banks store them).
    """
    if getattr(data_preprocessor, '_enable_normalize', False):
        images = images * data_preprocessor.std + data_preprocessor.mean
    if getattr(data_preprocessor, 'to_rgb', False) and images.size(1) == 3:
        images = images.flip(1)
    return images.clamp(0, 255).to(torch.float32)


def from_pixels(pixels: Tensor, data_preprocessor: nn.Module) -> Tensor:
    """The preprocessor's view of CHW pixels (uint8 or float32)."""
    return data_preprocessor(dict(inputs=pixels), False)['inputs']
