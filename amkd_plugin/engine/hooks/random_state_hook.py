# Copyright (c) amkd-mmrazor contributors.
import logging
import random
from typing import List, Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_dist_info
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

CHECKPOINT_KEY = 'random_state'


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Make a resumed run draw the random numbers the uninterrupted one drew.

    MMEngine seeds python's, numpy's and torch's global generators once, at
    the start of a run, and restores only model, optimizer, schedulers and
    message hub on ``--resume``: a resumed run's augmentation (numpy's
    random crops, in the main process or in dataloader workers) and
    anything else drawn from the global generators take another stream
    than the uninterrupted run. Its workers are also seeded alike in every
    epoch. This hook:

    - before every training epoch, seeds the global python, numpy and torch
      generators of each rank from ``(seed, epoch, rank)``, so an epoch
      draws the same numbers whether or not the run was resumed before it
      (what happened in between, e.g. validation, does not matter);
    - seeds each dataloader worker's python and numpy generators from the
      seed torch gives it, which the epoch's seeding made a function of
      ``(seed, epoch, rank, worker)``;
    - saves the generators' states with every checkpoint and restores them
      on resume, for loops without epochs (``IterBasedTrainLoop``) and for
      a run resumed inside an epoch, whose epoch is not seeded again.

    Persistent workers keep one stream over all epochs, which a resumed run
    cannot continue; the hook warns about them (use
    ``persistent_workers=False`` for the train loader, as the dataset
    configs here do).

    Registered in MMEngine's root registry so configs of every scope find
    it; ``configs/_base_/default_runtime.py`` enables it.
    """

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._rank_states: Optional[List[dict]] = None

    def before_train(self, runner) -> None:
        loader = runner.train_dataloader
        if getattr(loader, 'num_workers', 0) > 0:
            loader.worker_init_fn = seed_worker
            if loader.persistent_workers:
                print_log(
                    'RandomStateHook: the train loader\'s workers are '
                    'persistent, so their random streams run over all '
                    'epochs and a resumed run draws other augmentations; '
                    'set train_dataloader.persistent_workers=False for '
                    'resumes that continue the same run.', 'current',
                    level=logging.WARNING)

    def before_train_epoch(self, runner) -> None:
        # Resumed inside the epoch (PreemptionHook's checkpoints): the
        # states the checkpoint holds are where the epoch stood.
        if runner.iter == runner.epoch * len(runner.train_dataloader):
            seed_everything(
                epoch_seeds(runner.seed, runner.epoch, runner.rank))

    def gather_rank_states(self, runner) -> None:
        """Every rank's states, for rank 0 to save with a checkpoint taken
        inside an epoch (``PreemptionHook`` calls it on every rank): from
        there each rank goes on with its own stream, not rank 0's."""
        if get_dist_info()[1] > 1:
            self._rank_states = all_gather_object(get_states())

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint[CHECKPOINT_KEY] = get_states()
        if self._rank_states is not None:
            checkpoint[f'{CHECKPOINT_KEY}_per_rank'] = self._rank_states
            self._rank_states = None

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        per_rank = checkpoint.get(f'{CHECKPOINT_KEY}_per_rank')
        rank, world_size = get_dist_info()
        if per_rank and len(per_rank) == world_size:
            set_states(per_rank[rank])
        elif CHECKPOINT_KEY in checkpoint:
            set_states(checkpoint[CHECKPOINT_KEY])


def epoch_seeds(seed: int, epoch: int, rank: int) -> List[int]:
    """Independent 32-bit seeds for python, numpy and torch."""
    return np.random.SeedSequence([seed, epoch, rank]).generate_state(
        3).tolist()


def seed_everything(seeds: List[int]) -> None:
    python, numpy, torch_seed = seeds
    random.seed(python)
    np.random.seed(numpy)
    torch.manual_seed(torch_seed)


def seed_worker(worker_id: int) -> None:
    """Seed a dataloader worker's python and numpy generators from its
    torch seed (base seed drawn by the main process, plus ``worker_id``)."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def get_states() -> dict:
    """The global generators' states in plain types and tensors, so that
    weights-only loading reads them."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    states = dict(
        python=[version, list(internal), gauss],
        numpy=[kind, keys.tolist(), pos, has_gauss, cached],
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def set_states(states: dict) -> None:
    """Restore :func:`get_states`."""
    version, internal, gauss = states['python']
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = states['numpy']
    np.random.set_state(
        (kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states['torch'])
    if 'cuda' in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states['cuda'])
