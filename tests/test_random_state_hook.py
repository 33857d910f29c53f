# Copyright (c) amkd-mmrazor contributors.
"""Tests for RandomStateHook: per-epoch seeding, worker seeds, checkpoints.

The end-to-end proof (4 epochs straight == 2 epochs + ``--resume``, bit
for bit) is ``test_resume_continues_the_same_run`` in test_tools.py.
"""
import io
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.registry import HOOKS
from torch.utils.data import DataLoader

import amkd_plugin  # noqa: F401  (registers the hook)
from amkd_plugin.engine.hooks import RandomStateHook, random_state_hook
from amkd_plugin.engine.hooks.random_state_hook import (CHECKPOINT_KEY,
                                                        seed_worker)


def draws() -> tuple:
    """One number from each global generator."""
    return random.random(), np.random.random(), torch.rand(()).item()


def runner_at(epoch: int, seed: int = 7, rank: int = 0,
              done: int = 0) -> SimpleNamespace:
    """A runner at the start of ``epoch`` of 4 iterations, or ``done``
    iterations into it."""
    return SimpleNamespace(seed=seed, epoch=epoch, rank=rank,
                           iter=4 * epoch + done, train_dataloader=[0] * 4)


def test_registered_in_mmengine_root():
    assert isinstance(HOOKS.build(dict(type='RandomStateHook')),
                      RandomStateHook)


def test_each_epoch_draws_are_a_function_of_seed_epoch_and_rank():
    hook = RandomStateHook()
    hook.before_train_epoch(runner_at(3))
    first = draws()
    draws()  # whatever happens in between (an epoch, a validation)
    hook.before_train_epoch(runner_at(3))
    assert draws() == first
    for other in (runner_at(4), runner_at(3, seed=8), runner_at(3, rank=1)):
        hook.before_train_epoch(other)
        assert all(a != b for a, b in zip(draws(), first))


def test_an_epoch_resumed_inside_keeps_the_checkpoint_s_states():
    """A run resumed from a checkpoint inside an epoch (PreemptionHook's)
    goes on with the states loaded from it, not the epoch's seeds."""
    hook = RandomStateHook()
    hook.before_train_epoch(runner_at(3))
    first = draws()  # the epoch's first batch
    checkpoint = {}
    hook.before_save_checkpoint(None, checkpoint)  # saved after it
    expected = draws()
    hook.after_load_checkpoint(None, checkpoint)
    hook.before_train_epoch(runner_at(3, done=2))
    assert draws() == expected != first


def test_states_survive_a_weights_only_checkpoint():
    hook = RandomStateHook()
    hook.before_train_epoch(runner_at(0))
    draws()
    checkpoint = {}
    hook.before_save_checkpoint(None, checkpoint)
    expected = [draws() for _ in range(3)]
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    draws()

    hook.after_load_checkpoint(None, loaded)

    assert [draws() for _ in range(3)] == expected
    # A checkpoint without the states (older runs) changes nothing.
    state = draws()
    hook.after_load_checkpoint(None, {})
    assert draws() != state
    assert CHECKPOINT_KEY in loaded


def test_worker_generators_follow_the_torch_seed():
    torch.manual_seed(123)
    seed_worker(0)
    first = (random.random(), np.random.random())
    torch.manual_seed(123)
    seed_worker(0)
    assert (random.random(), np.random.random()) == first
    torch.manual_seed(124)
    seed_worker(0)
    assert (random.random(), np.random.random()) != first


class NumpyDraws:
    """A dataset whose items are numpy draws, like random augmentation."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> float:
        return np.random.random()


@pytest.mark.parametrize('persistent', [False, True])
def test_workers_draw_per_epoch(persistent, monkeypatch):
    """Fresh workers each epoch: the epoch's seed decides the draws."""
    loader = DataLoader(NumpyDraws(), batch_size=4, num_workers=2,
                        persistent_workers=persistent)
    hook = RandomStateHook()
    runner = SimpleNamespace(train_dataloader=loader)
    logged = []
    monkeypatch.setattr(random_state_hook, 'print_log',
                        lambda message, *args, **kwargs: logged.append(
                            message))

    hook.before_train(runner)

    assert loader.worker_init_fn is seed_worker
    assert len(logged) == persistent
    assert all('persistent_workers=False' in line for line in logged)
    if persistent:
        return

    def epoch(number: int) -> list:
        hook.before_train_epoch(runner_at(number))
        return sorted(torch.cat(list(loader)).tolist())

    first = epoch(0)
    assert epoch(1) != first
    assert epoch(0) == first
