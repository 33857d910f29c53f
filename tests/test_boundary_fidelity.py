# Copyright (c) amkd-mmrazor contributors.
"""Tests for BoundaryFidelity and the hook that reports it."""
import copy
import math
import json
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmpretrain.models import ClsDataPreprocessor
from mmpretrain.structures import DataSample
from torch import nn

import amkd_plugin  # noqa: F401  (mends mmrazor's import first)
from amkd_plugin.engine.hooks import BoundaryFidelityHook
from amkd_plugin.models.task_modules import BoundaryFidelity
from amkd_plugin.utils.pixels import pixel_bounds
from amkd_plugin.utils import UserInputError
from mmrazor.registry import HOOKS, TASK_UTILS

pytestmark = pytest.mark.usefixtures('single_torch_thread',
                                     'mmrazor_scope')

NUM_CLASSES = 5
MEAN, STD = [120., 110., 100.], [60., 50., 40.]
BOUNDS = (-2., 2.)


class Classifier(BaseModel):
    """A small MLP with MMPretrain's forward signature.

    Weights are doubled from PyTorch's init so that the attack's gradient
    steps are large enough to cross the boundary in a few steps, as with
    real networks.
    """

    def __init__(self, seed: int = 0) -> None:
        super().__init__(
            data_preprocessor=ClsDataPreprocessor(mean=MEAN, std=STD))
        torch.manual_seed(seed)
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(3 * 4 * 4, 32), nn.BatchNorm1d(32),
            nn.ReLU(), nn.Linear(32, NUM_CLASSES))
        with torch.no_grad():
            for param in self.net.parameters():
                param.mul_(2)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return self.net(inputs)


class Constant(nn.Module):
    """Always the same logits, whatever the input."""

    def forward(self, inputs, data_samples=None, mode='tensor'):
        logits = torch.arange(NUM_CLASSES, dtype=torch.float)
        return logits.expand(len(inputs), -1)


def images_and_labels(teacher, num=64):
    """Random images labelled with the teacher's own predictions, so the
    teacher is right on all of them."""
    images = torch.rand(num, 3, 4, 4,
                        generator=torch.Generator().manual_seed(1))
    images = images * 2 - 1
    with torch.no_grad():
        labels = teacher(images).argmax(1)
    return images, labels


@pytest.fixture
def teacher():
    return Classifier(seed=0).eval()


def measure(fidelity, teacher, student, images, labels):
    sums = fidelity.measure(teacher, student, images, labels, BOUNDS)
    return fidelity.summarize(sums)


def test_registered_with_training_defaults_but_more_steps():
    fidelity = TASK_UTILS.build(dict(type='BoundaryFidelity'))
    assert isinstance(fidelity, BoundaryFidelity)
    assert fidelity.attack.max_steps == 30
    assert fidelity.attack.step_size == 0.3
    assert fidelity.ts == (0.5, 1.0, 1.5)


def test_path_point_is_the_clipped_line_through_the_boundary_sample():
    clean = torch.tensor([[0., 1.]])
    adv = torch.tensor([[1., 1.5]])
    point = BoundaryFidelity.path_point(clean, adv, 1.5, (-1., 2.))
    torch.testing.assert_close(point, torch.tensor([[1.5, 1.75]]))
    point = BoundaryFidelity.path_point(clean, adv, 3., (-1., 2.))
    torch.testing.assert_close(point, torch.tensor([[2., 2.]]))  # clipped
    torch.testing.assert_close(
        BoundaryFidelity.path_point(clean, adv, 1., (-1., 2.)), adv)


def test_boundary_samples_target_the_runner_up_and_cross_the_boundary(
        teacher):
    images, labels = images_and_labels(teacher)
    labels[:4] = (labels[:4] + 1) % NUM_CLASSES  # the teacher is wrong here
    boundary = BoundaryFidelity().boundary_samples(teacher, images, labels,
                                                   BOUNDS)
    assert boundary.index.tolist() == list(range(4, len(images)))
    logits = teacher(images[boundary.index]).detach()
    logits[torch.arange(boundary.num), boundary.source] = -1e9
    assert torch.equal(boundary.target, logits.argmax(1))
    assert boundary.reached.float().mean() > 0.8
    # The attack stops once b is not the argmax, often by a few ulps: here,
    # in another batch, b may be back on top by as little; never by more.
    logits = teacher(boundary.inputs[boundary.reached]).detach()
    source = boundary.source[boundary.reached]
    z_b = logits.gather(1, source[:, None]).squeeze(1)
    others = logits.scatter(1, source[:, None], float('-inf')).amax(1)
    assert (z_b - others < 1e-5).all()


def test_copy_of_the_teacher_agrees_everywhere(teacher):
    images, labels = images_and_labels(teacher)
    student = copy.deepcopy(teacher)
    result = measure(BoundaryFidelity(), teacher, student, images, labels)
    for t in ('0.5', '1.0', '1.5'):
        assert result[f'agree_t{t}'] == 100
    assert result['agree_mean'] == 100
    assert result['kl_t1.0'] == pytest.approx(0, abs=1e-6)
    assert result['images'] > 40
    assert result['reached'] == pytest.approx(
        100 * result['images'] / len(images))


def test_constant_student_has_low_fidelity(teacher):
    images, labels = images_and_labels(teacher)
    result = measure(BoundaryFidelity(), teacher, Constant(), images, labels)
    # It predicts one class; the teacher predicts b before the boundary and
    # mostly k after it, with b and k varying over the images.
    assert result['agree_mean'] < 40
    assert result['kl_t1.0'] > 0.5


def test_kl_is_teacher_to_student_at_the_boundary_by_hand(teacher):
    images, labels = images_and_labels(teacher, num=8)
    student = Classifier(seed=3).eval()
    fidelity = BoundaryFidelity()
    result = measure(fidelity, teacher, student, images, labels)
    boundary = fidelity.boundary_samples(teacher, images, labels, BOUNDS)
    # The point measure() evaluates (bit for bit, unlike adv itself).
    adv = fidelity.path_point(images[boundary.index[boundary.reached]],
                              boundary.inputs[boundary.reached], 1.0, BOUNDS)
    with torch.no_grad():
        p = teacher(adv).softmax(1)
        q = student(adv).softmax(1)
        agree = (p.argmax(1) == q.argmax(1)).float().mean() * 100
    expected = (p * (p.log() - q.log())).sum(1).mean()
    assert result['kl_t1.0'] == pytest.approx(expected.item(), rel=1e-4)
    assert result['agree_t1.0'] == pytest.approx(agree.item())


def test_same_models_and_images_give_the_same_figures(teacher):
    images, labels = images_and_labels(teacher)
    student = Classifier(seed=5).eval()
    first = measure(BoundaryFidelity(), teacher, student, images, labels)
    second = measure(BoundaryFidelity(), teacher, student, images, labels)
    assert first == second


def test_teacher_logits_at_hand_spare_a_teacher_pass(teacher):
    """Given the teacher's logits on the images, ``measure`` skips its own
    clean teacher pass and gives the same sums."""
    images, labels = images_and_labels(teacher)
    student = Classifier(seed=5).eval()
    calls = []

    def counted(inputs):
        calls.append(len(inputs))
        return teacher(inputs)

    fidelity = BoundaryFidelity()
    own = fidelity.measure(counted, student, images, labels, BOUNDS)
    passes = len(calls)
    calls.clear()
    with torch.no_grad():
        logits = teacher(images)
    given = fidelity.measure(counted, student, images, labels, BOUNDS,
                             logits)
    assert len(calls) == passes - 1
    assert given.keys() == own.keys()
    for name in own:
        torch.testing.assert_close(given[name], own[name])


# --- the hook -------------------------------------------------------------


class Distill(BaseModel):
    """What the hook reads of a distillation algorithm."""

    def __init__(self, student, teacher):
        super().__init__(
            data_preprocessor=ClsDataPreprocessor(mean=MEAN, std=STD))
        self.student = student
        self.teacher = teacher

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return self.student(inputs)


def data_batches(teacher, num_batches=3, batch_size=16):
    """Raw uint8 batches as a dataloader yields them, labelled by the
    teacher."""
    gen = torch.Generator().manual_seed(2)
    preprocessor = ClsDataPreprocessor(mean=MEAN, std=STD)
    batches = []
    for _ in range(num_batches):
        images = torch.randint(0, 256, (batch_size, 3, 4, 4),
                               generator=gen, dtype=torch.uint8)
        with torch.no_grad():
            labels = teacher(preprocessor(dict(inputs=images))['inputs'])
        batches.append(
            dict(inputs=list(images),
                 data_samples=[DataSample().set_gt_label(int(y))
                               for y in labels.argmax(1)]))
    return batches


def fake_runner(model, batches):
    return SimpleNamespace(model=model, val_dataloader=batches,
                           test_dataloader=batches)


def test_hook_reports_every_interval_and_keeps_models_as_they_were(teacher):
    batches = data_batches(teacher)
    student = Classifier(seed=3).train()
    teacher.train()
    models = Distill(student, teacher)
    before = {k: v.clone() for k, v in models.state_dict().items()}
    hook = HOOKS.build(dict(type='BoundaryFidelityHook', interval=2))
    assert hook.priority == 'HIGHEST'  # before RuntimeInfoHook logs metrics
    runner = fake_runner(models, batches)

    rounds = []
    for _ in range(4):
        metrics = {'accuracy/top1': 50.}
        hook.after_val_epoch(runner, metrics)
        rounds.append(metrics)
    assert [len(m) for m in rounds] == [1, 10, 1, 10]
    assert rounds[1] == rounds[3]
    assert 0 <= rounds[1]['fidelity/agree_mean'] <= 100

    assert student.training and teacher.training
    # Parameters and BN statistics unchanged; no parameter gradient.
    for name, value in models.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert all(p.grad is None for p in models.parameters())


def test_hook_test_round_matches_the_task_module(teacher):
    student = Classifier(seed=3).eval()
    batches = data_batches(teacher)
    metrics = {}
    BoundaryFidelityHook().after_test_epoch(
        fake_runner(Distill(student, teacher), batches), metrics)

    # Batch by batch as the hook measures: one batch of all images would
    # take other matrix-product kernels and end some attacks elsewhere.
    fidelity = BoundaryFidelity()
    preprocessor = ClsDataPreprocessor(mean=MEAN, std=STD)
    sums = {}
    for batch in batches:
        data = preprocessor(batch)
        labels = torch.cat([s.gt_label for s in data['data_samples']])
        batch = {
            **fidelity.measure(teacher, student, data['inputs'], labels,
                               pixel_bounds(preprocessor)),
            **fidelity.measure_clean(teacher(data['inputs']),
                                     student(data['inputs']), labels)
        }
        for key, value in batch.items():
            sums[key] = sums.get(key, 0) + value
    expected = fidelity.summarize(sums)
    assert metrics == pytest.approx(
        {f'fidelity/{k}': v for k, v in expected.items()})


def test_hook_max_images_attacks_the_first_images_only(teacher):
    student = Classifier(seed=3).eval()
    batches = data_batches(teacher)
    runner = fake_runner(Distill(student, teacher), batches)
    metrics, every = {}, {}
    BoundaryFidelityHook(max_images=20).after_test_epoch(runner, metrics)
    assert 0 < metrics['fidelity/images'] <= 20
    # The clean comparison is of every image, whatever the limit.
    BoundaryFidelityHook().after_test_epoch(runner, every)
    assert metrics['fidelity/images'] < every['fidelity/images']
    for key in ('fidelity/agree_clean', 'fidelity/missed'):
        assert metrics[key] == pytest.approx(every[key])


def test_clean_agreement_and_missed_count_what_they_say():
    # Three images of classes 0, 1, 2. The teacher says 0, 1, 0 (right,
    # right, wrong); the student 0, 2, 0 (right, wrong, wrong): same class
    # as the teacher on images 0 and 2; missed: image 1.
    labels = torch.tensor([0, 1, 2])
    teacher = F.one_hot(torch.tensor([0, 1, 0]), 3).float()
    student = F.one_hot(torch.tensor([0, 2, 0]), 3).float()
    sums = BoundaryFidelity.measure_clean(teacher, student, labels)
    assert {k: v.item() for k, v in sums.items()} == dict(
        clean=3, agree_clean=2, missed=1)
    sums.update(correct=torch.tensor(0.), reached=torch.tensor(0.),
                kl=torch.tensor(0.), **{f'agree_t{t}': torch.tensor(0.)
                                        for t in ('0.5', '1.0', '1.5')})
    result = BoundaryFidelity().summarize(sums)
    assert result['agree_clean'] == pytest.approx(200 / 3)
    assert result['missed'] == pytest.approx(100 / 3)


def test_hook_without_a_teacher_says_how_to_name_one():
    # Loading a named teacher is tested through tools/test.py --teacher.
    with pytest.raises(UserInputError, match='--teacher CONFIG CKPT'):
        BoundaryFidelityHook().after_test_epoch(
            fake_runner(Classifier(), []), {})
    with pytest.raises(ValueError, match='interval >= 1'):
        BoundaryFidelityHook(interval=0)


def test_batch_the_teacher_gets_all_wrong_adds_nothing(teacher):
    images, labels = images_and_labels(teacher, num=8)
    wrong = (labels + 1) % NUM_CLASSES
    sums = BoundaryFidelity().measure(teacher, teacher, images, wrong, BOUNDS)
    assert all(value.item() == 0 for value in sums.values())
    assert set(sums) == {'correct', 'reached', 'kl', 'agree_t0.5',
                         'agree_t1.0', 'agree_t1.5'}


def test_builds_under_a_classifier_configs_scope():
    """tools/test.py --teacher on a classifier: the runner's scope is
    mmpretrain while the hook and its attack are built."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        hook = HOOKS.build(dict(type='mmrazor.BoundaryFidelityHook'))
    assert hook.fidelity.attack.max_steps == 30


class PredictingDistill(Distill):
    """Distill with MMPretrain's predict mode, for a real validation loop."""

    def forward(self, inputs, data_samples=None, mode='tensor'):
        scores = self.student(inputs).softmax(1)
        return [sample.set_pred_score(score)
                for sample, score in zip(data_samples, scores)]


def test_validation_rounds_reach_the_visualisation_backend(tmp_path,
                                                           teacher):
    """Through a real Runner: the figures land in scalars.json, which is
    what TensorBoard and the other backends are fed from."""
    from mmengine.runner import Runner
    batches = data_batches(teacher)
    samples = [dict(inputs=image, data_samples=sample)
               for batch in batches
               for image, sample in zip(batch['inputs'],
                                        batch['data_samples'])]
    runner = Runner(
        model=PredictingDistill(Classifier(seed=3), teacher),
        work_dir=str(tmp_path),
        val_dataloader=dict(
            dataset=samples, batch_size=16, sampler=dict(
                type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='pseudo_collate')),
        val_cfg=dict(),
        val_evaluator=dict(type='mmpretrain.Accuracy'),
        custom_hooks=[dict(type='mmrazor.BoundaryFidelityHook')],
        default_scope='mmrazor',
        visualizer=dict(type='Visualizer',
                        vis_backends=[dict(type='LocalVisBackend')]))
    metrics = runner.val()
    assert 'fidelity/agree_mean' in metrics
    logged = [
        json.loads(line) for path in tmp_path.glob('*/vis_data/scalars.json')
        for line in path.read_text().splitlines()
    ]
    assert logged and logged[-1]['fidelity/agree_mean'] == pytest.approx(
        metrics['fidelity/agree_mean'])


def test_hook_keeps_each_submodules_mode(teacher):
    """A training distiller keeps its teacher's BatchNorm in eval mode."""
    batches = data_batches(teacher)
    teacher.train()
    teacher.net[2].eval()
    BoundaryFidelityHook().after_test_epoch(
        fake_runner(Distill(Classifier(seed=3), teacher), batches), {})
    assert teacher.training and not teacher.net[2].training


def test_figures_over_no_images_are_nan_not_zero(teacher):
    images, labels = images_and_labels(teacher, num=8)
    fidelity = BoundaryFidelity()
    result = fidelity.summarize(
        fidelity.measure(teacher, teacher, images, (labels + 1) % NUM_CLASSES,
                         BOUNDS))
    assert result['images'] == 0
    for name in ('agree_t0.5', 'agree_mean', 'kl_t1.0', 'reached'):
        assert math.isnan(result[name]), name
