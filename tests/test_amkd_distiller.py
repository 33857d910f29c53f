# Copyright (c) amkd-mmrazor contributors.
"""Tests for AMKDDistiller: two passes per recorder and boundary losses."""
import copy
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from torch import nn

import amkd_plugin  # noqa: F401  (mends mmrazor's import first)
from amkd_plugin.models.connectors import LogitStandardization
from amkd_plugin.models.distillers import AMKDDistiller
from amkd_plugin.models.losses import TripletMetricLoss
from amkd_plugin.models.task_modules import BoundarySamples
from mmrazor.models.losses import KLDivergence
from mmrazor.registry import MODELS

# Tiny CPU models on one torch thread, built in MMRazor's scope (see
# conftest.py).
pytestmark = pytest.mark.usefixtures('single_torch_thread',
                                     'mmrazor_scope')

REPO = Path(__file__).resolve().parents[1]
NUM_CLASSES = 5


class Head(nn.Module):

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, NUM_CLASSES)

    def forward(self, x):
        return self.fc(x)


class Toy(nn.Module):
    """Logits from ``head.fc``, the module the AMKD configs record."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.head = Head()

    def forward(self, x):
        return self.head(x)


@pytest.fixture(scope='module')
def amkd_distiller_cfg() -> dict:
    """The distiller of the shipped AMKD base config."""
    cfg = Config.fromfile(str(REPO / 'configs/_base_/distill/amkd.py'))
    return cfg.model.distiller.to_dict()


def clean_kd(cfg: dict):
    """The default's clean KD by hand: KLDivergence with the configured
    temperature and weight on standardized logits."""
    loss_cfg = dict(cfg['distill_losses']['loss_kd'])
    assert loss_cfg.pop('type') == 'KLDivergence'
    kd, ls = KLDivergence(**loss_cfg), LogitStandardization()
    return lambda preds_s, preds_t: kd(ls(preds_s), ls(preds_t))


def build(cfg: dict):
    distiller = MODELS.build(copy.deepcopy(cfg))
    student, teacher = Toy(0), Toy(1)
    distiller.prepare_from_student(student)
    distiller.prepare_from_teacher(teacher)
    return distiller, student, teacher


def run_passes(distiller, student, teacher, clean, boundary_inputs=None):
    """A clean pass, then optionally a boundary pass, as AMKDDistill does."""
    with distiller.recording(from_student=False), torch.no_grad():
        teacher(clean)
    with distiller.recording(from_student=True):
        student(clean)
    if boundary_inputs is not None:
        with distiller.recording(from_student=False,
                                 boundary=True), torch.no_grad():
            teacher(boundary_inputs)
        with distiller.recording(from_student=True, boundary=True):
            student(boundary_inputs)


def boundary_of(labels, index, target, inputs) -> BoundarySamples:
    index = torch.as_tensor(index)
    return BoundarySamples(
        inputs=inputs,
        index=index,
        source=labels[index],
        target=torch.as_tensor(target),
        reached=torch.ones(len(index), dtype=torch.bool),
        steps=torch.ones(len(index), dtype=torch.long),
        labels=labels)


def test_built_from_the_shipped_config(amkd_distiller_cfg):
    distiller, _, _ = build(amkd_distiller_cfg)
    assert isinstance(distiller, AMKDDistiller)
    assert distiller.boundary_losses == {'loss_boundary_kd', 'loss_triplet'}
    assert distiller.losses_taking_boundary == {'loss_triplet'}


def test_boundary_loss_detection_by_record_idx():
    cfg = dict(
        type='AMKDDistiller',
        student_recorders=dict(logits=dict(type='ModuleOutputs',
                                           source='head.fc')),
        teacher_recorders=dict(logits=dict(type='ModuleOutputs',
                                           source='head.fc')),
        distill_losses=dict(
            loss_clean=dict(type='KLDivergence'),
            loss_mixed=dict(type='KLDivergence'),  # one side at record_idx 1
            loss_explicit_zero=dict(type='L2Loss'),
            loss_clean_triplet=dict(
                type='TripletMetricLoss', apply_to='clean')),
        loss_forward_mappings=dict(
            loss_clean=dict(
                preds_S=dict(from_student=True, recorder='logits'),
                preds_T=dict(from_student=False, recorder='logits')),
            loss_mixed=dict(
                preds_S=dict(from_student=True, recorder='logits'),
                preds_T=dict(from_student=False, recorder='logits',
                             record_idx=1)),
            loss_explicit_zero=dict(
                s_feature=dict(from_student=True, recorder='logits',
                               record_idx=0),
                t_feature=dict(from_student=False, recorder='logits',
                               record_idx=0)),
            loss_clean_triplet=dict(
                anchor=dict(from_student=True, recorder='logits'),
                positive=dict(from_student=False, recorder='logits'),
                negatives=dict(from_student=False, recorder='logits'))))
    distiller, _, _ = build(cfg)
    assert distiller.boundary_losses == {'loss_mixed'}
    assert distiller.losses_taking_boundary == {'loss_clean_triplet'}


def test_recording_appends_the_boundary_pass(amkd_distiller_cfg):
    distiller, student, teacher = build(amkd_distiller_cfg)
    clean, moved = torch.randn(6, 4), torch.randn(2, 4)

    run_passes(distiller, student, teacher, clean, moved)

    for from_student, model in ((True, student), (False, teacher)):
        manager = (distiller.student_recorders
                   if from_student else distiller.teacher_recorders)
        assert len(manager.get_recorder('logits').data_buffer) == 2
        with torch.no_grad():
            torch.testing.assert_close(
                distiller.get_record('logits', from_student, record_idx=0),
                model(clean))
            torch.testing.assert_close(
                distiller.get_record('logits', from_student, record_idx=1),
                model(moved))
    # The student's records keep their graph for the losses.
    assert distiller.get_record('logits', True, record_idx=1).requires_grad


def test_forwards_outside_recording_are_not_recorded(amkd_distiller_cfg):
    distiller, student, teacher = build(amkd_distiller_cfg)
    run_passes(distiller, student, teacher, torch.randn(6, 4))
    teacher(torch.randn(3, 4))  # e.g. the attack's forwards
    student(torch.randn(3, 4))
    assert len(distiller.teacher_recorders.get_recorder(
        'logits').data_buffer) == 1
    assert len(distiller.student_recorders.get_recorder(
        'logits').data_buffer) == 1


def test_clean_pass_starts_fresh_records(amkd_distiller_cfg):
    distiller, student, teacher = build(amkd_distiller_cfg)
    run_passes(distiller, student, teacher, torch.randn(6, 4),
               torch.randn(2, 4))
    clean = torch.randn(5, 4)
    run_passes(distiller, student, teacher, clean)  # the next step
    buffer = distiller.teacher_recorders.get_recorder('logits').data_buffer
    assert len(buffer) == 1
    with torch.no_grad():
        torch.testing.assert_close(buffer[0], teacher(clean))


@pytest.mark.parametrize('weight', [1.0, 0.4])
def test_losses_with_boundary_samples(amkd_distiller_cfg, weight):
    distiller, student, teacher = build(amkd_distiller_cfg)
    clean = torch.randn(8, 4)
    labels = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])
    moved = torch.randn(3, 4)
    boundary = boundary_of(labels, [0, 3, 6], [2, 1, 3], moved)
    run_passes(distiller, student, teacher, clean, moved)

    losses = distiller.compute_distill_losses(boundary, weight)

    assert set(losses) == {'loss_kd', 'loss_boundary_kd', 'loss_triplet'}
    kd = clean_kd(amkd_distiller_cfg)
    assert amkd_distiller_cfg['distill_losses']['loss_boundary_kd'] == (
        amkd_distiller_cfg['distill_losses']['loss_kd'])
    triplet_cfg = dict(amkd_distiller_cfg['distill_losses']['loss_triplet'])
    assert triplet_cfg.pop('type') == 'TripletMetricLoss'
    triplet = TripletMetricLoss(**triplet_cfg)  # the shipped defaults
    with torch.no_grad():
        s_clean, t_clean = student(clean), teacher(clean)
        s_moved, t_moved = student(moved), teacher(moved)
    # The clean loss is not scaled; the boundary losses are.
    torch.testing.assert_close(losses['loss_kd'], kd(s_clean, t_clean))
    torch.testing.assert_close(losses['loss_boundary_kd'],
                               weight * kd(s_moved, t_moved))
    torch.testing.assert_close(
        losses['loss_triplet'],
        weight * triplet(s_moved, t_moved, t_clean, boundary))
    assert losses['loss_triplet'] > 0
    sum(losses.values()).backward()
    assert student.head.fc.weight.grad is not None
    assert teacher.head.fc.weight.grad is None


@pytest.mark.parametrize('case', ['empty', 'weight0'])
def test_boundary_losses_zero_without_samples_or_weight(
        amkd_distiller_cfg, case):
    distiller, student, teacher = build(amkd_distiller_cfg)
    clean = torch.randn(8, 4)
    labels = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])
    if case == 'empty':
        # No boundary pass at all: record_idx 1 does not exist.
        run_passes(distiller, student, teacher, clean)
        boundary, weight = BoundarySamples.empty(clean, labels), 1.0
    else:
        moved = torch.randn(3, 4)
        run_passes(distiller, student, teacher, clean, moved)
        boundary, weight = boundary_of(labels, [0, 3, 6], [2, 1, 3],
                                       moved), 0.0

    losses = distiller.compute_distill_losses(boundary, weight)

    for name in ('loss_boundary_kd', 'loss_triplet'):
        assert losses[name].item() == 0.
        assert not torch.isnan(losses[name])
    with torch.no_grad():
        expected = clean_kd(amkd_distiller_cfg)(student(clean),
                                                teacher(clean))
    torch.testing.assert_close(losses['loss_kd'], expected)
    assert losses['loss_kd'] > 0
    sum(losses.values()).backward()  # the zeros do not break backward
    assert student.head.fc.weight.grad is not None


def test_stock_losses_read_the_boundary_pass_by_config():
    """Any MMRazor loss reads the boundary pass with record_idx=1."""
    cfg = dict(
        type='AMKDDistiller',
        student_recorders=dict(logits=dict(type='ModuleOutputs',
                                           source='head.fc')),
        teacher_recorders=dict(logits=dict(type='ModuleOutputs',
                                           source='head.fc')),
        distill_losses=dict(
            loss_kl_boundary=dict(type='KLDivergence', tau=2),
            loss_l2_boundary=dict(type='L2Loss', loss_weight=0.5)),
        loss_forward_mappings=dict(
            loss_kl_boundary=dict(
                preds_S=dict(from_student=True, recorder='logits',
                             record_idx=1),
                preds_T=dict(from_student=False, recorder='logits',
                             record_idx=1)),
            loss_l2_boundary=dict(
                s_feature=dict(from_student=True, recorder='logits',
                               record_idx=1),
                t_feature=dict(from_student=False, recorder='logits',
                               record_idx=1))))
    distiller, student, teacher = build(cfg)
    assert distiller.boundary_losses == {
        'loss_kl_boundary', 'loss_l2_boundary'
    }
    assert distiller.losses_taking_boundary == set()
    clean, moved = torch.randn(8, 4), torch.randn(2, 4)
    labels = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])
    run_passes(distiller, student, teacher, clean, moved)

    losses = distiller.compute_distill_losses(
        boundary_of(labels, [1, 2], [0, 0], moved), 0.5)

    with torch.no_grad():
        s_moved, t_moved = student(moved), teacher(moved)
    kl = MODELS.build(dict(type='KLDivergence', tau=2))
    l2 = MODELS.build(dict(type='L2Loss', loss_weight=0.5))
    torch.testing.assert_close(losses['loss_kl_boundary'],
                               0.5 * kl(s_moved, t_moved))
    torch.testing.assert_close(losses['loss_l2_boundary'],
                               0.5 * l2(s_moved, t_moved))

    run_passes(distiller, student, teacher, clean)
    losses = distiller.compute_distill_losses(
        BoundarySamples.empty(clean, labels), 1.0)
    assert all(value.item() == 0. for value in losses.values())


def test_clean_triplet_gets_the_batch_labels():
    """A triplet on the clean pass runs even when the attack found none."""
    cfg = dict(type='AMKDDistiller',
               student_recorders=dict(
                   logits=dict(type='ModuleOutputs', source='head.fc')),
               teacher_recorders=dict(
                   logits=dict(type='ModuleOutputs', source='head.fc')),
               distill_losses=dict(loss_clean_triplet=dict(
                   type='TripletMetricLoss', apply_to='clean', margin=1.0)),
               loss_forward_mappings=dict(loss_clean_triplet=dict(
                   anchor=dict(from_student=True, recorder='logits'),
                   positive=dict(from_student=False, recorder='logits'),
                   negatives=dict(from_student=False, recorder='logits'))))
    distiller, student, teacher = build(cfg)
    clean = torch.randn(8, 4)
    labels = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])
    run_passes(distiller, student, teacher, clean)
    boundary = BoundarySamples.empty(clean, labels)

    losses = distiller.compute_distill_losses(boundary, 0.0)

    with torch.no_grad():
        t_clean = teacher(clean)
        expected = TripletMetricLoss(apply_to='clean', margin=1.0)(
            student(clean), t_clean, t_clean, boundary)
    assert expected > 0
    torch.testing.assert_close(losses['loss_clean_triplet'], expected)
