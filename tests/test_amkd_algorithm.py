# Copyright (c) amkd-mmrazor contributors.
"""Tests for AMKDDistill built from the flagship config, shrunk to resnet8.

Teacher and student are both resnet8 with 10 classes (via ``cfg_path``
overrides of the flagship CIFAR-100 config), so one training step takes
milliseconds on CPU.

The attack only picks images both models classify correctly. Random
networks rarely agree with real labels, so the tests make candidates on
purpose: the student starts as a copy of the teacher with slightly moved
head weights (so KD losses are not trivially zero), the student's BN runs in
eval mode (so both see the same statistics), and the labels are the
teacher's own predictions. Labels shifted by one class give a batch without
any candidate.
"""
import copy
import math
import os
import re
from pathlib import Path
from typing import Dict

import pytest
import torch
from helpers import assert_same_step, make_student_near_copy, student_step
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample

import amkd_plugin  # noqa: F401  (mends mmrazor's import first)
from amkd_plugin.models.algorithms import AMKDDistill
from amkd_plugin.apis import resolve_model_config
from amkd_plugin.models.boundary import BankedBoundary, OnlineBoundary
from amkd_plugin.utils import UserInputError, UserValueError
from amkd_plugin.utils.fragments import merge_fragments
from mmrazor.registry import MODELS

# Tiny CPU models on one torch thread, built in MMRazor's scope (see
# conftest.py).
pytestmark = pytest.mark.usefixtures('in_repo_root', 'single_torch_thread',
                                     'mmrazor_scope')

REPO = Path(__file__).resolve().parents[1]
# The flagship with BSS's online attack (the bank: test_boundary_bank.py).
FLAGSHIP = 'configs/amkd/resnet56_resnet20_cifar100.py'
ONLINE_BSS = 'configs/experiments/sources/online_bss.py'
RESNET8 = 'configs/_base_/models/resnet8.py'
NUM_CLASSES = 10
BATCH = 8
LOSS_NAMES = {
    'student.loss', 'distill.loss_kd', 'distill.loss_boundary_kd',
    'distill.loss_triplet'
}
BOUNDARY_LOSSES = ('distill.loss_boundary_kd', 'distill.loss_triplet')


@pytest.fixture(scope='module')
def flagship_cfg() -> Config:
    return merge_fragments(str(REPO / FLAGSHIP), [str(REPO / ONLINE_BSS)])


def model_cfg(cfg_path: str = RESNET8,
              num_classes: int = NUM_CLASSES) -> dict:
    return dict(cfg_path=cfg_path, head=dict(num_classes=num_classes))


def build_model(cfg: dict):
    with DefaultScope.overwrite_default_scope('mmrazor'):
        return MODELS.build(resolve_model_config(copy.deepcopy(cfg)))


def save_checkpoint(model, path: Path) -> str:
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
    return str(path)


@pytest.fixture(scope='module')
def teacher_ckpt(tmp_path_factory) -> str:
    """A checkpoint of a freshly built 10-class resnet8."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp('teacher') / 'resnet8_10.pth'
    with DefaultScope.overwrite_default_scope('mmrazor'):
        return save_checkpoint(build_model(model_cfg()), path)


def algorithm_cfg(flagship_cfg: Config, ckpt: str, student: dict = None,
                  teacher: dict = None, **overrides) -> Config:
    """The flagship model config with small models and ``ckpt``."""
    cfg = copy.deepcopy(flagship_cfg)
    model = cfg.model
    # Merge into the config's dicts to keep what the base config sets
    # (e.g. the student's CE loss weight 0.1).
    model.architecture.update(student or model_cfg())
    model.teacher = teacher or model_cfg()
    model.teacher_ckpt = ckpt
    preprocessor = copy.deepcopy(cfg.data_preprocessor)
    preprocessor.num_classes = NUM_CLASSES
    model.data_preprocessor = preprocessor
    model.update(overrides)
    return model


def build_algorithm(cfg) -> AMKDDistill:
    with DefaultScope.overwrite_default_scope('mmrazor'):
        return MODELS.build(copy.deepcopy(cfg))


@pytest.fixture
def algorithm(flagship_cfg, teacher_ckpt) -> AMKDDistill:
    """Teacher resnet8; student a near copy of it with BN in eval mode."""
    return make_student_near_copy(
        build_algorithm(algorithm_cfg(flagship_cfg, teacher_ckpt)),
        teacher_ckpt)


def raw_images(seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (BATCH, 3, 32, 32), generator=gen,
                         dtype=torch.uint8)


def make_batch(algorithm: AMKDDistill, shift: int = 0, seed: int = 0):
    """A data batch labelled with the teacher's predictions plus ``shift``.

    With ``shift=0`` the teacher is right everywhere (and the student, a
    near copy, almost everywhere); with ``shift=1`` the teacher is wrong
    everywhere, so there is no candidate for the attack.
    """
    images = raw_images(seed)
    inputs = algorithm.data_preprocessor(
        dict(inputs=list(images), data_samples=None), True)['inputs']
    with torch.no_grad():
        preds = algorithm.teacher(inputs, mode='tensor').argmax(1)
    labels = (preds + shift) % NUM_CLASSES
    samples = [DataSample().set_gt_label(int(label)) for label in labels]
    return dict(inputs=list(images), data_samples=samples)


def forward_loss(algorithm: AMKDDistill, data: dict) -> Dict:
    data = algorithm.data_preprocessor(copy.deepcopy(data), True)
    return algorithm(data['inputs'], data['data_samples'], mode='loss')


def count_teacher_forwards(algorithm: AMKDDistill) -> list:
    calls = []
    algorithm.teacher.register_forward_hook(
        lambda module, args, output: calls.append(len(args[0])))
    return calls


def teacher_records(algorithm: AMKDDistill) -> list:
    return algorithm.distiller.teacher_recorders.get_recorder(
        'logits').data_buffer


def candidates(algorithm: AMKDDistill, data: dict) -> int:
    """How many rows both models get right."""
    inputs = algorithm.data_preprocessor(copy.deepcopy(data),
                                         True)['inputs']
    labels = torch.cat([s.gt_label for s in data['data_samples']])
    with torch.no_grad():
        right = [(model(inputs, mode='tensor').argmax(1) == labels)
                 for model in (algorithm.teacher, algorithm.student)]
    return int((right[0] & right[1]).sum())


# --- a training step -------------------------------------------------------


def test_built_from_the_flagship_config(algorithm):
    assert isinstance(algorithm, AMKDDistill)
    assert algorithm.boundary_weight == 1.0
    assert algorithm.attack_stats == {}
    attack = algorithm.boundary.attack
    assert (attack.max_steps, attack.step_size,
            attack.max_ratio) == (10, 0.3, 0.25)
    # The base config's student CE weight survived the cfg_path overrides.
    assert algorithm.student.head.loss_module.loss_weight == 0.1
    assert algorithm.student.head.num_classes == NUM_CLASSES
    assert all(not p.requires_grad for p in algorithm.teacher.parameters())


def test_the_teacher_is_the_checkpoints_with_its_batch_norms_folded(
        flagship_cfg, teacher_ckpt):
    algorithm = build_algorithm(algorithm_cfg(flagship_cfg, teacher_ckpt))
    algorithm.init_weights()  # must not re-initialise the teacher
    reference = build_model(model_cfg()).eval()
    reference.load_state_dict(
        torch.load(teacher_ckpt, map_location='cpu')['state_dict'])
    inputs = algorithm.data_preprocessor(
        dict(inputs=list(raw_images()), data_samples=None), True)['inputs']

    assert not any(
        isinstance(module, torch.nn.BatchNorm2d)
        for module in algorithm.teacher.modules())
    assert not any(p.requires_grad for p in algorithm.teacher.parameters())
    with torch.no_grad():
        torch.testing.assert_close(
            algorithm.teacher(inputs, mode='tensor'),
            reference(inputs, mode='tensor'), rtol=1e-4, atol=1e-5)


def test_a_checkpoint_keeps_the_student_and_not_its_teacher(
        flagship_cfg, teacher_ckpt):
    """Checkpoints saved before the teacher was folded still load: the
    folded teacher stays, the student is the checkpoint's."""
    algorithm = build_algorithm(algorithm_cfg(flagship_cfg, teacher_ckpt))
    teacher = copy.deepcopy(algorithm.teacher.state_dict())
    state = {
        key: value + 1 if key.startswith('architecture.') else value
        for key, value in algorithm.state_dict().items()
        if not key.startswith('teacher.')
    }
    unfolded = torch.load(teacher_ckpt, map_location='cpu')['state_dict']
    state.update({f'teacher.{key}': value for key, value in unfolded.items()})

    algorithm.load_state_dict(state)  # strict

    for key, value in algorithm.teacher.state_dict().items():
        assert torch.equal(value, teacher[key]), key
    for key, value in algorithm.student.state_dict().items():
        assert torch.equal(value, state[f'architecture.{key}']), key


def test_train_step_updates_student_only(algorithm):
    data = make_batch(algorithm)
    assert candidates(algorithm, data) >= 2  # the attack has work to do
    student_before = copy.deepcopy(algorithm.student.state_dict())
    teacher_before = copy.deepcopy(algorithm.teacher.state_dict())
    forwards = count_teacher_forwards(algorithm)
    optim_wrapper = OptimWrapper(
        torch.optim.SGD(algorithm.parameters(), lr=0.1, momentum=0.9))

    log_vars = algorithm.train_step(data, optim_wrapper)

    assert set(log_vars) == LOSS_NAMES | {'loss'}
    assert all(math.isfinite(v.item()) for v in log_vars.values())
    changed = [
        name for name, value in algorithm.student.state_dict().items()
        if not torch.equal(value, student_before[name])
    ]
    assert 'head.fc.weight' in changed and 'backbone.conv1.weight' in changed
    for name, value in algorithm.teacher.state_dict().items():
        assert torch.equal(value, teacher_before[name]), name
    assert all(p.grad is None for p in algorithm.teacher.parameters())
    # The clean pass and the attack's passes, each sample in one per step
    # and in its last: no teacher pass on the boundary samples, whose
    # logits came with the attack.
    assert forwards[0] == BATCH
    num = math.ceil(0.25 * BATCH)
    assert forwards[1] == num
    steps = algorithm.attack_stats['steps'] * num
    assert sum(forwards[1:]) == num + round(steps)
    # The attack's forwards were not recorded: the clean pass and the
    # attack's logits on the boundary samples only.
    records = teacher_records(algorithm)
    assert [r.shape for r in records] == [(BATCH, NUM_CLASSES),
                                          (num, NUM_CLASSES)]
    student_records = algorithm.distiller.student_recorders.get_recorder(
        'logits').data_buffer
    assert [r.shape for r in student_records] == [(BATCH, NUM_CLASSES),
                                                  (num, NUM_CLASSES)]


def test_loss_names_and_attack_stats(algorithm):
    losses = forward_loss(algorithm, make_batch(algorithm))

    assert set(losses) == LOSS_NAMES
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses['distill.loss_kd'] > 0
    assert losses['distill.loss_boundary_kd'] > 0
    assert losses['distill.loss_boundary_kd'].requires_grad
    stats = algorithm.attack_stats
    assert set(stats) == {'attacked', 'reached', 'steps', 'l2',
                          'margin_clean', 'margin'}
    assert stats['attacked'] == math.ceil(0.25 * BATCH)
    assert 0 <= stats['reached'] <= 1
    assert 1 <= stats['steps'] <= algorithm.boundary.attack.max_steps
    assert stats['l2'] > 0


def test_the_attacks_logits_stand_in_for_the_teachers_boundary_pass(
        algorithm, monkeypatch):
    """The same step with the logits of the attack's last passes and with
    a teacher pass on the boundary samples: the same losses and student
    gradients, up to the float32 summation order of the teacher on a batch
    of another size."""
    data = make_batch(algorithm)
    state = copy.deepcopy(algorithm.boundary.attack.state_dict())
    forwards = count_teacher_forwards(algorithm)
    reused = student_step(algorithm, forward_loss, data)
    passes = len(forwards)
    algorithm.boundary.attack.load_state_dict(state)  # the same targets
    # As for a boundary loss on a teacher record other than its logits.
    monkeypatch.setattr(algorithm, '_boundary_teacher_logits', None)
    forwards.clear()
    fresh = student_step(algorithm, forward_loss, data)

    assert len(forwards) == passes + 1
    assert forwards[-1] == math.ceil(0.25 * BATCH)  # the boundary pass
    assert reused[0]['distill.loss_boundary_kd'] > 0
    assert_same_step(reused, fresh)


def test_batch_without_candidates(algorithm):
    data = make_batch(algorithm, shift=1)  # the teacher is always wrong
    assert candidates(algorithm, data) == 0
    forwards = count_teacher_forwards(algorithm)

    losses = forward_loss(algorithm, data)

    assert set(losses) == LOSS_NAMES
    assert all(torch.isfinite(v) for v in losses.values())
    for name in BOUNDARY_LOSSES:
        assert losses[name].item() == 0.
    assert losses['distill.loss_kd'] > 0
    assert forwards == [BATCH]
    assert len(teacher_records(algorithm)) == 1
    assert algorithm.attack_stats == dict(attacked=0., reached=0., steps=0.,
                                          l2=0., margin_clean=0., margin=0.)
    sum(losses.values()).backward()


def test_boundary_weight_zero_skips_the_attack(algorithm):
    data = make_batch(algorithm)
    assert candidates(algorithm, data) >= 2
    algorithm.boundary_weight = 0.
    forwards = count_teacher_forwards(algorithm)

    losses = forward_loss(algorithm, data)

    assert forwards == [BATCH]  # the clean pass only
    assert len(teacher_records(algorithm)) == 1
    for name in BOUNDARY_LOSSES:
        assert losses[name].item() == 0.
    assert algorithm.attack_stats['attacked'] == 0.
    assert algorithm.boundary.attack.state_dict() == {}  # no target was drawn


def test_boundary_weight_scales_boundary_losses_only(algorithm):
    data = make_batch(algorithm)
    state = copy.deepcopy(algorithm.boundary.attack.state_dict())
    full = forward_loss(algorithm, data)
    algorithm.boundary.attack.load_state_dict(state)  # the same targets again
    algorithm.boundary_weight = 0.25
    scaled = forward_loss(algorithm, data)

    assert algorithm.attack_stats['attacked'] > 0
    for name in ('student.loss', 'distill.loss_kd'):
        torch.testing.assert_close(scaled[name], full[name])
    for name in BOUNDARY_LOSSES:
        torch.testing.assert_close(scaled[name], 0.25 * full[name])


def test_attack_gets_per_channel_pixel_bounds(algorithm):
    seen = {}
    attack = algorithm.boundary.attack

    def spy(*args):
        seen['bounds'] = args[-1]
        seen['samples'] = attack(*args)
        return seen['samples']

    algorithm.boundary.attack = spy
    forward_loss(algorithm, make_batch(algorithm))

    lower, upper = seen['bounds']
    mean = torch.tensor([129.3105, 124.1085, 112.404]).view(3, 1, 1)
    std = torch.tensor([68.2125, 65.4075, 70.4055]).view(3, 1, 1)
    torch.testing.assert_close(lower, -mean / std)
    torch.testing.assert_close(upper, (255 - mean) / std)
    inputs = seen['samples'].inputs
    assert inputs.shape == (math.ceil(0.25 * BATCH), 3, 32, 32)
    assert (inputs >= lower - 1e-6).all() and (inputs <= upper + 1e-6).all()


def test_calculate_student_loss_false_drops_the_task_loss(
        flagship_cfg, teacher_ckpt):
    algorithm = build_algorithm(
        algorithm_cfg(flagship_cfg, teacher_ckpt,
                      calculate_student_loss=False))
    algorithm.train()
    losses = forward_loss(algorithm, make_batch(algorithm, shift=1))
    assert set(losses) == LOSS_NAMES - {'student.loss'}


def test_distillation_stopped_leaves_the_task_loss(algorithm):
    algorithm.distillation_stopped = True
    losses = forward_loss(algorithm, make_batch(algorithm))
    assert set(losses) == {'student.loss'}


# --- errors the user can fix -----------------------------------------------


def test_missing_teacher_checkpoint_names_file_and_command(
        flagship_cfg, tmp_path):
    missing = tmp_path / 'no_such_teacher.pth'
    cfg = algorithm_cfg(
        flagship_cfg, str(missing),
        teacher=dict(cfg_path='configs/teachers/resnet56_cifar100.py'),
        student=dict(cfg_path='configs/_base_/models/resnet8.py'))
    cfg.data_preprocessor.num_classes = 100
    with pytest.raises(UserInputError) as info:
        build_algorithm(cfg)
    message = str(info.value)
    assert str(missing) in message
    assert ('python tools/train.py configs/teachers/resnet56_cifar100.py'
            in message)


def test_flagship_config_names_how_to_make_its_teacher(flagship_cfg,
                                                       tmp_path):
    """Unchanged flagship models; the checkpoint path it ships is absent."""
    cfg = copy.deepcopy(flagship_cfg.model)
    cfg.teacher_ckpt = str(tmp_path / 'epoch_240.pth')
    cfg.data_preprocessor = copy.deepcopy(flagship_cfg.data_preprocessor)
    with pytest.raises(
            UserInputError,
            match=re.escape('`python tools/train.py '
                            'configs/teachers/resnet56_cifar100.py`')):
        build_algorithm(cfg)


@pytest.mark.parametrize('ckpt', [None, ''])
def test_no_teacher_checkpoint_given(flagship_cfg, ckpt):
    with pytest.raises(UserInputError, match='No teacher checkpoint given'):
        build_algorithm(algorithm_cfg(flagship_cfg, ckpt))


def test_checkpoint_of_another_architecture(flagship_cfg, teacher_ckpt):
    cfg = algorithm_cfg(
        flagship_cfg, teacher_ckpt,
        teacher=model_cfg('configs/_base_/models/resnet14.py'))
    with pytest.raises(UserInputError,
                       match=r'does not fit the teacher model[\s\S]*'
                       r'python tools/train\.py configs/_base_/models/'
                       r'resnet14\.py') as info:
        build_algorithm(cfg)
    assert teacher_ckpt in str(info.value)


def test_checkpoint_of_another_class_count(flagship_cfg, teacher_ckpt):
    cfg = algorithm_cfg(
        flagship_cfg, teacher_ckpt,
        student=model_cfg(num_classes=100),
        teacher=model_cfg(num_classes=100))
    with pytest.raises(UserInputError, match='does not fit') as info:
        build_algorithm(cfg)
    assert 'head.fc.weight' in str(info.value)


def test_corrupt_checkpoint(flagship_cfg, tmp_path):
    corrupt = tmp_path / 'corrupt.pth'
    corrupt.write_bytes(os.urandom(4096))
    with pytest.raises(UserInputError, match='cannot be read') as info:
        build_algorithm(algorithm_cfg(flagship_cfg, str(corrupt)))
    assert str(corrupt) in str(info.value)


def test_truncated_checkpoint(flagship_cfg, teacher_ckpt, tmp_path):
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(Path(teacher_ckpt).read_bytes()[:2000])
    with pytest.raises(UserInputError, match='cannot be read'):
        build_algorithm(algorithm_cfg(flagship_cfg, str(truncated)))


def test_student_and_teacher_class_counts_differ(flagship_cfg,
                                                 teacher_ckpt):
    cfg = algorithm_cfg(
        flagship_cfg, teacher_ckpt, student=model_cfg(num_classes=100))
    with pytest.raises(UserInputError,
                       match=r'different numbers of classes \(100 vs 10\)'):
        build_algorithm(cfg)


def test_missing_model_config_file(flagship_cfg, teacher_ckpt):
    cfg = algorithm_cfg(
        flagship_cfg, teacher_ckpt,
        teacher=dict(cfg_path='configs/teachers/no_such_teacher.py'))
    with pytest.raises(UserInputError,
                       match='configs/teachers/no_such_teacher.py does not '
                       'exist'):
        build_algorithm(cfg)


@pytest.mark.parametrize('old', ['attack', 'bank'])
def test_the_old_attack_and_bank_arguments_say_how_to_migrate(
        flagship_cfg, teacher_ckpt, old):
    cfg = algorithm_cfg(flagship_cfg, teacher_ckpt,
                        **{old: dict(type='BoundaryAttack')})
    with pytest.raises(UserValueError,
                       match="boundary=dict.type='BankedBoundary'"):
        build_algorithm(cfg)


def test_one_switch_between_online_and_banked(flagship_cfg, teacher_ckpt):
    """The pair's boundary source is its one switch; the attack settings
    stay the attack's."""
    built = {}
    for source in ('OnlineBoundary', 'BankedBoundary'):
        cfg = algorithm_cfg(flagship_cfg, teacher_ckpt)
        cfg.boundary.type = source
        built[source] = build_algorithm(cfg).boundary
    online, banked = built['OnlineBoundary'], built['BankedBoundary']
    assert isinstance(online, OnlineBoundary)
    assert isinstance(banked, BankedBoundary)
    assert online.attack.settings() == banked.attack.settings()
    assert online.attack.max_ratio == banked.attack.max_ratio == 0.25
    assert banked.builder.attack is banked.attack


# --- mixed precision ---------------------------------------------------------


def test_step_under_autocast(algorithm):
    """The step as `--amp` runs it (CPU autocast stands in for CUDA's)."""
    data = make_batch(algorithm)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = forward_loss(algorithm, data)

    assert algorithm.attack_stats['attacked'] > 0
    assert all(torch.isfinite(v) for v in losses.values())
    # Not its sign: CPU autocast runs MMRazor's KL in bfloat16.
    assert losses['distill.loss_boundary_kd'] != 0
    sum(losses.values()).backward()
    assert all(p.grad is None for p in algorithm.teacher.parameters())
    assert any(p.grad is not None for p in algorithm.student.parameters())
