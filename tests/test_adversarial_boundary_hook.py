# Copyright (c) amkd-mmrazor contributors.
"""Tests for AdversarialBoundaryHook: schedule, logging, checkpoint state."""
import copy
import itertools
import math
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MessageHub, MMLogger
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.visualization import Visualizer
from torch import nn
from torch.utils.data import DataLoader, Dataset

import amkd_plugin  # noqa: F401  (mends mmrazor's import first)
from amkd_plugin.engine.hooks import AdversarialBoundaryHook
from amkd_plugin.engine.hooks import adversarial_boundary_hook as hook_module
from amkd_plugin.engine.hooks.adversarial_boundary_hook import CHECKPOINT_KEY
from amkd_plugin.models.boundary import OnlineBoundary
from amkd_plugin.models.task_modules import BoundaryAttack
from mmrazor.registry import HOOKS

# Tiny CPU models on one torch thread, built in MMRazor's scope (see
# conftest.py).
pytestmark = pytest.mark.usefixtures('single_torch_thread',
                                     'mmrazor_scope')

_hub_names = itertools.count()


def draw_inputs():
    """Labels and nearly uniform teacher logits: targets vary a lot."""
    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (32, ), generator=gen)
    logits = torch.randn(32, 10, generator=gen) * 0.1
    return labels, logits


class FakeAlgorithm(BaseModel):
    """What the hook touches on AMKDDistill, and a loss to train on.

    Each forward records the boundary weight it ran with and draws targets
    from the attack's sampler, as a training step of AMKD does.
    """

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 1)
        self.boundary = OnlineBoundary(dict(type='BoundaryAttack', seed=seed))
        self.boundary_weight = 1.0
        self.attack_stats = {}
        self.weights_seen = []
        self.draws = []

    def forward(self, inputs, data_samples=None, mode='tensor'):
        self.weights_seen.append(self.boundary_weight)
        self.draws.append(self.boundary.attack.sample_targets(*draw_inputs()))
        step = len(self.weights_seen)
        self.attack_stats = dict(
            attacked=float(step), reached=0.5, steps=3., l2=0.25 * step)
        return dict(loss=self.fc(inputs).pow(2).mean())


def fake_runner(model, iteration=0, max_iters=100):
    hub = MessageHub.get_instance(f'amkd_hook_test_{next(_hub_names)}')
    return SimpleNamespace(
        model=model, iter=iteration, max_iters=max_iters, message_hub=hub)


# --- the schedule ----------------------------------------------------------


def test_registered_in_mmrazor_hooks():
    hook = HOOKS.build(
        dict(type='AdversarialBoundaryHook', schedule='cosine', end=0.5,
             warmup=0.1, scale=2.))
    assert isinstance(hook, AdversarialBoundaryHook)
    assert (hook.schedule, hook.end, hook.warmup, hook.scale) == ('cosine',
                                                                  0.5, 0.1,
                                                                  2.)


@pytest.mark.parametrize('kwargs', [
    dict(schedule='step'),
    dict(end=0.),
    dict(end=-1.),
    dict(warmup=-0.1),
    dict(warmup=1.),
    dict(scale=-1.),
])
def test_invalid_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        AdversarialBoundaryHook(**kwargs)


@pytest.mark.parametrize('progress,expected', [(0., 1.), (0.375, 0.5),
                                               (0.6, 0.2), (0.75, 0.),
                                               (0.9, 0.), (1., 0.)])
def test_linear_weight(progress, expected):
    hook = AdversarialBoundaryHook()  # linear, end=0.75 as in BSS
    assert hook.weight(progress) == pytest.approx(expected)


@pytest.mark.parametrize('progress,expected', [
    (0., 1.),
    (0.125, (1 + math.cos(math.pi / 4)) / 2),
    (0.25, 0.5),
    (0.375, (1 + math.cos(3 * math.pi / 4)) / 2),
    (0.5, 0.),
    (0.8, 0.),
])
def test_cosine_weight(progress, expected):
    hook = AdversarialBoundaryHook(schedule='cosine', end=0.5)
    assert hook.weight(progress) == pytest.approx(expected)


@pytest.mark.parametrize('progress', [0., 0.3, 0.75, 1.])
def test_constant_weight(progress):
    assert AdversarialBoundaryHook(schedule='constant').weight(
        progress) == 1.
    assert AdversarialBoundaryHook(
        schedule='constant', scale=0.3).weight(progress) == pytest.approx(0.3)


@pytest.mark.parametrize('progress,expected', [
    (0., 0.),
    (0.05, 0.5 * (1 - 0.05)),  # half-way up the ramp, linear to end=1
    (0.1, 0.9),
    (0.5, 0.5),
])
def test_warmup(progress, expected):
    hook = AdversarialBoundaryHook(end=1., warmup=0.1)
    assert hook.weight(progress) == pytest.approx(expected)


def test_warmup_with_constant_schedule():
    hook = AdversarialBoundaryHook(schedule='constant', warmup=0.2)
    assert [hook.weight(p) for p in (0., 0.1, 0.2, 0.9)] == pytest.approx(
        [0., 0.5, 1., 1.])


@pytest.mark.parametrize('schedule', ['linear', 'cosine', 'constant'])
def test_scale(schedule):
    base = AdversarialBoundaryHook(schedule=schedule)
    for progress in (0., 0.2, 0.5):
        assert AdversarialBoundaryHook(
            schedule=schedule, scale=0.).weight(progress) == 0.
        assert AdversarialBoundaryHook(
            schedule=schedule, scale=2.).weight(progress) == pytest.approx(
                2 * base.weight(progress))


def test_end_moves_the_decay():
    hook = AdversarialBoundaryHook(end=0.5)
    assert hook.weight(0.25) == pytest.approx(0.5)
    assert hook.weight(0.5) == 0.
    assert AdversarialBoundaryHook(end=2.).weight(1.) == pytest.approx(0.5)


# --- runner callbacks ------------------------------------------------------


@pytest.mark.parametrize('wrap', [False, True])
def test_before_train_iter_sets_boundary_weight(wrap):
    algorithm = FakeAlgorithm()
    # nn.DataParallel is a registered MMEngine model wrapper that runs on
    # CPU; the hook must reach the algorithm inside it.
    model = nn.DataParallel(algorithm) if wrap else algorithm
    runner = fake_runner(model, iteration=30, max_iters=100)
    hook = AdversarialBoundaryHook()

    hook.before_train_iter(runner, batch_idx=0)

    assert algorithm.boundary_weight == pytest.approx(1 - 0.3 / 0.75)
    if wrap:  # set on the algorithm, not on the wrapper
        assert 'boundary_weight' not in vars(model)
    runner.iter = 80
    hook.before_train_iter(runner, batch_idx=0)
    assert algorithm.boundary_weight == 0.


def test_scale_zero_keeps_weight_zero():
    algorithm = FakeAlgorithm()
    runner = fake_runner(algorithm, iteration=0)
    AdversarialBoundaryHook(scale=0.).before_train_iter(runner, batch_idx=0)
    assert algorithm.boundary_weight == 0.


@pytest.mark.parametrize('wrap', [False, True])
def test_after_train_iter_logs_weight_and_attack_stats(wrap):
    algorithm = FakeAlgorithm()
    algorithm.boundary_weight = 0.4
    algorithm.attack_stats = dict(attacked=16., reached=0.75, steps=4.5,
                                  l2=1.25)
    runner = fake_runner(nn.DataParallel(algorithm) if wrap else algorithm)

    AdversarialBoundaryHook().after_train_iter(runner, batch_idx=0)

    hub = runner.message_hub
    expected = {
        'train/boundary_weight': 0.4,
        'train/boundary_attacked': 16.,
        'train/boundary_reached': 0.75,
        'train/boundary_steps': 4.5,
        'train/boundary_l2': 1.25,
    }
    for key, value in expected.items():
        assert hub.get_scalar(key).current() == pytest.approx(value), key


class ScalarsSeen:
    """Stands for the runner's logger and visualizer in after_train_epoch."""

    def __init__(self) -> None:
        self.lines, self.scalars = [], []

    def info(self, line: str) -> None:
        self.lines.append(line)

    def add_scalars(self, scalars: dict, step: int) -> None:
        self.scalars.append((step, scalars))


def test_after_train_epoch_logs_margin_ratio_and_passes():
    """Weighted by the samples of each step: steps of 2 and 6 samples with
    margins 10 -> 1 and 4 -> 0.5, 3 and 1 passes give ratio (2 * 1 + 6 *
    0.5) / (2 * 10 + 6 * 4) = 5 / 44 and (2 * 3 + 6 * 1) / 8 = 1.5 passes.
    A step without samples changes nothing."""
    algorithm = FakeAlgorithm()
    runner = fake_runner(algorithm)
    seen = ScalarsSeen()
    runner.logger = runner.visualizer = seen
    runner.epoch = 4
    hook = AdversarialBoundaryHook()
    for attacked, clean, margin, steps in ((2., 10., 1., 3.),
                                           (6., 4., 0.5, 1.),
                                           (0., 0., 0., 0.)):
        algorithm.attack_stats = dict(attacked=attacked, margin_clean=clean,
                                      margin=margin, steps=steps)
        hook.after_train_iter(runner, batch_idx=0)

    hook.after_train_epoch(runner)

    (step, scalars), = seen.scalars
    assert step == 5
    assert scalars['boundary_margin_ratio'] == pytest.approx(5 / 44)
    assert scalars['boundary_passes'] == pytest.approx(1.5)
    assert seen.lines == [
        'Epoch 5: teacher margin z_b - z_k on the boundary samples is 0.114 '
        'x the clean margin; 1.50 teacher passes per boundary sample.']
    # The sums start again: an epoch without boundary samples logs nothing.
    hook.after_train_epoch(runner)
    assert len(seen.scalars) == 1


def test_after_train_iter_without_stats_logs_the_weight():
    algorithm = FakeAlgorithm()
    runner = fake_runner(algorithm)
    AdversarialBoundaryHook().after_train_iter(runner, batch_idx=0)
    assert runner.message_hub.get_scalar(
        'train/boundary_weight').current() == 1.
    assert 'train/boundary_attacked' not in runner.message_hub.log_scalars


@pytest.mark.parametrize('wrap', [False, True])
def test_checkpoint_round_trip_reproduces_draws(tmp_path, wrap):
    labels, logits = draw_inputs()
    saved = FakeAlgorithm(seed=3)
    # Advance the generator.
    saved.boundary.attack.sample_targets(labels, logits)
    runner = fake_runner(nn.DataParallel(saved) if wrap else saved)
    hook = AdversarialBoundaryHook()
    checkpoint = dict(meta=dict())

    hook.before_save_checkpoint(runner, checkpoint)
    expected = [
        saved.boundary.attack.sample_targets(labels, logits) for _ in range(3)
    ]

    assert CHECKPOINT_KEY in checkpoint
    # Through a real file, read the safe way as MMEngine resumes it.
    torch.save(checkpoint, tmp_path / 'ckpt.pth')
    checkpoint = torch.load(tmp_path / 'ckpt.pth', weights_only=True)
    resumed = FakeAlgorithm(seed=3)
    runner = fake_runner(nn.DataParallel(resumed) if wrap else resumed)
    hook.after_load_checkpoint(runner, checkpoint)
    draws = [
        resumed.boundary.attack.sample_targets(labels, logits)
        for _ in range(3)
    ]

    for got, want in zip(draws, expected):
        assert torch.equal(got, want)
    # Without the checkpoint the same seed draws something else.
    fresh = FakeAlgorithm(seed=3).boundary.attack.sample_targets(
        labels, logits)
    assert not torch.equal(fresh, expected[0])


@pytest.mark.parametrize('world_size, rank, expected', [
    (2, 0, 0), (2, 1, 1),
    (3, 2, 0),  # another process count: rank 0's state for every rank
])
def test_each_rank_resumes_its_own_sampler(monkeypatch, world_size, rank,
                                           expected):
    """Ranks draw as many targets as they select, so their samplers part:
    a distributed checkpoint keeps every rank's state (gathered at the
    epoch's end) and each rank resumes its own."""
    labels, logits = draw_inputs()
    states, draws = [], []
    for seed in (4, 5):
        ranked = FakeAlgorithm(seed=seed)
        ranked.boundary.attack.sample_targets(labels, logits)
        states.append(ranked.boundary.state_dict())
        draws.append(ranked.boundary.attack.sample_targets(labels, logits))
    hook = AdversarialBoundaryHook()
    monkeypatch.setattr(hook_module, 'get_dist_info',
                        lambda: (0, 2))
    monkeypatch.setattr(hook_module, 'all_gather_object',
                        lambda state: states)
    rank0 = FakeAlgorithm(seed=4)  # the saving rank, as far as rank 0 drew
    rank0.boundary.attack.sample_targets(labels, logits)
    runner = fake_runner(rank0)
    hook.after_train_epoch(runner)
    checkpoint = dict(meta=dict())
    hook.before_save_checkpoint(runner, checkpoint)
    assert len(checkpoint[CHECKPOINT_KEY]['attack_per_rank']) == 2

    monkeypatch.setattr(hook_module, 'get_dist_info',
                        lambda: (rank, world_size))
    resumed = FakeAlgorithm(seed=9)
    hook.after_load_checkpoint(fake_runner(resumed), checkpoint)
    assert torch.equal(resumed.boundary.attack.sample_targets(labels, logits),
                       draws[expected])


def test_checkpoint_without_hook_state_keeps_the_seed():
    labels, logits = draw_inputs()
    algorithm = FakeAlgorithm(seed=3)
    AdversarialBoundaryHook().after_load_checkpoint(
        fake_runner(algorithm), dict(meta=dict()))
    expected = BoundaryAttack(seed=3).sample_targets(labels, logits)
    assert torch.equal(
        algorithm.boundary.attack.sample_targets(labels, logits), expected)


# --- with a real MMEngine Runner -------------------------------------------


class Points(Dataset):

    def __len__(self):
        # 8 iterations of 2: MMEngine sleeps 2 s when a dataloader restarts.
        return 16

    def __getitem__(self, index):
        return torch.tensor([float(index), 1.])


def collate(batch):
    return dict(inputs=torch.stack(batch))


def make_runner(tmp_path, name, max_iters, resume_from=None):
    return Runner(
        model=FakeAlgorithm(seed=5),
        work_dir=str(tmp_path),
        experiment_name=name,
        train_dataloader=DataLoader(
            Points(), batch_size=2, shuffle=False, collate_fn=collate),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=4,
                            by_epoch=False),
            logger=dict(type='LoggerHook', interval=100)),
        custom_hooks=[
            AdversarialBoundaryHook(schedule='linear', end=0.75, warmup=0.25)
        ],
        load_from=resume_from,
        resume=resume_from is not None,
        log_level='WARNING',
        default_scope='mmengine')


@pytest.fixture
def restore_runner_globals():
    """Give back the current logger, message hub and visualizer.

    A Runner makes its own the current ones for the whole process; later
    tests should not log into this test's temporary folder.
    """
    managers = (MessageHub, MMLogger, Visualizer)
    saved = {cls: copy.copy(cls._instance_dict) for cls in managers}
    yield
    for cls, instances in saved.items():
        cls._instance_dict = instances


@pytest.mark.usefixtures('restore_runner_globals')
def test_real_runner_schedule_logging_and_resume(tmp_path):
    name = f'amkd_hook_runner_{next(_hub_names)}'
    runner = make_runner(tmp_path, name, max_iters=8)
    runner.train()
    model = runner.model
    hook = AdversarialBoundaryHook(end=0.75, warmup=0.25)

    # Iteration i (0-based) runs with the weight at progress i / 8.
    assert model.weights_seen == pytest.approx(
        [hook.weight(i / 8) for i in range(8)])
    # ramp(p) * (1 - p / 0.75): 0 * 1, 0.5 * 5/6, 1 * 2/3, ...
    assert model.weights_seen[:3] == pytest.approx([0., 5 / 12, 2 / 3])
    assert model.weights_seen[-1] == 0.
    hub = runner.message_hub
    assert hub.get_scalar('train/boundary_weight').current() == 0.
    assert hub.get_scalar('train/boundary_attacked').current() == 8.
    assert hub.get_scalar('train/boundary_l2').current() == 2.

    # Resume from iteration 4: the last four iterations draw the same.
    resumed = make_runner(tmp_path, name + '_resumed', max_iters=8,
                          resume_from=str(tmp_path / 'iter_4.pth'))
    resumed.train()
    assert resumed.iter == 8
    assert resumed.model.weights_seen == pytest.approx(
        model.weights_seen[4:])
    assert len(resumed.model.draws) == 4
    for got, want in zip(resumed.model.draws, model.draws[4:]):
        assert torch.equal(got, want)
    # Without the saved state the fifth draw would differ.
    assert not torch.equal(
        BoundaryAttack(seed=5).sample_targets(*draw_inputs()),
        model.draws[4])
