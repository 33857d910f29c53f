# Copyright (c) amkd-mmrazor contributors.
"""Tests for the boundary bank: BoundaryBankBuilder, the banked AMKD step
(BankedBoundary) and the configs (the bank is the default;
``model.boundary.type=OnlineBoundary`` attacks online, with the same
pipeline).

The builder runs on a dozen digits images with a barely trained 10-class
resnet8 teacher; the labels are the teacher's own predictions except for a
few rows, which the teacher therefore gets wrong. The banked step uses the
digits pair config (student switched to resnet20) with a random
resnet20 teacher; the student starts as a near copy of it (BN in eval
mode), so both models get most images right and the selection has
candidates, as in ``test_amkd_algorithm.py``.
"""
import copy
import glob
import itertools
import os
import os.path as osp
import re
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Dict, List

import numpy as np
import pytest
import torch
from helpers import (assert_same_bank, assert_same_step,
                     make_student_near_copy, student_step)
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.logging import MessageHub, MMLogger
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmengine.visualization import Visualizer
from mmpretrain.datasets.base_dataset import BaseDataset
from mmpretrain.models import ClsDataPreprocessor
from mmpretrain.structures import DataSample
from sklearn.datasets import load_digits
from torch.nn.modules.batchnorm import _BatchNorm

import amkd_plugin  # noqa: F401  (mends mmrazor's import first)
import amkd_plugin.bank.builder as bank_builder_module
from amkd_plugin.bank import (BoundaryBankBuilder, BoundaryBankFile,
                              LoadBoundaryBank, add_bank_loader,
                              build_boundary_bank)
from amkd_plugin.bank.bank_file import checksum, decode, encode, unpack
from amkd_plugin.datasets.digits import digits_to_rgb32
from amkd_plugin.models.algorithms import AMKDDistill
from amkd_plugin.apis import resolve_model_config
from amkd_plugin.models.boundary import BankedBoundary, OnlineBoundary
from amkd_plugin.models.task_modules import BoundaryAttack
from amkd_plugin.utils import UserInputError, UserValueError
from amkd_plugin.utils.fragments import merge_fragments
from amkd_plugin.utils.pixels import from_pixels, to_pixels
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
BANK_FIELDS = ('delta', 'scale', 'checksum', 'logits', 'targets', 'weights',
               'correct', 'reached', 'steps')
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
    monkeypatch.setattr(bank_builder_module, 'print_log',
                        lambda msg, *args, **kwargs: lines.append(msg))
    return lines


def make_builder(max_steps: int = 10, top_k=None,
                 **attack) -> BoundaryBankBuilder:
    return BoundaryBankBuilder(
        TASK_UTILS.build(
            dict(type='BoundaryAttack', max_steps=max_steps, **attack)),
        top_k=top_k,
        batch_size=BUILD_BATCH)


def build(root: Path, teacher, preprocessor, dataset, **kwargs) -> str:
    return make_builder(**kwargs).build(teacher, preprocessor, dataset,
                                        DATASET_ID, str(root))


def arrays(path: str) -> Dict[str, np.ndarray]:
    bank = BoundaryBankFile.open(path)
    return {name: np.array(bank[name]) for name in BANK_FIELDS}


def stored_images(bank: Dict[str, np.ndarray], clean: np.ndarray,
                  j: int = 0) -> np.ndarray:
    """The boundary images of target ``j`` as training reads them."""
    return decode(clean, unpack(bank['delta'][:, j], clean.shape[1:]),
                  bank['scale'][:, j])


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
    # The storage report: as stored, every sample is on the side of the
    # boundary where the attack left it.
    report = next(line for line in logs
                  if 'as stored (6-bit change)' in line)
    shares = re.findall(r'([0-9.]+)% ', report)
    assert len(shares) == 2 and shares[0] == shares[1]
    bank = arrays(path)
    # 6 bits a value, packed: 32 * 32 * 3 * 6 / 8 bytes a sample.
    assert bank['delta'].shape == (NUM_IMAGES, 1, 2304)
    assert bank['delta'].dtype == np.uint8
    np.testing.assert_array_equal(bank['checksum'], checksum(data['images']))
    images = stored_images(bank, data['images'])
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
    assert (bank['scale'][wrong] == 0).all()
    np.testing.assert_array_equal(images[wrong], data['images'][wrong])
    # The others were attacked.
    right = expected_correct
    assert (bank['steps'][right] >= 1).all()
    moved = (np.abs(images - data['images']) > 1e-3).any(axis=(1, 2, 3))
    assert moved[right].sum() >= 4
    assert not bank['reached'][~moved].any()
    # ``reached`` is the teacher's verdict on the stored image.
    stored = from_pixels(hwc_to_chw(images), preprocessor)
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
    (left / 'delta.npy').write_bytes(b'half written')

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
    assert_same_bank(resumed, whole, resumed=True)
    # The report counts the killed build's batch too.
    assert [line for line in logs if 'reached the boundary' in line] == report


def test_a_damaged_bank_is_refused_not_reused(tmp_path, teacher, preprocessor,
                                              dataset, logs):
    path = build(tmp_path, teacher, preprocessor, dataset)
    delta = Path(path) / 'delta.npy'
    delta.write_bytes(delta.read_bytes()[:-100])
    logs.clear()

    with pytest.raises(UserValueError, match=r'is damaged: delta\.npy'):
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
    assert bank['delta'].shape == (NUM_IMAGES, k, 2304)

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
        images = stored_images(bank, data['images'], j)
        np.testing.assert_array_equal(images[wrong], data['images'][wrong])
        stored = from_pixels(hwc_to_chw(images), preprocessor)
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
        return make_student_near_copy(MODELS.build(cfg),
                                      digits_teacher_ckpt)


@pytest.fixture
def banked_batch(algorithm, digits_bank_cfg, tmp_path) -> dict:
    """A batch through the digits config's train pipeline with the
    LoadBoundaryBank the bank hook adds (``add_bank_loader``), from a bank
    the config's builder made with the teacher's predictions as labels (so
    every row is marked correct in it), bound to the algorithm's source
    as the hook binds it; relabelled with the teacher's predictions on the
    augmented images (so both models get nearly all right)."""
    images = digits_images(STEP_BATCH)
    with torch.no_grad():
        preds = algorithm.teacher(
            from_pixels(hwc_to_chw(images), algorithm.data_preprocessor),
            mode='tensor').argmax(1).tolist()
    plain = TinyImages(images, preds, PLAIN_PIPELINE)
    path = algorithm.boundary.builder.build(algorithm.teacher,
                                            algorithm.data_preprocessor,
                                            plain, DATASET_ID, str(tmp_path))
    train = TinyImages(images, preds,
                       copy.deepcopy(digits_bank_cfg.train_pipeline))
    add_bank_loader(train.pipeline).bind(path)
    algorithm.boundary.bind(path)
    np.random.seed(0)
    data = pseudo_collate([train[i] for i in range(STEP_BATCH)])
    inputs = algorithm.data_preprocessor(copy.deepcopy(data), True)['inputs']
    with torch.no_grad():
        preds = algorithm.teacher(inputs, mode='tensor').argmax(1)
    for sample, pred in zip(data['data_samples'], preds.tolist()):
        sample.set_gt_label(pred)
    data['bank'] = BoundaryBankFile.open(path)
    assert data['bank']['correct'].all()
    return data


def as_decoded(data: dict, logits: bool = True) -> dict:
    """``data`` as a pipeline with ``LoadBoundaryBank(decode=True)`` packs
    it: each sample's banked fields loaded, the clean image gone; without
    the teacher's logits if not ``logits`` (as the cropping pipeline)."""
    bank = data['bank']
    samples = copy.deepcopy(data['data_samples'])
    for sample in samples:
        fields = bank.sample(sample.sample_idx, sample.boundary_clean)
        del sample.boundary_clean
        for key, value in fields.items():
            if logits or key != 'boundary_logits':
                sample.set_field(value, key)
    return dict(data, data_samples=samples)


def bank_images(data: dict, rows: List[int]) -> torch.Tensor:
    """The banked images (CHW pixels) of batch rows ``rows``."""
    samples = [data['data_samples'][i] for i in rows]
    read = data['bank'].read(
        np.array([s.sample_idx for s in samples]), np.zeros(len(rows), int),
        np.stack([s.boundary_clean for s in samples]))
    return torch.from_numpy(read['images']).permute(0, 3, 1, 2)


def test_building_keeps_the_teacher_modes(algorithm, banked_batch):
    """In a training algorithm the distiller keeps the teacher's
    BatchNorms (if any are left unfolded) in eval mode, the rest of it in
    training mode; building a bank (in eval mode) must not change that."""
    assert all(module.training != isinstance(module, _BatchNorm)
               for module in algorithm.teacher.modules())


def forward_loss(algorithm: AMKDDistill, data: dict) -> Dict:
    data = algorithm.data_preprocessor(
        dict(inputs=data['inputs'], data_samples=data['data_samples']), True)
    return algorithm(data['inputs'], data['data_samples'], mode='loss')


@pytest.fixture
def selections(monkeypatch) -> list:
    """The BoundarySamples each banked step gave (after the refining
    attack, if any)."""
    seen = []
    real = BankedBoundary.__call__

    def spy(self, *args, **kwargs):
        seen.append(real(self, *args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(BankedBoundary, '__call__', spy)
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
    assert isinstance(algorithm.boundary, BankedBoundary)
    candidates = both_right(algorithm, banked_batch)
    assert int(candidates.sum()) >= 4
    forward_loss(algorithm, banked_batch)
    first = selections[-1].index.tolist()
    assert len(first) == 2  # ceil(0.25 * 8)

    # The row picked first (largest disagreement) marked as one the
    # teacher got wrong when the bank was built: never selected now,
    # although both models still get it right.
    samples = banked_batch['data_samples']
    path = banked_batch['bank'].path
    correct = np.load(osp.join(path, 'correct.npy'))

    def mark_correct(rows: List[int], value: bool) -> None:
        correct[[samples[i].sample_idx for i in rows]] = value
        np.save(osp.join(path, 'correct.npy'), correct)
        algorithm.boundary.bind(path)  # reopen the edited bank

    mark_correct([first[0]], False)
    assert both_right(algorithm, banked_batch)[first[0]]
    forward_loss(algorithm, banked_batch)
    second = selections[-1].index.tolist()
    assert first[0] not in second and len(second) == 2

    mark_correct(list(range(len(samples))), False)
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
    pixels = bank_images(banked_batch, rows)
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


def test_the_step_reads_only_the_selected_rows(algorithm, banked_batch,
                                               selections, monkeypatch):
    """Reading the bank after the selection: the step reads the rows of
    the samples it uses, and they are what the pipeline would have loaded
    for them (``LoadBoundaryBank(decode=True)``), logits included."""
    reads = []
    real = BoundaryBankFile.read

    def spy(self, indices, *args):
        reads.append(np.array(indices))
        return real(self, indices, *args)

    monkeypatch.setattr(BoundaryBankFile, 'read', spy)
    forward_loss(algorithm, banked_batch)
    lazy = selections[-1]
    samples = banked_batch['data_samples']
    assert [r.tolist() for r in reads] == [
        [samples[i].sample_idx for i in lazy.index.tolist()]]
    assert lazy.num == 2 < STEP_BATCH

    reads.clear()
    forward_loss(algorithm, as_decoded(banked_batch))
    loaded = selections[-1]
    assert len(reads) == STEP_BATCH  # the pipeline read every image's
    for name in ('inputs', 'index', 'source', 'target', 'reached', 'steps',
                 'teacher_logits'):
        assert torch.equal(getattr(lazy, name), getattr(loaded, name)), name


def test_the_step_draws_among_k_targets_by_weight(tmp_path):
    """With K banked targets a step draws one per selected sample, with
    the teacher's probabilities as weights, from the attack's generator:
    the same draws after a checkpoint's state is restored."""
    num, shape = 6, (2, 2, 1)
    clean = np.zeros((num, ) + shape, np.uint8)
    # Target j's image is j + 1 everywhere: the image says the draw.
    images = np.broadcast_to(
        np.arange(1., 4.)[None, :, None, None, None], (num, 3) + shape)
    weights = np.tile(np.array([0.6, 0.4, 0.], np.float32), (num, 1))
    weights[1] = [0, 0, 1]
    bank = BoundaryBankFile.create(str(tmp_path / 'bank'), num, 3, shape, 4)
    delta, scale = encode(images, clean[:, None])
    bank.write(np.arange(num), delta=delta, scale=scale, clean=clean,
               logits=np.zeros((num, 3, 4), np.float32),
               targets=np.tile([1, 2, 3], (num, 1)), weights=weights,
               correct=np.ones(num, bool), reached=np.ones((num, 3), bool),
               steps=np.ones((num, 3), np.int16))
    path = bank.commit().path
    source = TASK_UTILS.build(dict(type='BankedBoundary',
                                   attack=dict(type='BoundaryAttack',
                                               max_ratio=1.0)))
    source.bind(path)
    preprocessor = ClsDataPreprocessor(num_classes=4)
    samples = [DataSample(metainfo=dict(sample_idx=i)).set_gt_label(0)
               for i in range(num)]
    for sample in samples:
        sample.boundary_clean = clean[0]
    labels = torch.zeros(num, dtype=torch.long)
    logits = torch.tensor([[5., 0., 0., 0.]]).repeat(num, 1)

    def draw() -> torch.Tensor:
        out = source(None, torch.zeros(num, 1, 2, 2), samples, labels,
                     logits, logits, preprocessor)
        order = out.index.argsort()
        # The stored image of target j is j + 1: 1, 2 or 3 everywhere.
        images = out.inputs[order].flatten(1)
        assert torch.equal(images.amin(1), images.amax(1))
        assert torch.equal(out.target[order], images[:, 0].round().long())
        return out.target[order]

    state = copy.deepcopy(source.state_dict())
    draws = torch.stack([draw() for _ in range(300)])
    assert (draws[:, 1] == 3).all()  # weights (0, 0, 1)
    others = torch.cat([draws[:, :1], draws[:, 2:]], 1)
    assert set(others.unique().tolist()) == {1, 2}
    # 1500 draws of probability 0.6: std 0.0126, so 0.06 is 4.7 std.
    assert abs((others == 1).float().mean().item() - 0.6) < 0.06
    source.load_state_dict(state)
    assert torch.equal(draw(), draws[0])


@pytest.mark.parametrize('crossed', [True, False])
def test_rounding_to_levels_keeps_each_sample_on_the_attacks_side(crossed):
    """A sample that rounding its change to levels would carry over the
    boundary is stretched (the attack crossed) or shrunk (it stopped
    short) along its change until it is back: closed form with a teacher
    whose class 1 wins where the pixels sum to more than ``threshold``."""
    clean = np.zeros((1, 2, 2, 1), np.uint8)
    # The scale is 1 / 31: LEVELS (31) levels for the largest change, 1.
    if crossed:
        # Sum 1.0105, past 1.005; levels 31, 0, 0, 0 sum to 1.0: back.
        change, threshold, levels = 0.0035, 1.005, [31, 0, 0, 0]
    else:
        # Sum 1.051, short of 1.09; levels 31, 1, 1, 1 sum to 1.0968.
        change, threshold, levels = 0.017, 1.09, [31, 1, 1, 1]
    images = np.array([1.0, change, change, change],
                      np.float32).reshape(1, 2, 2, 1)
    delta, scale = encode(images, clean)
    assert delta.ravel().tolist() == levels
    rounded = decode(clean, delta, scale).sum()
    assert (rounded > threshold) != crossed

    def logits_of(pixels: np.ndarray) -> torch.Tensor:
        total = torch.from_numpy(pixels).flatten(1).sum(1, keepdim=True)
        return torch.cat([torch.full_like(total, threshold), total], 1)

    labels = torch.zeros(1, dtype=torch.long)
    one = torch.ones(1, dtype=torch.bool)
    kept, logits = BoundaryBankBuilder._keep_sides(
        logits_of, clean, delta, scale.copy(), labels, one,
        one if crossed else ~one)
    # The first factor, 1.01, brings it back: the sum times 1.01 (1.01 >
    # 1.005) or over 1.01 (1.0859 < 1.09).
    factor = 1.01 if crossed else 1 / 1.01
    assert kept[0] == pytest.approx(scale[0] * factor, rel=1e-6)
    assert decode(clean, delta, kept).sum() == pytest.approx(
        rounded * factor, rel=1e-6)
    assert logits.argmax(1).tolist() == [int(crossed)]
    # An image the teacher got wrong (not attacked) is left as it is.
    kept, _ = BoundaryBankBuilder._keep_sides(
        logits_of, clean, delta, scale.copy(), labels, ~one, ~one)
    assert kept[0] == scale[0]


def test_banked_logits_stand_in_for_the_teachers_pass(algorithm,
                                                      banked_batch):
    """The same step with the stored logits and with a teacher pass on the
    banked images: the same losses and gradients, up to the float32
    summation order of the teacher on another batch (the bank's logits
    came from a batch of 8, the pass sees 2 images)."""
    forwards = teacher_forwards(algorithm)
    stored = student_step(algorithm, forward_loss, banked_batch)
    assert forwards == [(STEP_BATCH, False, False)]  # the clean pass only
    forwards.clear()
    # As the cropping pipeline packs them: no logits.
    passed = student_step(algorithm, forward_loss,
                          as_decoded(banked_batch, logits=False))
    assert forwards == [(STEP_BATCH, False, False), (2, False, False)]

    assert stored[0]['distill.loss_boundary_kd'] > 0
    assert_same_step(stored, passed)


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
                                                   digits_bank_cfg,
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

    # The same step attacking online (the pair's boundary with only its
    # type switched) runs the teacher with gradients: what the counters
    # above would have caught.
    algorithm.boundary = TASK_UTILS.build(
        dict(digits_bank_cfg.model.boundary, type='OnlineBoundary'))
    assert isinstance(algorithm.boundary, OnlineBoundary)
    forwards.clear()
    algorithm.train_step(
        dict(inputs=banked_batch['inputs'],
             data_samples=banked_batch['data_samples']), optim_wrapper)
    assert len(forwards) > 2 and any(grad for _, grad, _ in forwards)
    assert autograd_grad_calls


# --- refining the loaded samples ------------------------------------------

# Pixels 0..255 are -10..10 under this preprocessor.
LINEAR_PREPROCESSOR = dict(num_classes=2, mean=[127.5] * 3,
                           std=[12.75] * 3)


def linear_batch(margins: torch.Tensor) -> dict:
    """A frozen two-class linear teacher and a batch of class 0 whose
    banked samples, toward class 1, have margins ``g = z_0 - z_1`` of
    ``margins``: ``BankedBoundary.__call__``'s arguments (teacher aside)
    and the preprocessed banked images (``loaded``).

    Both models get every clean image right, the student disagreeing the
    most on row 0, so a selection of the whole batch keeps the row order.
    """
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2))
    model.requires_grad_(False)
    w = model[1].weight[0] - model[1].weight[1]
    x = torch.randn(len(margins), 12) * 0.1
    g = x @ w + model[1].bias[0] - model[1].bias[1]
    x = x + (margins - g)[:, None] * w / w.dot(w)
    preprocessor = ClsDataPreprocessor(**LINEAR_PREPROCESSOR)
    pixels = to_pixels(x.view(-1, 3, 2, 2), preprocessor)
    assert ((pixels > 0) & (pixels < 255)).all()  # nothing clipped
    loaded = from_pixels(pixels, preprocessor)
    torch.testing.assert_close(loaded.flatten(1), x, rtol=0, atol=1e-5)
    with torch.no_grad():
        banked_logits = model(loaded)
    num = len(margins)
    data_samples = []
    for i in range(num):
        sample = DataSample().set_gt_label(0)
        sample.boundary_img = pixels[i].permute(1, 2, 0).numpy().copy()
        sample.boundary_target = 1
        sample.boundary_correct = True
        sample.boundary_reached = False
        sample.boundary_logits = banked_logits[i].numpy().copy()
        data_samples.append(sample)
    labels = torch.zeros(num, dtype=torch.long)
    teacher_logits = torch.tensor([[5., 0.]]).repeat(num, 1)
    student_logits = torch.stack(
        [torch.tensor([2. + i, 0.]) for i in range(num)])
    return dict(
        model=model, w=w, loaded=loaded, banked_logits=banked_logits,
        args=(torch.zeros_like(loaded), data_samples, labels,
              teacher_logits, student_logits, preprocessor))


def counting(model) -> tuple:
    """A teacher callable that records the batch size of each call."""
    calls = []

    def teacher(images):
        calls.append(len(images))
        return model(images)

    return teacher, calls


def banked(**kwargs) -> BankedBoundary:
    """A BankedBoundary that selects every image both models get right."""
    return BankedBoundary(
        attack=dict(type='BoundaryAttack', max_ratio=1.0), **kwargs)


def test_without_refine_the_loaded_samples_are_used_as_they_are():
    batch = linear_batch(torch.tensor([0.5, 2.0]))
    source = banked()
    assert source.refine_attack is None
    teacher, calls = counting(batch['model'])

    samples = source(teacher, *batch['args'])

    assert calls == []  # no teacher pass: the banked samples as loaded
    assert samples.index.tolist() == [0, 1]
    assert torch.equal(samples.inputs, batch['loaded'])
    assert samples.source.tolist() == [0, 0]
    assert samples.target.tolist() == [1, 1]
    assert samples.reached.tolist() == [False, False]
    assert samples.steps.tolist() == [0, 0]
    assert torch.equal(samples.labels, batch['args'][2])
    assert torch.equal(samples.teacher_logits, batch['banked_logits'])


@pytest.mark.parametrize('steps', [1, 2])
def test_refine_continues_from_the_loaded_samples(steps):
    """One first-order step on a linear teacher crosses from wherever the
    sample is; one already past b takes no step."""
    batch = linear_batch(torch.tensor([0.5, 2.0, -1.0]))
    loaded = banked()(counting(batch['model'])[0], *batch['args'])
    source = banked(
        refine=dict(step='newton', max_steps=steps, overshoot=0.1))
    assert isinstance(source.refine_attack, BoundaryAttack)
    teacher, calls = counting(batch['model'])

    refined = source(teacher, *batch['args'])

    assert refined.steps.tolist() == [1, 1, 0]
    assert refined.reached.all()
    start = batch['loaded']
    assert torch.equal(refined.inputs[2], start[2])
    w = batch['w']
    with torch.no_grad():
        z = batch['model'](start)
    for row in (0, 1):
        g0 = z[row, 0] - z[row, 1]  # 0.5 and 2.0, as loaded
        expected = (start[row].flatten() -
                    1.1 * (g0 + 1e-4) * w / w.dot(w))
        torch.testing.assert_close(refined.inputs[row].flatten(), expected,
                                   rtol=1e-4, atol=1e-5)
    # Targets, rows and labels are the banked ones.
    for field in ('index', 'source', 'target', 'labels'):
        assert torch.equal(getattr(refined, field), getattr(loaded, field))
    # The logits are the teacher's where the refining attack left each
    # sample, from its last pass: no pass besides the attack's.
    with torch.no_grad():
        torch.testing.assert_close(refined.teacher_logits,
                                   batch['model'](refined.inputs))
    assert not torch.equal(refined.teacher_logits, loaded.teacher_logits)
    assert calls == [3, 2]  # one step on all, then the check


@pytest.mark.parametrize('steps', [1, 2])
def test_refined_banked_step(steps, algorithm, banked_batch, selections,
                             monkeypatch):
    """In the training step the refining attack starts from the loaded
    (augmented) banked samples, takes at most ``steps`` passes, and the
    teacher gets no gradient."""
    monkeypatch.setattr(
        algorithm.boundary, 'refine_attack',
        TASK_UTILS.build(
            dict(type='BoundaryAttack', step='newton', max_steps=steps)))
    starts = []
    real = algorithm.boundary.refine_attack.attack_with_logits

    def spy(teacher, images, *args):
        starts.append(images.clone())
        return real(teacher, images, *args)

    monkeypatch.setattr(algorithm.boundary.refine_attack,
                        'attack_with_logits', spy)
    optim_wrapper = OptimWrapper(torch.optim.SGD(algorithm.parameters(),
                                                 lr=0.1))

    algorithm.train_step(
        dict(inputs=banked_batch['inputs'],
             data_samples=banked_batch['data_samples']), optim_wrapper)

    refined = selections[-1]
    assert refined.num == 2 and len(starts) == 1
    # The refining attack started from the loaded banked images of the
    # selected rows, preprocessed as the batch.
    pixels = bank_images(banked_batch, refined.index.tolist())
    loaded = algorithm.data_preprocessor(dict(inputs=pixels),
                                         False)['inputs']
    assert torch.equal(starts[-1], loaded)
    # The refining attack's last pass stands in for the teacher's.
    with torch.no_grad():
        torch.testing.assert_close(
            refined.teacher_logits,
            algorithm.teacher(refined.inputs, mode='tensor').float(),
            rtol=1e-4, atol=1e-4)
    stats = algorithm.attack_stats
    assert stats['attacked'] == 2 and 0 <= stats['steps'] <= steps
    assert all(p.grad is None for p in algorithm.teacher.parameters())


def test_a_batch_without_banked_samples_names_the_hook_and_pipeline(
        algorithm, digits_bank_cfg):
    """A BankedBoundary fed a batch without banked samples (no bank hook
    ran) stops with what to change."""
    images = digits_images(STEP_BATCH)
    unbound = TinyImages(images, [0] * STEP_BATCH,
                         copy.deepcopy(digits_bank_cfg.train_pipeline))
    data = algorithm.data_preprocessor(
        pseudo_collate([unbound[i] for i in range(STEP_BATCH)]), True)
    assert 'boundary_clean' not in data['data_samples'][0]
    with pytest.raises(UserInputError) as info:
        algorithm(data['inputs'], data['data_samples'], mode='loss')
    message = str(info.value)
    assert 'BoundaryBankHook' in message
    assert 'configs/_base_/distill/amkd.py' in message


def fake_runner(algorithm, cfg: Config, pipeline: list, work_dir: Path):
    """What build_boundary_bank reads of a runner."""
    dataset = TinyImages(digits_images(4), [0] * 4, copy.deepcopy(pipeline))
    return SimpleNamespace(
        model=algorithm, cfg=cfg, work_dir=str(work_dir),
        train_dataloader=SimpleNamespace(dataset=dataset))


def test_the_bank_hook_adds_the_loader_to_the_train_pipeline(
        algorithm, digits_bank_cfg, tmp_path):
    runner = fake_runner(algorithm, digits_bank_cfg,
                         digits_bank_cfg.train_pipeline, tmp_path)
    path = build_boundary_bank(runner)
    transforms = runner.train_dataloader.dataset.pipeline.transforms
    assert [type(t).__name__ for t in transforms] == [
        'LoadBoundaryBank', 'RandomCrop', 'PackInputs']
    assert transforms[0].bank_path == path
    assert transforms[-1].algorithm_keys == list(LoadBoundaryBank.PACKED)
    # A second run of the hook (e.g. the tool, then training) binds the
    # loader there instead of adding another.
    assert build_boundary_bank(runner) == path
    assert len(runner.train_dataloader.dataset.pipeline.transforms) == 3


def test_a_bank_needs_a_train_pipeline_that_packs(algorithm, digits_bank_cfg,
                                                  tmp_path):
    runner = fake_runner(algorithm, digits_bank_cfg,
                         digits_bank_cfg.train_pipeline[:-1], tmp_path)
    with pytest.raises(UserInputError) as info:
        build_boundary_bank(runner)
    message = str(info.value)
    assert 'ends with PackInputs' in message
    assert 'model.boundary.type=OnlineBoundary' in message
    assert not (tmp_path / 'boundary_bank').exists()


def test_an_online_boundary_builds_no_bank(algorithm, digits_bank_cfg,
                                           tmp_path):
    algorithm.boundary = TASK_UTILS.build(
        dict(digits_bank_cfg.model.boundary, type='OnlineBoundary'))
    runner = fake_runner(algorithm, digits_bank_cfg,
                         digits_bank_cfg.train_pipeline, tmp_path)
    assert build_boundary_bank(runner) is None
    assert not any(isinstance(t, LoadBoundaryBank) for t in
                   runner.train_dataloader.dataset.pipeline.transforms)
    assert not (tmp_path / 'boundary_bank').exists()


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
    bank = banked_batch['bank']
    targets = torch.tensor([int(bank['targets'][samples[i].sample_idx, 0])
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
        np.mean([bank['reached'][samples[i].sample_idx, 0]
                 for i in rows.tolist()]))
    assert stats['steps'] == 0


# --- the configs -----------------------------------------------------------

AMKD_CONFIGS = sorted(
    osp.relpath(path, REPO)
    for path in glob.glob(str(REPO / 'configs/amkd/*.py')))
FRAGMENTS = 'configs/experiments'
DIGITS = 'configs/amkd/resnet20_resnet8_digits.py'
DIGITS_LOWDATA = 'configs/amkd/resnet20_resnet8_digits_lowdata.py'
FASHION = 'configs/amkd/resnet20_resnet8_fashion_mnist_lowdata.py'
CIFAR100 = 'configs/amkd/resnet56_resnet20_cifar100.py'
NO_LS = 'logits/no_ls.py'
NO_TRIPLET = 'metric/no_triplet.py'
ONLINE_BSS = 'sources/online_bss.py'
CROP_FRAGMENT = f'{FRAGMENTS}/sources/bank_crop.py'
METRIC_FRAGMENTS = {
    '_clean': 'metric/also_clean.py',
    '_feat': 'metric/features.py',
    '_feat_logits': 'metric/features_and_logits.py',
    '_neg_boundary': 'metric/boundary_negatives.py',
    '_neg_centroids': 'metric/centroid_negatives.py',
    '_no_triplet': NO_TRIPLET,
    '_relmargin': 'metric/relative_margin.py',
    '_relmargin_raw': 'metric/relative_margin_raw.py',
}


def name_of(config: str) -> str:
    return osp.splitext(osp.basename(config))[0]


_BSS = ['sources/bank_bss.py']
_CROP = [*_BSS, 'sources/bank_crop.py']
# The measured variants of the digits proxies and the Fashion-MNIST pair
# (docs/results.md), once configs/amkd/<name>.py of their own: their pair
# and the fragments merged onto it. All of them bank.
BANK_VARIANTS = {
    'resnet20_resnet8_digits_bank_top3': (DIGITS, ['sources/top3.py']),
    'resnet20_resnet8_digits_no_ls': (DIGITS, [NO_LS]),
    'resnet20_resnet8_digits_no_ls_bank_bss': (DIGITS, [NO_LS, *_BSS]),
    'resnet20_resnet8_digits_no_ls_bank_bss_crop': (DIGITS, [NO_LS, *_CROP]),
    'resnet20_resnet8_digits_no_ls_bank_bss_crop_refine1':
    (DIGITS, [NO_LS, *_CROP, 'sources/refine1.py']),
    'resnet20_resnet8_digits_no_ls_bank_bss_crop_refine2':
    (DIGITS, [NO_LS, *_CROP, 'sources/refine1.py', 'sources/refine2.py']),
    'resnet20_resnet8_digits_no_triplet': (DIGITS, [NO_TRIPLET]),
    'resnet20_resnet8_digits_lowdata_no_ls': (DIGITS_LOWDATA, [NO_LS]),
    'resnet20_resnet8_digits_lowdata_no_triplet': (DIGITS_LOWDATA,
                                                   [NO_TRIPLET]),
    **{
        f'{name_of(pair)}_no_ls{suffix}': (pair, [NO_LS, fragment])
        for pair in (DIGITS, DIGITS_LOWDATA)
        for suffix, fragment in METRIC_FRAGMENTS.items()
    },
    'resnet20_resnet8_fashion_mnist_lowdata_no_ls': (FASHION, [NO_LS]),
    'resnet20_resnet8_fashion_mnist_lowdata_no_ls_no_triplet':
    (FASHION, [NO_LS, NO_TRIPLET]),
    'resnet20_resnet8_fashion_mnist_lowdata_no_ls_ratio1':
    (FASHION, [NO_LS, 'sources/ratio1.py']),
    'resnet20_resnet8_fashion_mnist_lowdata_no_ls_top3':
    (FASHION, [NO_LS, 'sources/top3.py']),
    'resnet20_resnet8_fashion_mnist_lowdata_no_ls_w025':
    (FASHION, [NO_LS, 'schedule/weight_025.py']),
    'resnet20_resnet8_fashion_mnist_lowdata_no_triplet': (FASHION,
                                                          [NO_TRIPLET]),
    'resnet20_resnet8_fashion_mnist_lowdata_ratio1': (FASHION,
                                                      ['sources/ratio1.py']),
    'resnet56_resnet20_cifar100_no_ls': (CIFAR100, [NO_LS]),
}
# The online twins (once <name>_online.py): every pair and the bases
# without LS with online_bss.py; and the first-order online attacks.
ONLINE_VARIANTS = {
    **{f'{name_of(pair)}_online': (pair, [ONLINE_BSS])
       for pair in AMKD_CONFIGS},
    **{f'{name}_online': (pair, [NO_LS, ONLINE_BSS])
       for name, (pair, fragments) in BANK_VARIANTS.items()
       if fragments == [NO_LS]},
    'resnet20_resnet8_digits_no_ls_online_newton':
    (DIGITS, [NO_LS, 'sources/online_newton.py']),
    'resnet20_resnet8_fashion_mnist_lowdata_online_newton':
    (FASHION, ['sources/online_newton.py']),
}
BANK_CONFIGS = [name_of(c) for c in AMKD_CONFIGS] + list(BANK_VARIANTS)


def load_config(name: str) -> Config:
    """A pair of configs/amkd, or a variant: its pair with its fragments."""
    if name in BANK_VARIANTS or name in ONLINE_VARIANTS:
        pair, fragments = {**BANK_VARIANTS, **ONLINE_VARIANTS}[name]
        return merge_fragments(
            str(REPO / pair), [str(REPO / FRAGMENTS / f) for f in fragments])
    return Config.fromfile(str(REPO / 'configs/amkd' / f'{name}.py'))


def train_pipeline_of(cfg: Config) -> list:
    dataset = cfg.train_dataloader.dataset
    # A wrapper (StratifiedSubset) holds the pipeline in its dataset.
    return dataset.get('dataset', dataset).pipeline


def without_boundary(cfg: Config) -> dict:
    config = cfg.to_dict()
    del config['model']['boundary']
    return config


def test_every_amkd_pair_is_banked():
    assert len(AMKD_CONFIGS) >= 18  # the 13 CIFAR-100 pairs, mixing, ...
    # No online twins: the online form of a pair is a switch of it.
    assert not [c for c in AMKD_CONFIGS if '_online' in c]
    for config in AMKD_CONFIGS:
        boundary = Config.fromfile(str(REPO / config)).model.boundary
        assert boundary.type == 'BankedBoundary', config  # the default
    # Every variant is a pair's, with fragments that exist.
    for pair, fragments in {**BANK_VARIANTS, **ONLINE_VARIANTS}.values():
        assert pair in AMKD_CONFIGS
        for fragment in fragments:
            assert (REPO / FRAGMENTS / fragment).is_file(), fragment


@pytest.mark.parametrize('config', AMKD_CONFIGS)
def test_online_switch_is_the_pair_without_the_bank(config):
    """``model.boundary.type=OnlineBoundary`` makes the pair's attack
    online, with nothing else changed: the same pipeline serves both."""
    banked_cfg = Config.fromfile(str(REPO / config))
    online_cfg = Config.fromfile(str(REPO / config))
    online_cfg.merge_from_dict({'model.boundary.type': 'OnlineBoundary'})
    banked = TASK_UTILS.build(copy.deepcopy(banked_cfg.model.boundary))
    online = TASK_UTILS.build(copy.deepcopy(online_cfg.model.boundary))
    assert isinstance(banked, BankedBoundary)
    assert isinstance(online, OnlineBoundary)
    assert online.attack.settings() == banked.attack.settings()
    assert online.attack.max_ratio == banked.attack.max_ratio
    pipeline = train_pipeline_of(online_cfg)
    assert pipeline == train_pipeline_of(banked_cfg)
    assert pipeline == online_cfg.train_pipeline
    assert without_boundary(online_cfg) == without_boundary(banked_cfg)
    boundaries = [cfg.model.boundary.to_dict()
                  for cfg in (online_cfg, banked_cfg)]
    assert [b.pop('type')
            for b in boundaries] == ['OnlineBoundary', 'BankedBoundary']
    assert boundaries[0] == boundaries[1]


@pytest.mark.parametrize('name', list(ONLINE_VARIANTS))
def test_online_variant_is_its_pair_without_the_bank(name):
    cfg = load_config(name)
    pair, fragments = ONLINE_VARIANTS[name]
    online = TASK_UTILS.build(copy.deepcopy(cfg.model.boundary))
    assert isinstance(online, OnlineBoundary)
    # The dataset's train pipeline, as the banked pair has it.
    assert train_pipeline_of(cfg) == cfg.train_pipeline
    if name.endswith('_online_newton'):
        assert online.attack.step == 'newton'
        assert online.attack.max_steps == 3
        return
    # BSS's attack, as the old *_online.py attacked with.
    bss = BoundaryAttack(max_steps=10, step_size=0.3, max_ratio=0.25)
    assert online.attack.settings() == bss.settings()
    assert online.attack.max_ratio == bss.max_ratio
    # Everything but the boundary source is the banked variant's.
    banked = merge_fragments(
        str(REPO / pair),
        [str(REPO / FRAGMENTS / f) for f in fragments if f != ONLINE_BSS])
    assert without_boundary(cfg) == without_boundary(banked)


@pytest.mark.parametrize('name', BANK_CONFIGS)
def test_bank_config(name):
    cfg = load_config(name)
    pipeline = train_pipeline_of(cfg)
    # The dataset's train pipeline, which the bank hook completes, or the
    # cropping fragment's, which loads the bank itself.
    if '_crop' in name:
        crop = Config.fromfile(str(REPO / CROP_FRAGMENT))
        assert pipeline == train_pipeline_of(crop)
        assert {'boundary_img', 'boundary_correct'} <= set(
            pipeline[-1]['algorithm_keys'])
    else:
        assert pipeline == cfg.train_pipeline
    source = TASK_UTILS.build(copy.deepcopy(cfg.model.boundary))
    assert isinstance(source, BankedBoundary)
    assert isinstance(source.builder, BoundaryBankBuilder)
    # The attack's max_ratio selects in the step, the rest builds.
    assert source.builder.attack is source.attack
    assert source.builder.top_k == (3 if name.endswith('_top3') else None)
    assert (source.refine_attack is None) == ('_refine' not in name)
    if '_refine' in name:
        assert source.refine_attack.max_steps == int(name[-1])
    assert source.attack.step == ('bss' if '_bank_bss' in name else
                                  'newton')
    assert source.attack.max_ratio == (1.0 if '_ratio1' in name else 0.25)


# --- one pair, trained banked and online -----------------------------------

_runs = itertools.count()


@pytest.fixture
def restore_runner_globals():
    """Give back the current logger, message hub and visualizer (a Runner
    makes its own the current ones for the whole process)."""
    managers = (MessageHub, MMLogger, Visualizer)
    saved = {cls: copy.copy(cls._instance_dict) for cls in managers}
    yield
    for cls, instances in saved.items():
        cls._instance_dict = instances


@pytest.fixture
def boundary_calls(monkeypatch, autograd_grad_calls) -> list:
    """(source, whether the batch carried banked fields, samples, input
    gradients taken) of every boundary source call."""
    calls = []
    for cls in (BankedBoundary, OnlineBoundary):

        def spy(self, teacher, images, data_samples, *args,
                real=cls.__call__):
            grads = len(autograd_grad_calls)
            samples = real(self, teacher, images, data_samples, *args)
            calls.append((type(self).__name__,
                          'boundary_clean' in data_samples[0], samples,
                          len(autograd_grad_calls) - grads))
            return samples

        monkeypatch.setattr(cls, '__call__', spy)
    return calls


def train_digits_pair(work_dir: Path, teacher_ckpt: Path,
                      options: dict) -> Runner:
    """Two iterations of the digits pair on 16 images."""
    cfg = Config.fromfile(str(REPO / DIGITS_BANK))
    cfg.merge_from_dict({
        'model.teacher_ckpt': str(teacher_ckpt),
        # The student starts as the teacher, so both get most images right
        # and the selection has candidates.
        'model.architecture.cfg_path': 'configs/_base_/models/resnet20.py',
        'model.architecture.init_cfg': dict(
            type='Pretrained', checkpoint=str(teacher_ckpt)),
        'train_dataloader.dataset.indices': 16,
        'train_dataloader.batch_size': 8,
        'train_cfg.max_epochs': 1,
        'train_cfg.val_interval': 100,
        'work_dir': str(work_dir),
        'log_level': 'WARNING',
        'experiment_name': f'bank_pair_{next(_runs)}',
        **options
    })
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2
    return runner


def bank_loader(runner: Runner) -> LoadBoundaryBank:
    [loader] = [t for t in runner.train_dataloader.dataset.pipeline.transforms
                if isinstance(t, LoadBoundaryBank)]
    return loader


@pytest.mark.usefixtures('restore_runner_globals')
def test_the_pair_trains_banked_and_online(tmp_path, trained_digits_teacher,
                                           boundary_calls):
    """The pair config trains on banked samples (BoundaryBankHook builds
    the bank and binds it) and, with only ``model.boundary.type``
    switched, on online ones, with the same train pipeline."""
    banked = train_digits_pair(tmp_path / 'banked', trained_digits_teacher,
                               {})
    assert isinstance(banked.model.boundary, BankedBoundary)
    [bank] = os.listdir(tmp_path / 'banked' / 'boundary_bank')
    path = str(tmp_path / 'banked' / 'boundary_bank' / bank)
    assert BoundaryBankFile.open(path).num == 16
    assert bank_loader(banked).bank_path == path
    assert [(name, fields) for name, fields, _, _ in boundary_calls] == [
        ('BankedBoundary', True)] * 2
    samples = [s for _, _, s, _ in boundary_calls]
    assert sum(s.num for s in samples) > 0
    assert all((s.steps == 0).all() for s in samples)  # as banked
    # No attack in the steps (building the bank attacked, before them).
    assert [grads for *_, grads in boundary_calls] == [0, 0]

    boundary_calls.clear()
    online = train_digits_pair(tmp_path / 'online', trained_digits_teacher,
                               {'model.boundary.type': 'OnlineBoundary'})
    assert isinstance(online.model.boundary, OnlineBoundary)
    assert (online.model.boundary.attack.settings() ==
            banked.model.boundary.attack.settings())
    assert (online.cfg.train_dataloader.dataset.pipeline ==
            banked.cfg.train_dataloader.dataset.pipeline)
    assert not (tmp_path / 'online' / 'boundary_bank').exists()
    # The dataset's train pipeline as it is: no bank loader was added.
    assert not any(
        isinstance(t, LoadBoundaryBank)
        for t in online.train_dataloader.dataset.pipeline.transforms)
    assert [(name, fields) for name, fields, _, _ in boundary_calls] == [
        ('OnlineBoundary', False)] * 2
    samples = [s for _, _, s, _ in boundary_calls]
    assert sum(s.num for s in samples) > 0
    assert all((s.steps >= 1).all() for s in samples)  # attacked now
    assert sum(grads for *_, grads in boundary_calls) > 0
