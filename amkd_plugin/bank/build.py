# Copyright (c) amkd-mmrazor contributors.
"""The bank of a runner's algorithm: built (or reused) and bound."""
import copy
import os.path as osp
from typing import Optional

from mmengine.dataset import Compose
from mmengine.logging import print_log
from mmengine.registry import DATASETS
from mmpretrain.datasets.transforms import PackInputs

from amkd_plugin.utils import UserInputError, unwrap
from .load_boundary_bank import LoadBoundaryBank


def build_boundary_bank(runner) -> Optional[str]:
    """Build or reuse the bank of the runner's boundary source; its path.

    The bank holds the training set as the test pipeline presents it
    (un-augmented), under ``<work_dir>/boundary_bank``. The boundary source
    and the train pipeline's ``LoadBoundaryBank`` are bound to it, so each
    step reads its banked samples from then on; a pipeline without one gets
    one (:func:`add_bank_loader`). Does nothing (returns None) when the
    algorithm's boundary source has no bank (``OnlineBoundary``).
    """
    model = unwrap(runner.model)
    builder = getattr(getattr(model, 'boundary', None), 'builder', None)
    if builder is None:
        return None
    pipeline = _pipeline(runner.train_dataloader.dataset)
    loaders = [t for t in pipeline.transforms
               if isinstance(t, LoadBoundaryBank)]
    if not loaders:
        loaders = [add_bank_loader(pipeline)]
    dataset_cfg = copy.deepcopy(runner.cfg.train_dataloader.dataset)
    # A wrapper (e.g. StratifiedSubset) holds the pipeline in its dataset.
    inner = dataset_cfg
    while 'dataset' in inner:
        inner = inner.dataset
    inner.pipeline = copy.deepcopy(
        runner.cfg.test_dataloader.dataset.pipeline)
    plain = DATASETS.build(dataset_cfg)
    path = builder.build(model.teacher, model.data_preprocessor, plain,
                         dataset_cfg.to_dict(),
                         osp.join(runner.work_dir, 'boundary_bank'))
    for loader in loaders:
        loader.bind(path)
    model.boundary.bind(path)
    return path


def add_bank_loader(pipeline: Compose) -> LoadBoundaryBank:
    """Put a ``LoadBoundaryBank`` into a train pipeline; the new transform.

    It goes after the transforms that load ``img`` (``Load*``), before any
    augmentation, so that it keeps the clean image the bank's changes are
    added to; the final ``PackInputs`` packs its field
    (``LoadBoundaryBank.PACKED``) into the data samples.
    """
    transforms = pipeline.transforms
    if not transforms or not isinstance(transforms[-1], PackInputs):
        raise UserInputError(
            'The boundary samples come from a bank (BankedBoundary), which '
            'needs a train pipeline that ends with PackInputs, to pack the '
            f'banked samples; this one ends with {transforms[-1:]}. End it '
            'with PackInputs, or list LoadBoundaryBank in it and pack its '
            'fields yourself, or use model.boundary.type=OnlineBoundary.')
    at = next((i for i, t in enumerate(transforms)
               if not type(t).__name__.startswith('Load')), len(transforms))
    loader = LoadBoundaryBank()
    transforms.insert(at, loader)
    pack = transforms[-1]
    pack.algorithm_keys = [
        *pack.algorithm_keys,
        *(key for key in LoadBoundaryBank.PACKED
          if key not in pack.algorithm_keys)
    ]
    print_log(
        'Boundary bank: the train pipeline keeps the clean images '
        f'(LoadBoundaryBank at step {at + 1}, packed: '
        f'{", ".join(LoadBoundaryBank.PACKED)}).', 'current')
    return loader


def _pipeline(dataset) -> Compose:
    """The pipeline of a dataset, or of the dataset a wrapper holds."""
    while not hasattr(dataset, 'pipeline') and hasattr(dataset, 'dataset'):
        dataset = dataset.dataset
    if not isinstance(getattr(dataset, 'pipeline', None), Compose):
        raise UserInputError(
            f'The train dataset {type(dataset).__name__} has no pipeline to '
            'load banked boundary samples in: use model.boundary.type='
            'OnlineBoundary.')
    return dataset.pipeline
