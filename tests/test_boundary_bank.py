# Copyright (c) amkd-mmrazor contributors.
"""Tests for the boundary bank: BoundaryBankBuilder, the banked AMKD step
and the configs (the bank is the default; ``*_online.py`` attack online).

The builder runs on a dozen digits images with a barely trained 10-class
resnet8 teacher; the labels are the teacher's own predictions except for a
few rows, which the teacher therefore gets wrong. The banked step uses the
digits ``_bank`` config (student switched to resnet20) with a random
resnet20 teacher; the student starts as a near copy of it (BN in eval
mode), so both models get most images right and the selection has
candidates, as in ``test_amkd_algorithm.py``.
"""
import copy
import glob
import os
import os.path as osp
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
import torch
from helpers import make_student_near_copy
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope
from mmpretrain.datasets.base_dataset import BaseDataset
from mmpretrain.models import ClsDataPreprocessor
from sklearn.datasets import load_digits
from torch.nn.modules.batchnorm import _BatchNorm

import amkd_plugin  # noqa: F401  (mends mmrazor's import first)
from amkd_plugin.datasets import BoundaryBankFile, LoadBoundaryBank
from amkd_plugin.utils import UserValueError
from amkd_plugin.datasets.digits import digits_to_rgb32
from amkd_plugin.models.algorithms import AMKDDistill
from amkd_plugin.models.algorithms import amkd as amkd_module
from amkd_plugin.apis import resolve_model_config
from amkd_plugin.models.task_modules import boundary_bank_builder
from amkd_plugin.models.task_modules.boundary_bank_builder import (
    BoundaryBankBuilder, from_pixels, to_pixels)
from mmrazor.models.task_modules import ModuleOutputsRecorder
from mmrazor.registry import MODELS, TASK_UTILS

# Tiny CPU models on one torch thread, built in MMRazor's scope (see
# conftest.py).
pytestmark = pytest.mark.usefixtures('in_repo_root', 'single_torch_thread',
                                     'mmrazor_scope')

REPO = Path(__file__).resolve().parents[1]
RESNET8 = REPO / 'configs/_base_/models/resnet8.py'
DIGITS_BANK = 'configs/amkd/resnet20_resnet8_digits.py'
DIGITS_TEACHER = 'configs/teachers/resnet20_digits.py'
NUM_IMAGES = 12
WRONG = (1, 6, 11)  # rows the builder's teacher gets wrong
BUILD_BATCH = 5  # several batches and a partial last one
STEP_BATCH = 8
BANK_FIELDS = ('images', 'logits', 'targets', 'weights', 'correct',
               'reached', 'steps')
DIGITS_PREPROCESSOR = dict(
    num_classes=10, mean=[77.825] * 3, std=[82.506] * 3, to_rgb=False)
TINY_IMAGENET_PREPROCESSOR = dict(
    num_classes=200,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)


class TinyImages(BaseDataset):
    """Given ``img`` arrays and labels as a dataset with a pipeline."""

    METAINFO = {'classes': tuple(str(i) for i in range(10))}

    def __init__(self, images: np.ndarray, labels, pipeline) -> None:
        self._items = [
            dict(img=img, gt_label=int(label))
            for img, label in zip(images, labels)
        ]
        with DefaultScope.overwrite_default_scope('mmrazor'):
            super().__init__(ann_file='', pipeline=pipeline)

    def load_data_list(self) -> List[dict]:
        return copy.deepcopy(self._items)


PLAIN_PIPELINE = [dict(type='mmpretrain.PackInputs')]


def digits_images(num: int) -> np.ndarray:
    """``(num, 32, 32, 3)`` uint8 images of real digits."""
    return digits_to_rgb32(load_digits().images[:num])


def hwc_to_chw(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1,
                                                                  2)))


@torch.no_grad()
def logits_in_batches(model, inputs: torch.Tensor,
                      batch: int = BUILD_BATCH) -> torch.Tensor:
    """Logits batch by batch, as the builder computes them."""
    return torch.cat([
        model(inputs[i:i + batch], mode='tensor')
        for i in range(0, len(inputs), batch)
    ])


def build_model(cfg: dict):
    with DefaultScope.overwrite_default_scope('mmrazor'):
        return MODELS.build(resolve_model_config(copy.deepcopy(cfg)))


# --- the builder -----------------------------------------------------------


@pytest.fixture(scope='module')
def preprocessor() -> ClsDataPreprocessor:
    return ClsDataPreprocessor(**DIGITS_PREPROCESSOR)


@pytest.fixture(scope='module')
def teacher(preprocessor) -> torch.nn.Module:
    """A 10-class resnet8 after 40 SGD steps on digits, in eval mode.

    Barely trained, but its margins and input gradients are large enough
    for the attack to reach the boundary within its 10 steps (a random
    network's are not).
    """
    torch.manual_seed(0)
    teacher = build_model(
        dict(cfg_path=str(RESNET8), head=dict(num_classes=10)))
    digits = load_digits()
    inputs = from_pixels(hwc_to_chw(digits_to_rgb32(digits.images[:256])),
                         preprocessor)
    labels = torch.from_numpy(digits.target[:256])
    optimizer = torch.optim.SGD(teacher.parameters(), lr=0.1, momentum=0.9)
    gen = torch.Generator().manual_seed(0)
    teacher.train()
    for _ in range(40):
        rows = torch.randint(0, len(labels), (32, ), generator=gen)
        loss = torch.nn.functional.cross_entropy(
            teacher(inputs[rows], mode='tensor'), labels[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return teacher.eval().requires_grad_(False)


@pytest.fixture(scope='module')
def data(teacher, preprocessor):
    """Images, the teacher's (eval mode) predictions and the labels: the
    predictions except on the rows of ``WRONG``."""
    images = digits_images(NUM_IMAGES)
    inputs = from_pixels(hwc_to_chw(images), preprocessor)
    preds = logits_in_batches(teacher, inputs).argmax(1)
    labels = preds.clone()
    labels[list(WRONG)] = (preds[list(WRONG)] + 1) % 10
    return dict(images=images, inputs=inputs, preds=preds, labels=labels)


@pytest.fixture(scope='module')
def dataset(data) -> TinyImages:
    return TinyImages(data['images'], data['labels'], PLAIN_PIPELINE)


DATASET_ID = dict(type='TinyImages', num=NUM_IMAGES)


@pytest.fixture
def logs(monkeypatch) -> List[str]:
    """What the builder logs."""
    lines = []
    monkeypatch.setattr(boundary_bank_builder, 'print_log',
                        lambda msg, *args, **kwargs: lines.append(msg))
    return lines


def make_builder(max_steps: int = 10, top_k=None,
                 **attack) -> BoundaryBankBuilder:
    return TASK_UTILS.build(
        dict(
            type='BoundaryBankBuilder',
            attack=dict(type='BoundaryAttack', max_steps=max_steps,
                        **attack),
            top_k=top_k,
            batch_size=BUILD_BATCH))


def build(root: Path, teacher, preprocessor, dataset, **kwargs) -> str:
    return make_builder(**kwargs).build(teacher, preprocessor, dataset,
                                        DATASET_ID, str(root))


def arrays(path: str) -> Dict[str, np.ndarray]:
    bank = BoundaryBankFile.open(path)
    return {name: np.array(bank[name]) for name in BANK_FIELDS}


def file_stats(path: str) -> Dict[str, tuple]:
    return {
        name: (os.stat(osp.join(path, name)).st_ino,
               os.stat(osp.join(path, name)).st_mtime_ns)
        for name in sorted(os.listdir(path))
    }


@pytest.mark.parametrize('config', [DIGITS_PREPROCESSOR,
                                    TINY_IMAGENET_PREPROCESSOR],
                         ids=['cifar_like', 'tiny_imagenet_like'])
def test_pixels_round_trip(config):
    preprocessor = ClsDataPreprocessor(**config)
    gen = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (4, 3, 8, 8), generator=gen,
                           dtype=torch.uint8)
    pixels[0] = 0
    pixels[1] = 255
    inputs = from_pixels(pixels, preprocessor)
    assert inputs.dtype == torch.float32
    back = to_pixels(inputs, preprocessor)
    assert back.dtype == torch.float32
    # float32 (x - mean) / std * std + mean: a few ulps of 255.
    torch.testing.assert_close(back, pixels.float(), rtol=0, atol=1e-4)
    # The preprocessor's view: channel order swapped for to_rgb, then
    # normalised with the (RGB) statistics.
    mean = torch.tensor(config['mean']).view(1, 3, 1, 1)
    std = torch.tensor(config['std']).view(1, 3, 1, 1)
    ordered = pixels.flip(1) if config['to_rgb'] else pixels
    torch.testing.assert_close(inputs, (ordered.float() - mean) / std)
    # Off-grid values are kept, not rounded (the bank stores a boundary
    # sample where the attack left it), and clipped to 0..255.
    inner = (pixels > 0) & (pixels < 255)
    torch.testing.assert_close(
        to_pixels(inputs + 0.4 / std, preprocessor)[inner],
        pixels.float()[inner] + 0.4, rtol=0, atol=1e-4)
    assert (to_pixels(inputs + 300 / std, preprocessor) == 255).all()
    assert (to_pixels(inputs - 300 / std, preprocessor) == 0).all()


# A step that ends well past the boundary: whether a sample is still past
# it as stored then does not hang on one machine's floats.
FAR_PAST = dict(step='newton', overshoot=0.5)


def test_bank_contents(tmp_path, teacher, preprocessor, dataset, data,
                       logs):
    path = build(tmp_path / 'a', teacher, preprocessor, dataset, **FAR_PAST)
    assert osp.dirname(path) == str(tmp_path / 'a')
    assert any('building' in line for line in logs)
    # The storage report: float32 keeps every sample that reached the
    # boundary past it.
    report = next(line for line in logs if 'as stored in float32' in line)
    shares = re.findall(r'([0-9.]+)% ', report)
    assert len(shares) == 2 and shares[0] == shares[1]
    bank = arrays(path)
    assert bank['images'].shape == (NUM_IMAGES, 1, 32, 32, 3)
    assert bank['targets'].shape == (NUM_IMAGES, 1)

    labels = data['labels'].numpy()
    expected_correct = np.ones(NUM_IMAGES, bool)
    expected_correct[list(WRONG)] = False
    np.testing.assert_array_equal(bank['correct'], expected_correct)
    assert (bank['targets'][:, 0] != labels).all()
    np.testing.assert_array_equal(bank['weights'], 1.)
    # Images the teacher gets wrong: not attacked, clean pixels.
    wrong = list(WRONG)
    assert not bank['reached'][wrong].any()
    assert (bank['steps'][wrong] == 0).all()
    np.testing.assert_allclose(bank['images'][wrong, 0],
                               data['images'][wrong], rtol=0, atol=1e-4)
    # The others were attacked.
    right = expected_correct
    assert (bank['steps'][right] >= 1).all()
    moved = (np.abs(bank['images'][:, 0] - data['images']) > 1e-3).any(
        axis=(1, 2, 3))
    assert moved[right].sum() >= 4
    assert not bank['reached'][~moved].any()
    # ``reached`` is the teacher's verdict on the stored image.
    stored = from_pixels(hwc_to_chw(bank['images'][:, 0]), preprocessor)
    logits = logits_in_batches(teacher, stored)
    preds = logits.argmax(1).numpy()
    np.testing.assert_array_equal(bank['reached'][:, 0],
                                  (preds != labels) & right)
    assert bank['reached'][right].any()
    # ``logits``: the teacher's on the stored image, so that training needs
    # no teacher pass on it. The same float32 network on other batches:
    # equal up to summation order.
    np.testing.assert_allclose(bank['logits'][right, 0],
                               logits[right].numpy(), rtol=1e-5, atol=1e-5)

    # A second, independent build computes the same bank.
    other = build(tmp_path / 'b', teacher, preprocessor, dataset, **FAR_PAST)
    assert osp.basename(other) == osp.basename(path)
    again = arrays(other)
    for name in BANK_FIELDS:
        np.testing.assert_array_equal(again[name], bank[name], err_msg=name)
    meta = BoundaryBankFile.open(path).meta
    assert meta['dataset'] == DATASET_ID
    assert meta['settings']['max_steps'] == 10


def test_second_build_reuses_the_bank(tmp_path, teacher, preprocessor,
                                      dataset, logs):
    path = build(tmp_path, teacher, preprocessor, dataset)
    before = file_stats(path)
    logs.clear()

    again = build(tmp_path, teacher, preprocessor, dataset)

    assert again == path
    assert logs == [f'Boundary bank: reusing {path}.']
    assert file_stats(path) == before
    assert os.listdir(tmp_path) == [osp.basename(path)]


def test_a_build_removes_what_a_killed_build_left(tmp_path, teacher,
                                                 preprocessor, dataset, logs):
    gone = subprocess.Popen([sys.executable, '-c', 'pass'])
    gone.wait()
    left = tmp_path / (f'0123456789abcdef.partial-{socket.gethostname()}-'
                       f'{gone.pid}-0123abcd')
    left.mkdir()
    (left / 'images.npy').write_bytes(b'half written')

    path = build(tmp_path, teacher, preprocessor, dataset)

    assert os.listdir(tmp_path) == [osp.basename(path)]
    assert ('Boundary bank: removed the unfinished build(s) of processes '
            f'that are gone: {left}.') in logs


def test_a_killed_build_resumes_into_the_same_bank(
        tmp_path, teacher, preprocessor, dataset, logs, monkeypatch):
    """Killed after its first batch (of 3), the build is finished by the
    next one, which attacks only the rest: the bank equals one built in
    one go, byte for byte."""
    whole = build(tmp_path / 'whole', teacher, preprocessor, dataset)
    report = [line for line in logs if 'reached the boundary' in line]
    attack_batch = BoundaryBankBuilder._attack_batch
    calls = []

    def killed_after_one(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return attack_batch(self, *args, **kwargs)

    monkeypatch.setattr(BoundaryBankBuilder, '_attack_batch',
                        killed_after_one)
    with pytest.raises(KeyboardInterrupt):
        build(tmp_path / 'resumed', teacher, preprocessor, dataset)
    monkeypatch.setattr(BoundaryBankBuilder, '_attack_batch', attack_batch)
    # What a kill leaves: the folder of a process that is gone.
    [left] = os.listdir(tmp_path / 'resumed')
    gone = subprocess.Popen([sys.executable, '-c', 'pass'])
    gone.wait()
    dead = re.sub(r'-\d+-([0-9a-f]{8})$', rf'-{gone.pid}-\1', left)
    os.rename(tmp_path / 'resumed' / left, tmp_path / 'resumed' / dead)
    logs.clear()
    calls.clear()
    monkeypatch.setattr(BoundaryBankBuilder, '_attack_batch',
                        lambda self, *a, **k: calls.append(1) or attack_batch(
                            self, *a, **k))

    resumed = build(tmp_path / 'resumed', teacher, preprocessor, dataset)

    assert len(calls) == 2  # the batches at 5 and 10, not 0 again
    assert (f'Boundary bank: resuming the killed build in '
            f'{tmp_path / "resumed" / dead} (1 batches of {BUILD_BATCH} '
            'done).') in logs
    assert osp.basename(resumed) == osp.basename(whole)
    assert os.listdir(tmp_path / 'resumed') == [osp.basename(resumed)]
    assert sorted(os.listdir(resumed)) == sorted(os.listdir(whole))
    for name in os.listdir(whole):
        assert (Path(resumed) / name).read_bytes() == (
            Path(whole) / name).read_bytes(), name
    # The report counts the killed build's batch too.
    assert [line for line in logs if 'reached the boundary' in line] == report


def test_a_damaged_bank_is_refused_not_reused(tmp_path, teacher, preprocessor,
                                              dataset, logs):
    path = build(tmp_path, teacher, preprocessor, dataset)
    images = Path(path) / 'images.npy'
    images.write_bytes(images.read_bytes()[:-100])
    logs.clear()

    with pytest.raises(UserValueError, match=r'is damaged: images\.npy'):
        build(tmp_path, teacher, preprocessor, dataset)
    assert logs == []


@pytest.mark.parametrize('change', ['teacher', 'max_steps', 'top_k'])
def test_changed_teacher_or_setting_builds_a_new_bank(
        change, tmp_path, teacher, preprocessor, dataset, logs):
    path = build(tmp_path, teacher, preprocessor, dataset)
    before = file_stats(path)
    logs.clear()
    kwargs = {}
    if change == 'teacher':
        teacher = copy.deepcopy(teacher)
        with torch.no_grad():
            teacher.head.fc.bias[0] += 1e-3
    elif change == 'max_steps':
        kwargs['max_steps'] = 3
    else:
        kwargs['top_k'] = 1

    other = build(tmp_path, teacher, preprocessor, dataset, **kwargs)

    assert other != path and osp.dirname(other) == str(tmp_path)
    assert 'building' in logs[0] and osp.basename(path) in logs[0]
    assert sorted(os.listdir(tmp_path)) == sorted(
        [osp.basename(path), osp.basename(other)])
    assert BoundaryBankFile.exists(other)
    assert file_stats(path) == before


def test_top_k_banks_the_runner_up_classes(tmp_path, teacher, preprocessor,
                                           dataset, data, logs):
    k = 3
    path = build(tmp_path, teacher, preprocessor, dataset, top_k=k)
    bank = arrays(path)
    assert bank['images'].shape == (NUM_IMAGES, k, 32, 32, 3)

    labels = data['labels']
    probs = logits_in_batches(teacher, data['inputs']).softmax(1)
    others = probs.scatter(1, labels[:, None], -1.)
    expected = others.argsort(1, descending=True)[:, :k].numpy()
    np.testing.assert_array_equal(bank['targets'], expected)
    assert (bank['targets'] != labels.numpy()[:, None]).all()
    np.testing.assert_allclose(
        bank['weights'], probs.gather(1, torch.from_numpy(expected)).numpy(),
        rtol=1e-5)
    assert (np.diff(bank['weights'], axis=1) <= 0).all()

    wrong = list(WRONG)
    assert not bank['reached'][wrong].any()
    for j in range(k):
        np.testing.assert_allclose(bank['images'][wrong, j],
                                   data['images'][wrong], rtol=0, atol=1e-4)
        stored = from_pixels(hwc_to_chw(bank['images'][:, j]), preprocessor)
        preds = logits_in_batches(teacher, stored).argmax(1)
        np.testing.assert_array_equal(
            bank['reached'][:, j],
            ((preds != labels) & torch.from_numpy(bank['correct'])).numpy())


# --- the banked step -------------------------------------------------------


@pytest.fixture(scope='module')
def digits_bank_cfg() -> Config:
    return Config.fromfile(str(REPO / DIGITS_BANK))


@pytest.fixture(scope='module')
def digits_teacher_ckpt(tmp_path_factory) -> str:
    """A checkpoint of the random digits teacher, its logits scaled up so
    that its margins and gradients are those of a trained one rather than
    a random network's tiny ones."""
    torch.manual_seed(0)
    model = build_model(dict(cfg_path=str(REPO / DIGITS_TEACHER)))
    with torch.no_grad():
        model.head.fc.weight.mul_(30)
        model.head.fc.bias.mul_(30)
    path = tmp_path_factory.mktemp('digits_teacher') / 'resnet20.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
    return str(path)


@pytest.fixture
def algorithm(digits_bank_cfg, digits_teacher_ckpt) -> AMKDDistill:
    """The digits bank config; the student a near copy of the teacher."""
    cfg = copy.deepcopy(digits_bank_cfg.model)
    cfg.teacher_ckpt = digits_teacher_ckpt
    cfg.architecture.cfg_path = 'configs/_base_/models/resnet20.py'
    cfg.data_preprocessor = copy.deepcopy(digits_bank_cfg.data_preprocessor)
    with DefaultScope.overwrite_default_scope('mmrazor'):
        return make_student_near_copy(MODELS.build(cfg))


@pytest.fixture
def banked_batch(algorithm, digits_bank_cfg, tmp_path) -> dict:
    """A batch through the real ``bank_train_pipeline`` of the digits
    config, from a bank the config's builder made with the teacher's
    predictions as labels; relabelled with the teacher's predictions on
    the augmented images (so both models get nearly all right), every row
    marked correct."""
    images = digits_images(STEP_BATCH)
    with torch.no_grad():
        preds = algorithm.teacher(
            from_pixels(hwc_to_chw(images), algorithm.data_preprocessor),
            mode='tensor').argmax(1).tolist()
    plain = TinyImages(images, preds, PLAIN_PIPELINE)
    path = algorithm.bank_builder.build(algorithm.teacher,
                                        algorithm.data_preprocessor, plain,
                                        DATASET_ID, str(tmp_path))
    train = TinyImages(images, preds,
                       copy.deepcopy(digits_bank_cfg.bank_train_pipeline))
    loaders = [t for t in train.pipeline.transforms
               if isinstance(t, LoadBoundaryBank)]
    assert len(loaders) == 1
    loaders[0].bind(path)
    np.random.seed(0)
    data = pseudo_collate([train[i] for i in range(STEP_BATCH)])
    inputs = algorithm.data_preprocessor(copy.deepcopy(data), True)['inputs']
    with torch.no_grad():
        preds = algorithm.teacher(inputs, mode='tensor').argmax(1)
    for sample, pred in zip(data['data_samples'], preds.tolist()):
        sample.set_gt_label(pred)
        sample.boundary_correct = True
    data['bank'] = BoundaryBankFile.open(path)
    return data


def test_building_keeps_the_teacher_modes(algorithm, banked_batch):
    """The distiller keeps the teacher's BatchNorm in eval mode in a
    training algorithm; building a bank in between must not undo that."""
    assert algorithm.teacher.training
    norms = [m for m in algorithm.teacher.modules()
             if isinstance(m, _BatchNorm)]
    assert norms and not any(m.training for m in norms)


def forward_loss(algorithm: AMKDDistill, data: dict) -> Dict:
    data = algorithm.data_preprocessor(
        dict(inputs=data['inputs'], data_samples=data['data_samples']), True)
    return algorithm(data['inputs'], data['data_samples'], mode='loss')


@pytest.fixture
def selections(monkeypatch) -> list:
    """The BoundarySamples each banked step selected."""
    seen = []
    real = amkd_module.banked_samples

    def spy(*args, **kwargs):
        seen.append(real(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(amkd_module, 'banked_samples', spy)
    return seen


def both_right(algorithm: AMKDDistill, data: dict) -> torch.Tensor:
    inputs = algorithm.data_preprocessor(
        dict(inputs=data['inputs'], data_samples=data['data_samples']),
        True)['inputs']
    labels = torch.cat([s.gt_label for s in data['data_samples']])
    with torch.no_grad():
        right = [(model(inputs, mode='tensor').argmax(1) == labels)
                 for model in (algorithm.teacher, algorithm.student)]
    return right[0] & right[1]


def test_banked_selection_respects_boundary_correct(algorithm, banked_batch,
                                                    selections):
    assert algorithm.bank_builder is not None
    candidates = both_right(algorithm, banked_batch)
    assert int(candidates.sum()) >= 4
    forward_loss(algorithm, banked_batch)
    first = selections[-1].index.tolist()
    assert len(first) == 2  # ceil(0.25 * 8)

    # The row picked first (largest disagreement) marked as one the
    # teacher got wrong when the bank was built: never selected now,
    # although both models still get it right.
    samples = banked_batch['data_samples']
    samples[first[0]].boundary_correct = False
    assert both_right(algorithm, banked_batch)[first[0]]
    forward_loss(algorithm, banked_batch)
    second = selections[-1].index.tolist()
    assert first[0] not in second and len(second) == 2

    for sample in samples:
        sample.boundary_correct = False
    losses = forward_loss(algorithm, banked_batch)
    assert selections[-1].num == 0
    assert algorithm.attack_stats['attacked'] == 0
    assert losses['distill.loss_boundary_kd'].item() == 0


def test_banked_inputs_are_the_preprocessed_bank_images(
        algorithm, banked_batch, selections):
    seen = []
    algorithm.student.register_forward_hook(
        lambda module, args, output: seen.append(args[0].detach().clone()))
    forward_loss(algorithm, banked_batch)
    boundary = selections[-1]
    assert boundary.num == 2
    samples = banked_batch['data_samples']
    rows = boundary.index.tolist()
    pixels = torch.stack([
        torch.from_numpy(samples[i].boundary_img.transpose(2, 0, 1).copy())
        for i in rows
    ])
    expected = algorithm.data_preprocessor(dict(inputs=pixels),
                                           False)['inputs']
    assert torch.equal(boundary.inputs, expected)
    assert torch.equal(seen[-1], expected)  # the student's boundary pass
    clean = algorithm.data_preprocessor(
        dict(inputs=banked_batch['inputs'], data_samples=samples),
        True)['inputs']
    for row, image in zip(rows, boundary.inputs):
        assert not torch.equal(image, clean[row])  # banked, moved images
    # Targets and reached are the banked ones of those rows; no teacher
    # pass was spent on them in this step.
    bank = banked_batch['bank']
    indices = [samples[i].sample_idx for i in rows]
    assert boundary.target.tolist() == [
        int(bank['targets'][i, 0]) for i in indices]
    assert boundary.reached.tolist() == [
        bool(bank['reached'][i, 0]) for i in indices]
    assert boundary.steps.tolist() == [0, 0]
    labels = torch.cat([s.gt_label for s in samples])
    assert torch.equal(boundary.source, labels[boundary.index])
    # ... and so are the teacher's logits on them.
    assert torch.equal(boundary.teacher_logits,
                       torch.from_numpy(bank['logits'][indices, 0]))


def step_grads(algorithm: AMKDDistill, data: dict) -> tuple:
    """The losses of one step and the student's gradients."""
    algorithm.student.zero_grad()
    losses = forward_loss(algorithm, data)
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    return losses, {name: p.grad.clone()
                    for name, p in algorithm.student.named_parameters()
                    if p.grad is not None}


def test_banked_logits_stand_in_for_the_teachers_pass(algorithm,
                                                      banked_batch):
    """The same step with the stored logits and with a teacher pass on the
    banked images: the same losses and gradients, up to the float32
    summation order of the teacher on another batch (the bank's logits
    came from a batch of 8, the pass sees 2 images)."""
    forwards = teacher_forwards(algorithm)
    stored, stored_grads = step_grads(algorithm, banked_batch)
    assert forwards == [(STEP_BATCH, False, False)]  # the clean pass only
    for sample in banked_batch['data_samples']:
        del sample.boundary_logits  # as the cropping pipeline packs them
    forwards.clear()
    passed, passed_grads = step_grads(algorithm, banked_batch)
    assert forwards == [(STEP_BATCH, False, False), (2, False, False)]

    assert stored['distill.loss_boundary_kd'] > 0
    for name in passed:
        torch.testing.assert_close(stored[name], passed[name], rtol=1e-4,
                                   atol=1e-6, msg=name)
    assert stored_grads.keys() == passed_grads.keys()
    for name in passed_grads:
        torch.testing.assert_close(stored_grads[name], passed_grads[name],
                                   rtol=1e-3, atol=1e-5, msg=name)


def test_a_loss_on_other_teacher_records_keeps_the_teacher_pass(algorithm):
    """Only logits come from the bank: a boundary loss that reads, say, a
    teacher feature at record_idx=1 needs the teacher's boundary pass."""
    assert algorithm._boundary_teacher_logit_records() is not None
    distiller = algorithm.distiller
    feature = ModuleOutputsRecorder('neck')
    feature.initialize(algorithm.teacher)
    distiller.teacher_recorders.recorders['feature'] = feature
    distiller.loss_forward_mappings['loss_feature'] = dict(
        preds_T=dict(from_student=False, recorder='feature', record_idx=1))
    assert algorithm._boundary_teacher_logit_records() is None


def teacher_forwards(algorithm: AMKDDistill) -> list:
    """(batch size, grad enabled, output requires grad) of each forward."""
    calls = []
    algorithm.teacher.register_forward_hook(
        lambda module, args, output: calls.append(
            (len(args[0]), torch.is_grad_enabled(), output.requires_grad)))
    return calls


@pytest.fixture
def autograd_grad_calls(monkeypatch) -> list:
    calls = []
    real = torch.autograd.grad

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, 'grad', counted)
    return calls


def test_banked_train_step_has_no_teacher_backward(algorithm, banked_batch,
                                                   autograd_grad_calls):
    student_before = copy.deepcopy(algorithm.student.state_dict())
    teacher_before = copy.deepcopy(algorithm.teacher.state_dict())
    forwards = teacher_forwards(algorithm)
    optim_wrapper = OptimWrapper(
        torch.optim.SGD(algorithm.parameters(), lr=0.1, momentum=0.9))

    log_vars = algorithm.train_step(
        dict(inputs=banked_batch['inputs'],
             data_samples=banked_batch['data_samples']), optim_wrapper)

    assert log_vars['distill.loss_boundary_kd'] > 0
    assert algorithm.attack_stats['attacked'] == 2
    # The clean pass, without gradients; no attack, and the bank's logits
    # stand in for the teacher's boundary pass.
    assert forwards == [(STEP_BATCH, False, False)]
    assert autograd_grad_calls == []
    changed = [
        name for name, value in algorithm.student.state_dict().items()
        if not torch.equal(value, student_before[name])
    ]
    assert 'head.fc.weight' in changed and 'backbone.conv1.weight' in changed
    for name, value in algorithm.teacher.state_dict().items():
        assert torch.equal(value, teacher_before[name]), name
    assert all(p.grad is None for p in algorithm.teacher.parameters())

    # The same step attacking online runs the teacher with gradients: what
    # the counters above would have caught.
    algorithm.bank_builder = None
    forwards.clear()
    algorithm.train_step(
        dict(inputs=banked_batch['inputs'],
             data_samples=banked_batch['data_samples']), optim_wrapper)
    assert len(forwards) > 2 and any(grad for _, grad, _ in forwards)
    assert autograd_grad_calls


# --- refining the loaded samples ------------------------------------------


def linear_samples(margins: torch.Tensor):
    """A frozen two-class linear teacher and BoundarySamples of class 0
    toward 1 whose margins ``g = z_0 - z_1`` are ``margins``."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2))
    model.requires_grad_(False)
    w = model[1].weight[0] - model[1].weight[1]
    x = torch.randn(len(margins), 12) * 0.1
    g = x @ w + model[1].bias[0] - model[1].bias[1]
    x = x + (margins - g)[:, None] * w / w.dot(w)
    zeros = torch.zeros(len(margins), dtype=torch.long)
    samples = boundary_bank_builder.BoundarySamples(
        x.view(-1, 3, 2, 2), torch.arange(len(margins)), zeros, zeros + 1,
        torch.zeros_like(zeros, dtype=torch.bool), zeros, zeros)
    return model, samples


def test_without_refine_the_loaded_samples_are_used_as_they_are():
    model, samples = linear_samples(torch.tensor([0.5, 2.0]))
    builder = BoundaryBankBuilder()
    assert builder.refine(model, samples, (-10., 10.)) is samples


@pytest.mark.parametrize('steps', [1, 2])
def test_refine_continues_from_the_loaded_samples(steps):
    """One first-order step on a linear teacher crosses from wherever the
    sample is; one already past b takes no step."""
    model, samples = linear_samples(torch.tensor([0.5, 2.0, -1.0]))
    builder = BoundaryBankBuilder(
        refine=dict(step='newton', max_steps=steps, overshoot=0.1))
    calls = []

    def teacher(images):
        calls.append(len(images))
        return model(images)

    refined = builder.refine(teacher, samples, (-10., 10.))

    assert refined.steps.tolist() == [1, 1, 0]
    assert refined.reached.all()
    assert torch.equal(refined.inputs[2], samples.inputs[2])
    w = model[1].weight[0] - model[1].weight[1]
    for row, g0 in ((0, 0.5), (1, 2.0)):
        expected = (samples.inputs[row].flatten() -
                    1.1 * (g0 + 1e-4) * w / w.dot(w))
        torch.testing.assert_close(refined.inputs[row].flatten(), expected,
                                   rtol=1e-4, atol=1e-5)
    # Targets, rows and labels are the banked ones.
    for field in ('index', 'source', 'target', 'labels'):
        assert torch.equal(getattr(refined, field), getattr(samples, field))
    assert calls == [3, 2]  # one step on all, then the check


@pytest.mark.parametrize('steps', [1, 2])
def test_refined_banked_step(steps, algorithm, banked_batch, selections,
                             monkeypatch):
    """In the training step the refining attack starts from the loaded
    (augmented) banked samples, takes at most ``steps`` passes, and the
    teacher gets no gradient."""
    monkeypatch.setattr(
        algorithm.bank_builder, 'refine_attack',
        TASK_UTILS.build(
            dict(type='BoundaryAttack', step='newton', max_steps=steps)))
    starts = []
    real = algorithm.bank_builder.refine_attack.attack

    def spy(teacher, images, *args):
        starts.append(images.clone())
        return real(teacher, images, *args)

    monkeypatch.setattr(algorithm.bank_builder.refine_attack, 'attack', spy)
    optim_wrapper = OptimWrapper(torch.optim.SGD(algorithm.parameters(),
                                                 lr=0.1))

    algorithm.train_step(
        dict(inputs=banked_batch['inputs'],
             data_samples=banked_batch['data_samples']), optim_wrapper)

    loaded = selections[-1]
    assert loaded.num == 2 and torch.equal(starts[-1], loaded.inputs)
    stats = algorithm.attack_stats
    assert stats['attacked'] == 2 and 0 <= stats['steps'] <= steps
    assert all(p.grad is None for p in algorithm.teacher.parameters())


def test_banked_margin_stats(algorithm, banked_batch, selections):
    forward_loss(algorithm, banked_batch)
    boundary = selections[-1]
    stats = algorithm.attack_stats
    assert stats['attacked'] == boundary.num == 2

    samples = banked_batch['data_samples']
    labels = torch.cat([s.gt_label for s in samples])
    inputs = algorithm.data_preprocessor(
        dict(inputs=banked_batch['inputs'], data_samples=samples),
        True)['inputs']
    rows = boundary.index
    targets = torch.tensor([samples[i].boundary_target
                            for i in rows.tolist()])
    with torch.no_grad():
        # The clean pass's own computation: the whole batch, then the rows.
        clean = algorithm.teacher(inputs, mode='tensor')[rows]
        moved = algorithm.teacher(boundary.inputs, mode='tensor')

    def margin(logits):
        z_b = logits[torch.arange(len(rows)), labels[rows]]
        z_k = logits[torch.arange(len(rows)), targets]
        return (z_b - z_k).mean().item()

    assert stats['margin_clean'] == pytest.approx(margin(clean), rel=1e-5)
    assert stats['margin'] == pytest.approx(margin(moved), rel=1e-5)
    assert stats['margin_clean'] > 0
    assert stats['reached'] == pytest.approx(
        np.mean([samples[i].boundary_reached for i in rows.tolist()]))
    assert stats['steps'] == 0


# --- the configs -----------------------------------------------------------

AMKD_CONFIGS = sorted(
    osp.relpath(path, REPO)
    for path in glob.glob(str(REPO / 'configs/amkd/*.py')))
ONLINE_CONFIGS = [c for c in AMKD_CONFIGS if c.endswith('_online.py')]
BANK_CONFIGS = [
    c for c in AMKD_CONFIGS
    if Config.fromfile(str(REPO / c)).model.get('bank') is not None
]
# The measured variants of the digits proxies and the Fashion-MNIST pair
# (docs/results.md) besides their defaults, the digits' bases without LS
# and those configs' _online.
PROXIES = tuple(f'configs/amkd/resnet20_resnet8_digits{data}{ls}.py'
                for data in ('', '_lowdata') for ls in ('', '_no_ls')) + (
                    'configs/amkd/resnet20_resnet8_fashion_mnist_lowdata.py', )


def is_variant(config: str) -> bool:
    return (config.startswith(('configs/amkd/resnet20_resnet8_digits',
                               'configs/amkd/resnet20_resnet8_fashion'))
            and config not in PROXIES and config not in ONLINE_CONFIGS)


def test_every_amkd_config_has_an_online_variant():
    plain = [c for c in AMKD_CONFIGS if c not in ONLINE_CONFIGS
             and not is_variant(c)]
    assert len(plain) >= 18  # the 13 CIFAR-100 pairs, mixing, other data
    assert sorted(c.replace('.py', '_online.py') for c in plain) == sorted(
        ONLINE_CONFIGS)
    assert set(plain) <= set(BANK_CONFIGS)  # the bank is the default


@pytest.mark.parametrize('config', ONLINE_CONFIGS)
def test_online_config_is_its_pair_without_the_bank(config):
    cfg = Config.fromfile(str(REPO / config))
    assert cfg.model.bank is None
    dataset = cfg.train_dataloader.dataset
    assert dataset.get('dataset', dataset).pipeline == cfg.train_pipeline
    banked = Config.fromfile(
        str(REPO / config.replace('_online.py', '.py'))).to_dict()
    online = cfg.to_dict()
    for model_cfg in (banked['model'], online['model']):
        del model_cfg['bank']
    for loaders in (online, banked):  # a wrapper's pipeline is inside
        dataset = loaders['train_dataloader']['dataset']
        dataset.get('dataset', dataset).pop('pipeline')
    assert online == banked


@pytest.mark.parametrize('config', BANK_CONFIGS)
def test_bank_config(config):
    cfg = Config.fromfile(str(REPO / config))
    dataset = cfg.train_dataloader.dataset
    # A wrapper (StratifiedSubset) holds the pipeline in its dataset.
    pipeline = dataset.get('dataset', dataset).pipeline
    types = [t['type'].split('.')[-1] for t in pipeline]
    assert 'LoadBoundaryBank' in types
    cropped = '_crop' in config
    assert pipeline == (cfg.bank_crop_train_pipeline
                        if cropped else cfg.bank_train_pipeline)
    assert {'boundary_img', 'boundary_correct'} <= set(
        pipeline[-1]['algorithm_keys'])
    builder = TASK_UTILS.build(cfg.model.bank)
    assert isinstance(builder, BoundaryBankBuilder)
    assert builder.top_k == (3 if config.endswith('_top3.py') else None)
    assert (builder.refine_attack is None) == ('_refine' not in config)
    assert builder.attack.step == ('bss' if '_bank_bss' in config else
                                   'newton')
