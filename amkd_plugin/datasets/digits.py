# Copyright (c) amkd-mmrazor contributors.
"""scikit-learn's embedded handwritten digits as 32x32 RGB images."""
from typing import List

import cv2
import numpy as np
from mmpretrain.datasets.base_dataset import BaseDataset
from mmpretrain.registry import DATASETS
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from amkd_plugin.utils import UserValueError

DIGITS_MAX_VALUE = 16
IMAGE_SIZE = 32


def digits_to_rgb32(images: np.ndarray) -> np.ndarray:
    """Turn 8x8 digit scans (values 0..16) into 32x32x3 uint8 images.

    Bilinear upsampling keeps the strokes smooth without the 4x4 blocks of
    nearest-neighbour and, unlike bicubic, never overshoots the value range.
    It runs on the 0..16 floats so no precision is lost before rounding.

    Args:
        images (np.ndarray): ``(N, 8, 8)`` array with values in 0..16.

    Returns:
        np.ndarray: ``(N, 32, 32, 3)`` uint8 array, grey replicated to RGB.
    """
    scaled = images.astype(np.float32) * (255 / DIGITS_MAX_VALUE)
    resized = np.stack([
        cv2.resize(
            img, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_LINEAR)
        for img in scaled
    ])
    grey = np.clip(np.rint(resized), 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


@DATASETS.register_module()
class SklearnDigits(BaseDataset):
    """The 1,797 real 8x8 handwritten digit scans shipped inside
    scikit-learn (:func:`sklearn.datasets.load_digits`), served as 32x32
    RGB images so CIFAR models and pipelines run on them unchanged.

    Needs no files and no download, which makes it a real-data dataset for
    offline smoke tests. The train/test split is stratified and seeded, so
    it is identical on every run and every machine.

    Data infos hold ``img`` (``32x32x3`` uint8 array) and ``gt_label``.

    ``train_fraction`` keeps a stratified, seeded part of the training
    split (a low-data proxy: 0.2 keeps 270 of the 1,347 images, where
    teachers and students stay well below 100% on the held-out split); the
    test split is always whole.

    Args:
        split (str): ``'train'`` or ``'test'``. Defaults to ``'train'``.
        test_size (float): Fraction of the images in the test split.
            Defaults to 0.25.
        train_fraction (float): Fraction of the training split kept, in
            (0, 1]. Defaults to 1.
        seed (int): Seed of the split and of the fraction. Defaults to 0.
        **kwargs: Other arguments of
            :class:`mmpretrain.datasets.base_dataset.BaseDataset` except
            ``ann_file``.
    """

    SPLITS = ('train', 'test')
    METAINFO = {'classes': tuple(str(digit) for digit in range(10))}

    def __init__(self,
                 split: str = 'train',
                 test_size: float = 0.25,
                 train_fraction: float = 1.,
                 seed: int = 0,
                 **kwargs) -> None:
        if split not in self.SPLITS:
            raise UserValueError(
                f'split must be one of {self.SPLITS}, got {split!r}.')
        if not 0 < train_fraction <= 1:
            raise UserValueError(
                f'train_fraction must be in (0, 1], got {train_fraction}.')
        self.split = split
        self.test_size = test_size
        self.train_fraction = train_fraction
        self.seed = seed
        super().__init__(ann_file='', **kwargs)

    def load_data_list(self) -> List[dict]:
        """Split the digits and convert the images of ``self.split``.

        Returns:
            list[dict]: One ``dict(img=32x32x3 uint8 array, gt_label=int)``
            per image.
        """
        digits = load_digits()
        train_idx, test_idx = train_test_split(
            np.arange(len(digits.target)),
            test_size=self.test_size,
            random_state=self.seed,
            stratify=digits.target)
        if self.split == 'train' and self.train_fraction < 1:
            train_idx, _ = train_test_split(
                train_idx,
                train_size=self.train_fraction,
                random_state=self.seed,
                stratify=digits.target[train_idx])
        indices = np.sort(train_idx if self.split == 'train' else test_idx)
        images = digits_to_rgb32(digits.images[indices])
        return [
            dict(img=img, gt_label=int(label))
            for img, label in zip(images, digits.target[indices])
        ]
