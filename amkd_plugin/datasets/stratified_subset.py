# Copyright (c) amkd-mmrazor contributors.
"""A stratified, seeded part of any MMEngine dataset."""
from typing import Union

import numpy as np
from mmengine.dataset import BaseDataset
from mmpretrain.registry import DATASETS

from amkd_plugin.utils import UserValueError


def stratified_indices(labels: np.ndarray, fraction: float,
                       seed: int) -> np.ndarray:
    """Sorted indices of ``round(fraction * n_c)`` random images per class.

    Each class keeps at least one image; which ones depends on ``seed``
    only, never on the machine or the process count.

    Args:
        labels (np.ndarray): The label of every image, shape (N,).
        fraction (float): The part of every class kept, in (0, 1].
        seed (int): Seed of the choice.

    Returns:
        np.ndarray: int64 indices into ``labels``, ascending.
    """
    if not 0 < fraction <= 1:
        raise UserValueError(
            f'fraction must be in (0, 1], got {fraction}.')
    rng = np.random.default_rng(seed)
    kept = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = max(1, int(round(fraction * len(members))))
        kept.append(rng.choice(members, count, replace=False))
    return np.sort(np.concatenate(kept)).astype(np.int64)


@DATASETS.register_module(name='StratifiedSubset')
def stratified_subset(dataset: Union[dict, BaseDataset], fraction: float,
                      seed: int = 0) -> BaseDataset:
    """Keep a stratified, seeded ``fraction`` of every class of ``dataset``.

    MMEngine's ``indices`` keeps the first N images, which is neither
    stratified nor random. This returns the dataset itself, cut in place
    (``get_subset_``), so it is still of its own class with its own
    ``pipeline`` and ``metainfo``, and ``sample_idx`` counts within the
    subset::

        train_dataloader = dict(dataset=dict(
            type='mmpretrain.StratifiedSubset', fraction=0.1, seed=0,
            dataset=dict(type='mmpretrain.OfflineFashionMNIST', ...)))

    Args:
        dataset (dict | BaseDataset): The dataset or its config.
        fraction (float): The part of every class kept, in (0, 1].
        seed (int): Seed of the choice, apart from the run's seed so that
            every run of a table sees the same images. Defaults to 0.

    Returns:
        BaseDataset: ``dataset`` with only the chosen images.
    """
    if isinstance(dataset, dict):
        dataset = DATASETS.build(dataset)
    dataset.full_init()
    labels = np.asarray(dataset.get_gt_labels())
    dataset.get_subset_(stratified_indices(labels, fraction, seed).tolist())
    return dataset
