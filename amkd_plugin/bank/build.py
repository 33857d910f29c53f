# Copyright (c) amkd-mmrazor contributors.
"""The bank of a runner's algorithm: built (or reused) and bound."""
import copy
import os.path as osp
from typing import List, Optional

from mmengine.dataset import Compose
from mmengine.registry import DATASETS

from amkd_plugin.utils import UserInputError, unwrap
from .load_boundary_bank import LoadBoundaryBank


def build_boundary_bank(runner) -> Optional[str]:
    """Build or reuse the bank of the runner's boundary source; its path.

    The bank holds the training set as the test pipeline presents it
    (un-augmented), under ``<work_dir>/boundary_bank``; the train
    pipeline's ``LoadBoundaryBank`` is bound to it, so it loads each
    image's banked sample from then on. Does nothing (returns None) when
    the algorithm's boundary source has no bank (``OnlineBoundary``).
    """
    model = unwrap(runner.model)
    builder = getattr(getattr(model, 'boundary', None), 'builder', None)
    if builder is None:
        return None
    loaders = _bank_loaders(runner.train_dataloader.dataset)
    if not loaders:
        raise UserInputError(
            'The boundary samples come from a bank (BankedBoundary) but the '
            'train pipeline has no LoadBoundaryBank: use the dataset '
            'config\'s amkd_train_pipeline, as configs/amkd/*.py do, or '
            'model.boundary.type=OnlineBoundary.')
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
    return path


def _bank_loaders(dataset) -> List[LoadBoundaryBank]:
    """The ``LoadBoundaryBank`` transforms of a dataset's pipeline."""
    return [t for t in getattr(dataset, 'pipeline', Compose([])).transforms
            if isinstance(t, LoadBoundaryBank)]
