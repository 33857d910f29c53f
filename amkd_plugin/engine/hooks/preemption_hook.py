# Copyright (c) amkd-mmrazor contributors.
"""Preemption: a scheduler's SIGTERM costs the iteration in flight only."""
import os
import os.path as osp
import signal
import sys
from typing import Optional

import torch
import torch.distributed as torch_dist
from mmengine.dist import get_dist_info
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from torch.utils.data import DataLoader

from amkd_plugin.utils import UserInputError

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class PreemptedError(UserInputError):
    """Training stopped on a signal after saving where it stood."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum  # what the signal itself would give


@HOOKS.register_module()
class PreemptionHook(Hook):
    """Stop on SIGTERM or SIGINT after the current iteration, saved.

    Schedulers (SLURM, Kubernetes, spot instances) send SIGTERM and kill a
    grace period later. On the signal the training finishes the iteration
    it is in, writes ``iter_<N>.pth`` through the atomic backend (the same
    hooks add their states to it as to every checkpoint) and stops with
    one line naming it and the resume command, exit status 128 + signal as
    if the signal had ended it. With several ranks the decision is reduced
    over the ranks after every iteration, so all stop at the same one and
    rank 0 alone writes. If the iteration and the save do not end within
    ``grace`` seconds of the signal, the process ends then, the newest
    earlier checkpoint standing.

    Resuming from a checkpoint taken inside an epoch goes on with that
    epoch's next batch: this hook hands the loop the epoch's remaining
    batches (the sampler's order for the epoch, the first ones not loaded
    again) and ``RandomStateHook`` keeps the random states the checkpoint
    holds, so the run ends as the uninterrupted one would, bit for bit
    (loaders without workers, as the dataset configs here have them).

    The handlers are installed once training starts (after a bank build,
    which a signal ends as a kill does, its progress kept) and the previous
    ones put back when it ends.

    Args:
        grace (float): Seconds from the signal to the end of the save, at
            most; well under a scheduler's usual 30 s. Defaults to 20.
    """

    priority = 'LOWEST'  # after every other hook's iteration work

    def __init__(self, grace: float = 20.) -> None:
        if grace <= 0:
            raise UserInputError(f'PreemptionHook: grace must be > 0 s, got '
                                 f'{grace}.')
        self.grace = grace
        self._signum = 0
        self._previous = {}
        self._full_loader: Optional[DataLoader] = None

    def before_train(self, runner) -> None:
        self._signum = 0
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def after_train(self, runner) -> None:
        signal.alarm(0)
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _on_signal(self, signum: int, frame) -> None:
        self._signum = signum
        signal.signal(signal.SIGALRM, self._on_grace_over)
        signal.alarm(max(1, int(self.grace)))

    def _on_grace_over(self, signum: int, frame) -> None:
        sys.stderr.write(
            f'error: stopped by {signal.Signals(self._signum).name}: the '
            f'iteration in flight did not end within {self.grace:g} s; '
            'resume from the newest checkpoint with --resume.\n')
        sys.stderr.flush()
        os._exit(128 + self._signum)

    def before_train_epoch(self, runner) -> None:
        loop = runner.train_loop
        done = runner.iter - runner.epoch * len(loop.dataloader)
        if done <= 0:
            return
        # Resumed inside this epoch: its remaining batches, in the order the
        # sampler gives them this epoch (set by DistSamplerSeedHook).
        full = loop.dataloader
        if full.batch_size is None:
            runner.logger.warning(
                f'Resumed inside epoch {runner.epoch + 1}, whose loader '
                'batches with a batch sampler: the epoch starts again from '
                'its first batch, not where it stopped.')
            return
        order = list(iter(full.sampler))[done * full.batch_size:]
        self._full_loader = full
        loop.dataloader = DataLoader(
            full.dataset,
            batch_size=full.batch_size,
            sampler=order,
            num_workers=full.num_workers,
            collate_fn=full.collate_fn,
            pin_memory=full.pin_memory,
            drop_last=full.drop_last,
            worker_init_fn=full.worker_init_fn)
        runner.logger.info(
            f'Resumed inside epoch {runner.epoch + 1}: going on from its '
            f'batch {done + 1} of {len(full)}.')

    def after_train_epoch(self, runner) -> None:
        if self._full_loader is not None:
            runner.train_loop.dataloader = self._full_loader
            self._full_loader = None

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        signum = self._signum
        if get_dist_info()[1] > 1:
            flag = torch.tensor([signum])
            torch_dist.all_reduce(flag, op=torch_dist.ReduceOp.MAX)
            signum = int(flag)
        if not signum:
            return
        # Rank 0 alone saves: the hooks whose states differ between ranks
        # (random streams, the attack's sampler) gather them first.
        for hook in runner.hooks:
            if hasattr(hook, 'gather_rank_states'):
                hook.gather_rank_states(runner)
        name = f'iter_{runner.iter + 1}.pth'
        runner.save_checkpoint(
            runner.work_dir, name, by_epoch=False,
            backend_args=dict(backend='atomic_local'))
        path = osp.join(runner.work_dir, name)
        if runner.rank == 0:
            with open(osp.join(runner.work_dir, 'last_checkpoint'), 'w') as f:
                f.write(path)
        signal.alarm(0)
        raise PreemptedError(
            f'stopped by {signal.Signals(signum).name} after iteration '
            f'{runner.iter + 1} (epoch {runner.epoch + 1}); saved {path}. '
            'Go on with the same command and --resume.', signum)
