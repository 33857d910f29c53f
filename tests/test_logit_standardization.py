# Copyright (c) amkd-mmrazor contributors.
"""LogitStandardization and the metric-term variants as the configs wire
them into the distiller: values against hand computations."""
import copy
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from torch import nn

import amkd_plugin  # noqa: F401  (registers the connector)
from amkd_plugin.models.connectors import LogitStandardization
from amkd_plugin.models.losses import TripletMetricLoss
from amkd_plugin.models.task_modules import BoundarySamples
from amkd_plugin.utils.fragments import merge_fragments
from mmrazor.models.losses import DKDLoss, KLDivergence
from mmrazor.registry import MODELS

pytestmark = pytest.mark.usefixtures('single_torch_thread',
                                     'mmrazor_scope')

REPO = Path(__file__).resolve().parents[1]
DIGITS = 'configs/amkd/resnet20_resnet8_digits'
EXPERIMENTS = 'configs/experiments'
NUM_CLASSES = 5


class Neck(nn.Linear):
    """Returns a tuple, as MMPretrain's necks do."""

    def forward(self, x):
        return (super().forward(x), )


class Toy(nn.Module):
    """``neck`` (features of ``width``) and ``head.fc`` (logits), the
    modules the configs record."""

    def __init__(self, seed: int, width: int = 4) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.neck = Neck(4, width)
        self.head = nn.Module()
        self.head.fc = nn.Linear(width, NUM_CLASSES)
        # Where the labels pass, as into MMPretrain's loss module.
        self.labels = nn.Identity()

    def features(self, x):
        return self.neck(x)[0]

    def forward(self, x, labels=None):
        if labels is not None:
            self.labels(labels)
        return self.head.fc(self.features(x))


def load_config(config: str) -> Config:
    """A config file, or ``'pair.py+fragment.py+...'``: a pair config with
    experiment fragments merged onto it."""
    pair, *fragments = (str(REPO / path) for path in config.split('+'))
    return merge_fragments(pair, fragments)


def distiller_of(config: str, **changes):
    """The distiller of a config, with ``--cfg-options``-like changes."""
    cfg = load_config(config)
    cfg.merge_from_dict(
        {f'model.distiller.{key}': value for key, value in changes.items()})
    return MODELS.build(copy.deepcopy(cfg.model.distiller).to_dict())


def run(distiller, student, teacher, clean, moved):
    """The clean and the boundary pass, as AMKDDistill runs them."""
    distiller.prepare_from_student(student)
    distiller.prepare_from_teacher(teacher)
    with distiller.recording(from_student=False), torch.no_grad():
        teacher(clean)
    with distiller.recording(from_student=True):
        student(clean)
    with distiller.recording(from_student=False,
                             boundary=True), torch.no_grad():
        teacher(moved)
    with distiller.recording(from_student=True, boundary=True):
        student(moved)


def batch():
    gen = torch.Generator().manual_seed(0)
    clean, moved = torch.randn(8, 4, generator=gen), torch.randn(
        3, 4, generator=gen)
    labels = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])
    index = torch.tensor([0, 3, 6])
    boundary = BoundarySamples(moved, index, labels[index],
                               torch.tensor([2, 1, 3]),
                               torch.ones(3, dtype=torch.bool),
                               torch.ones(3, dtype=torch.long), labels)
    return clean, moved, boundary


def standardize(z: torch.Tensor) -> torch.Tensor:
    """By hand, row by row, with Bessel's correction."""
    rows = []
    for row in z:
        mean = sum(row.tolist()) / len(row)
        var = sum((v - mean)**2 for v in row.tolist()) / (len(row) - 1)
        rows.append([(v - mean) / (var**0.5 + 1e-7) for v in row.tolist()])
    return torch.tensor(rows)


# --- the connector ---------------------------------------------------------


def test_standardization_by_hand():
    z = torch.tensor([[1., 2., 3., 6.], [-4., 0., 0., 4.]])
    out = LogitStandardization()(z)
    torch.testing.assert_close(out, standardize(z))
    torch.testing.assert_close(out.mean(1), torch.zeros(2))
    torch.testing.assert_close(out.std(1), torch.ones(2))


def test_standardization_ignores_scale_and_shift():
    z = torch.randn(6, 10, generator=torch.Generator().manual_seed(1))
    ls = LogitStandardization()
    torch.testing.assert_close(ls(3 * z - 7), ls(z), rtol=1e-5, atol=1e-5)


def test_gradients_pass_through_the_student_side():
    z = torch.randn(4, 5, requires_grad=True)
    (LogitStandardization()(z)[:, 0]).sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0


# --- LS on every logit loss ------------------------------------------------


# config: (logits standardized, tau, KD weight); LS configs clip the
# gradient norm at 5 (docs/method.md), the others do not clip.
KD_FORMS = {
    f'{DIGITS}.py': (True, 2, 9),
    'configs/amkd/resnet20_resnet8_digits_lowdata.py+'
    f'{EXPERIMENTS}/sources/online_bss.py': (True, 2, 9),
    'configs/kd/resnet20_resnet8_digits_ls.py': (True, 2, 9),
    'configs/amkd/resnet32x4_shufflenetv2_cifar100.py': (True, 2, 9),
    'configs/amkd/resnet56_resnet20_tiny_imagenet.py': (True, 2, 9),
    f'{DIGITS}.py+{EXPERIMENTS}/logits/no_ls.py': (False, 4, 0.9),
    'configs/amkd/resnet56_resnet20_cifar100.py+'
    f'{EXPERIMENTS}/logits/no_ls.py+{EXPERIMENTS}/sources/online_bss.py':
    (False, 4, 0.9),
    'configs/kd/resnet20_resnet8_digits.py': (False, 4, 0.9),
    'configs/bss/resnet20_resnet8_digits_lowdata.py': (False, 4, 0.9),
    'configs/bss/resnet56_resnet20_cifar100.py': (False, 4, 0.9),
}


@pytest.mark.parametrize('config', KD_FORMS)
def test_clean_and_boundary_kd_of_each_config(config):
    standardized, tau, weight = KD_FORMS[config]
    cfg = load_config(config)
    assert cfg.optim_wrapper.get('clip_grad') == (
        dict(max_norm=5) if standardized else None)
    assert cfg.optim_wrapper.optimizer.type == 'SGD'  # merged, not replaced
    distiller = distiller_of(config)
    assert len(distiller.connectors) == int(standardized)
    student, teacher = Toy(0), Toy(1)
    clean, moved, boundary = batch()
    run(distiller, student, teacher, clean, moved)

    losses = distiller.compute_distill_losses(boundary, 0.5)

    kd = KLDivergence(tau=tau, loss_weight=weight)
    prepare = standardize if standardized else torch.Tensor.detach
    with torch.no_grad():
        expected_clean = kd(prepare(student(clean)), prepare(teacher(clean)))
        expected_boundary = 0.5 * kd(prepare(student(moved)),
                                     prepare(teacher(moved)))
    torch.testing.assert_close(losses['loss_kd'], expected_clean,
                               rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(losses['loss_boundary_kd'],
                               expected_boundary, rtol=1e-5, atol=1e-6)
    sum(losses.values()).backward()
    assert student.head.fc.weight.grad.abs().sum() > 0
    assert teacher.head.fc.weight.grad is None


def test_ls_on_a_stock_dkd_loss():
    """The connector on MMRazor's DKDLoss, by config only."""
    mapping = dict(
        preds_S=dict(from_student=True, recorder='logits', connector='ls'),
        preds_T=dict(from_student=False, recorder='logits', connector='ls'),
        gt_labels=dict(from_student=True, recorder='labels', data_idx=0))
    distiller = MODELS.build(
        dict(
            type='AMKDDistiller',
            student_recorders=dict(
                logits=dict(type='ModuleOutputs', source='head.fc'),
                labels=dict(type='ModuleInputs', source='labels')),
            teacher_recorders=dict(
                logits=dict(type='ModuleOutputs', source='head.fc')),
            connectors=dict(ls=dict(type='LogitStandardization')),
            distill_losses=dict(
                loss_dkd=dict(type='DKDLoss', tau=2, beta=8,
                              reduction='batchmean')),
            loss_forward_mappings=dict(loss_dkd=mapping)))
    student, teacher = Toy(0), Toy(1)
    clean, moved, boundary = batch()
    labels = boundary.labels
    distiller.prepare_from_student(student)
    distiller.prepare_from_teacher(teacher)
    with distiller.recording(from_student=False), torch.no_grad():
        teacher(clean)
    with distiller.recording(from_student=True):
        student(clean, labels)

    losses = distiller.compute_distill_losses(boundary, 1.)

    with torch.no_grad():
        expected = DKDLoss(tau=2, beta=8, reduction='batchmean')(
            standardize(student(clean)), standardize(teacher(clean)),
            labels)
    torch.testing.assert_close(losses['loss_dkd'], expected, rtol=1e-5,
                               atol=1e-6)


# --- the metric term on features, through a connector ----------------------


def test_feature_embedding_through_a_connector():
    """Student features 3 wide, the teacher's 4: a Linear connector maps
    the anchor; positive and negatives are the teacher's features."""
    connector = dict(
        type='TorchNNConnector',
        module_name='Linear',
        module_args=dict(in_features=3, out_features=4))
    distiller = distiller_of(
        f'{DIGITS}.py+{EXPERIMENTS}/logits/no_ls.py+'
        f'{EXPERIMENTS}/metric/features.py',
        connectors=dict(to_teacher=connector),
        **{'loss_forward_mappings.loss_triplet.anchor.connector':
           'to_teacher'})
    student, teacher = Toy(0, width=3), Toy(1, width=4)
    clean, moved, boundary = batch()
    run(distiller, student, teacher, clean, moved)

    losses = distiller.compute_distill_losses(boundary, 1.)

    triplet = TripletMetricLoss(margin=0.5, loss_weight=0.25)
    linear = distiller.connectors['to_teacher']
    with torch.no_grad():
        expected = triplet(
            linear(student.features(moved)), teacher.features(moved),
            teacher.features(clean), boundary)
    torch.testing.assert_close(losses['loss_triplet'], expected)
    assert expected > 0
    losses['loss_triplet'].backward()
    assert student.neck.weight.grad.abs().sum() > 0
    assert next(linear.parameters()).grad.abs().sum() > 0
    assert teacher.neck.weight.grad is None
