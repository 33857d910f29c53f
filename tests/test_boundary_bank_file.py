# Copyright (c) amkd-mmrazor contributors.
"""Boundary bank files, LoadBoundaryBank and the banked train pipelines.

The dataset configs have one train pipeline; for a bank, ``BoundaryBankHook``
puts a ``LoadBoundaryBank`` into it (``add_bank_loader``), which loads the
banked samples once a bank is bound and passes the images through without
one. The cropping variant of the banked sample is the config fragment
``configs/experiments/sources/bank_crop.py`` (digits only).
"""
import multiprocessing
import os
import pickle
import shutil
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmpretrain.datasets.transforms import PackInputs
from mmpretrain.registry import DATASETS, TRANSFORMS

from amkd_plugin.bank import (BoundaryBankFile, LoadBoundaryBank,
                              add_bank_loader)
from amkd_plugin.utils import UserValueError
from amkd_plugin.utils.fragments import merge_fragments

REPO = Path(__file__).parents[1]
CONFIG_DIR = REPO / 'configs' / '_base_' / 'datasets'
SCOPES = ('mmpretrain', 'mmrazor')
SHAPE = (32, 32, 3)
CLASSES = 7  # the teacher's class count C
# The train pipeline with the LoadBoundaryBank the bank hook adds.
AMKD = 'banked'
# The banked image with the clean image's random crop: a config fragment
# for the digits pairs (the dataset configs have no such pipeline).
CROP = 'bank_crop'
CROP_FRAGMENT = REPO / 'configs/experiments/sources/bank_crop.py'
DIGITS_PAIR = REPO / 'configs/amkd/resnet20_resnet8_digits.py'
PIPELINES = (AMKD, CROP)
BANK_KEYS = [
    'boundary_img', 'boundary_target', 'boundary_correct', 'boundary_reached'
]
# As banked, the teacher's logits on the banked image hold; not after a crop.
AS_BANKED_KEYS = [*BANK_KEYS, 'boundary_logits']
# Value added to the clean gradient image to make the banked image.
OFFSET = 100


def random_rows(num: int, num_targets: int, seed: int = 0) -> dict:
    """Random arrays for every field of ``num`` bank rows."""
    rng = np.random.default_rng(seed)
    return dict(
        images=rng.uniform(0, 255, (num, num_targets) + SHAPE).astype(
            np.float32),
        logits=rng.normal(0, 5, (num, num_targets, CLASSES)).astype(
            np.float32),
        targets=rng.integers(0, 100, (num, num_targets)),
        weights=rng.random((num, num_targets), np.float32),
        correct=rng.random(num) < 0.5,
        reached=rng.random((num, num_targets)) < 0.5,
        steps=rng.integers(0, 10, (num, num_targets)).astype(np.int16))


def rows_at(rows: dict, indices: np.ndarray) -> dict:
    return {name: value[indices] for name, value in rows.items()}


def build_bank(path: Path,
               images: np.ndarray,
               weights: Optional[np.ndarray] = None) -> BoundaryBankFile:
    """Commit a bank of ``images`` (N, K, H, W, C) pixel values (stored as
    float32, whatever their type here); targets are ``10 * k``."""
    num, num_targets = images.shape[:2]
    rows = dict(
        images=images.astype(np.float32),
        logits=np.zeros((num, num_targets, CLASSES), np.float32),
        targets=np.tile(10 * np.arange(num_targets), (num, 1)),
        weights=(np.ones(
            (num, num_targets), np.float32) if weights is None else weights),
        correct=np.ones(num, bool),
        reached=np.ones((num, num_targets), bool),
        steps=np.full((num, num_targets), 3, np.int16))
    bank = BoundaryBankFile.create(
        str(path), num, num_targets, images.shape[2:], CLASSES,
        meta={'test': 1})
    bank.write(np.arange(num), **rows)
    return bank.commit()


def _write_shard(partial_path: str, indices: np.ndarray, rows: dict) -> None:
    """Another rank: open the creator's files and write its indices."""
    bank = BoundaryBankFile.open_partial(partial_path)
    bank.write(indices, **rows_at(rows, indices))
    bank.flush()


# --- BoundaryBankFile --------------------------------------------------


def test_two_writers_round_trip(tmp_path):
    path = str(tmp_path / 'bank')
    num, num_targets = 10, 3
    rows = random_rows(num, num_targets)
    bank = BoundaryBankFile.create(
        path, num, num_targets, SHAPE, CLASSES, meta={'teacher': 'resnet'})
    partial = bank.partial_path
    # "Rank 1" is a real second process writing into the same memory maps.
    rank1 = np.arange(1, num, 2)
    proc = multiprocessing.get_context('fork').Process(
        target=_write_shard, args=(partial, rank1, rows))
    proc.start()
    rank0 = np.arange(0, num, 2)
    bank.write(rank0, **rows_at(rows, rank0))
    proc.join()
    assert proc.exitcode == 0
    committed = bank.commit()

    assert not os.path.exists(partial)
    assert BoundaryBankFile.exists(path)
    for opened in (committed, BoundaryBankFile.open(path)):
        assert (opened.num, opened.num_targets) == (num, num_targets)
        assert opened.image_shape == SHAPE
        assert opened.meta == {'teacher': 'resnet'}
        for name, value in rows.items():
            np.testing.assert_array_equal(opened[name], value, err_msg=name)
            assert opened[name].dtype == value.dtype
        assert not opened['images'].flags.writeable


def test_write_checks_shapes_and_dtype(tmp_path):
    bank = BoundaryBankFile.create(str(tmp_path / 'bank'), 4, 2, SHAPE,
                                   CLASSES)
    rows = rows_at(random_rows(4, 2), np.arange(2))
    with pytest.raises(ValueError, match='targets must have shape'):
        bank.write(np.arange(2), **{**rows, 'targets': rows['targets'][:1]})
    with pytest.raises(TypeError, match='float32'):
        bank.write(
            np.arange(2), **{
                **rows, 'images': rows['images'].astype(np.uint8)
            })


def test_uncommitted_bank_is_not_complete(tmp_path):
    path = tmp_path / 'bank'
    num = 4
    bank = BoundaryBankFile.create(str(path), num, 1, SHAPE, CLASSES)
    bank.write(np.arange(num), **random_rows(num, 1))
    bank.flush()
    partial = bank.partial_path

    assert not BoundaryBankFile.exists(str(path))
    assert not BoundaryBankFile.exists(partial)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        BoundaryBankFile.open(str(path))
    with pytest.raises(FileNotFoundError, match='half-written'):
        BoundaryBankFile.open(partial)
    # A crash while copying a bank by hand: arrays but no meta.json.
    shutil.copytree(partial, path)
    with pytest.raises(FileNotFoundError, match='half-written'):
        BoundaryBankFile.open(str(path))
    with pytest.raises(FileExistsError, match='no complete boundary bank'):
        bank.commit()


def truncate(file: Path, keep: float) -> None:
    data = file.read_bytes()
    file.write_bytes(data[:int(len(data) * keep)])


@pytest.mark.parametrize('damage, what', [
    (lambda p: truncate(p / 'images.npy', 0.5), r'images\.npy cannot be '
     r'mapped'),
    (lambda p: truncate(p / 'weights.npy', 0.01), r'weights\.npy cannot be '
     r'mapped'),
    (lambda p: truncate(p / 'meta.json', 0.5), r'meta\.json is not JSON'),
    (lambda p: (p / 'steps.npy').unlink(), r'steps\.npy is missing'),
    (lambda p: np.save(p / 'targets.npy', np.zeros((4, 3), np.int64)),
     r'targets\.npy is int64\(4, 3\), expected int64\(4, 2\)'),
    (lambda p: np.save(p / 'weights.npy', np.zeros((4, 2), np.float64)),
     r'weights\.npy is float64\(4, 2\), expected float32\(4, 2\)'),
])
def test_open_names_a_damaged_bank(tmp_path, damage, what):
    path = tmp_path / 'bank'
    build_bank(path, np.zeros((4, 2) + SHAPE, np.float32))
    damage(path)
    with pytest.raises(UserValueError, match=what) as info:
        BoundaryBankFile.open(str(path))
    message = str(info.value)
    assert message.startswith(f'Boundary bank {path} is damaged: ')
    assert 'tools/build_boundary_bank.py' in message and '\n' not in message


def test_concurrent_commit_keeps_first_bank(tmp_path):
    path = str(tmp_path / 'bank')
    first = BoundaryBankFile.create(path, 2, 1, SHAPE, CLASSES,
                                    meta={'who': 1})
    second = BoundaryBankFile.create(path, 2, 1, SHAPE, CLASSES,
                                     meta={'who': 2})
    assert first.partial_path != second.partial_path
    second_partial = second.partial_path
    assert first.commit().meta == {'who': 1}
    assert second.commit().meta == {'who': 1}
    assert not os.path.exists(second_partial)
    assert BoundaryBankFile.open(path).meta == {'who': 1}


def test_sample_follows_weights(tmp_path):
    images = np.empty((3, 2) + SHAPE, np.float32)
    images[:, 0], images[:, 1] = 7, 9
    weights = np.tile(np.array([0.9, 0.1], np.float32), (3, 1))
    weights[2] = 0  # e.g. a teacher that assigns no target probability
    bank = build_bank(tmp_path / 'bank', images, weights)
    rng = np.random.default_rng(0)
    draws = [bank.sample(1, rng) for _ in range(2000)]
    targets = np.array([d['boundary_target'] for d in draws])
    assert set(targets) == {0, 10}
    assert abs(np.mean(targets == 0) - 0.9) < 0.03
    for draw in draws[:20]:
        assert draw['boundary_img'][0, 0, 0] == (7 if draw['boundary_target']
                                                 == 0 else 9)
        assert draw['boundary_correct'] is True
        assert draw['boundary_reached'] is True
    # numpy's global state (what LoadBoundaryBank uses) works as well.
    np.random.seed(0)
    global_targets = [bank.sample(0)['boundary_target'] for _ in range(2000)]
    assert abs(np.mean(np.array(global_targets) == 0) - 0.9) < 0.03
    # All-zero weights fall back to a uniform draw.
    zero = [bank.sample(2, rng)['boundary_target'] for _ in range(2000)]
    assert abs(np.mean(np.array(zero) == 0) - 0.5) < 0.05

    # The returned image is a private, writable, contiguous copy.
    img = bank.sample(0, rng)['boundary_img']
    assert img.flags.writeable and img.flags.c_contiguous
    assert img.shape == SHAPE and img.dtype == np.float32
    img[:] = 0
    assert bank['images'][0].min() > 0
    with pytest.raises(IndexError, match='another dataset'):
        bank.sample(3, rng)


def test_sample_single_target(tmp_path):
    bank = build_bank(tmp_path / 'bank', np.ones((2, 1) + SHAPE, np.float32),
                      np.zeros((2, 1), np.float32))
    rng = np.random.default_rng(0)
    assert {bank.sample(1, rng)['boundary_target'] for _ in range(50)} == {0}


# --- LoadBoundaryBank --------------------------------------------------


def test_load_boundary_bank_transform(tmp_path):
    bank_images = np.broadcast_to(
        np.arange(2, dtype=np.float32)[:, None, None, None, None],
        (2, 1) + SHAPE)
    path = build_bank(tmp_path / 'bank', bank_images).path
    results = dict(img=np.zeros(SHAPE, np.uint8), sample_idx=1)

    transform = TRANSFORMS.build(dict(type='LoadBoundaryBank'))
    assert isinstance(transform, LoadBoundaryBank)
    # No bank bound (an OnlineBoundary run): the results pass through.
    assert transform(dict(results)) == results
    transform.bind(path)
    out = transform(dict(results))
    assert out['boundary_img'].shape == SHAPE
    assert out['boundary_img'].max() == 1
    assert out['boundary_target'] == 0
    # The opened memory maps never travel to (spawned) workers.
    assert len(pickle.dumps(transform)) < 1000
    assert pickle.loads(pickle.dumps(transform))(
        dict(results))['boundary_img'].max() == 1
    with pytest.raises(ValueError, match=r'\(28, 28, 3\).*\(32, 32, 3\)'):
        transform(dict(img=np.zeros((28, 28, 3), np.uint8), sample_idx=0))

    # bind() drops the open bank, so a new bank takes effect.
    other = build_bank(tmp_path / 'other', bank_images + 5).path
    transform.bind(other)
    assert transform(dict(results))['boundary_img'].max() == 6
    # bind(None) unbinds: through again.
    transform.bind(None)
    assert transform(dict(results)) == results


def test_unbound_load_boundary_bank_passes_results_through():
    img = np.arange(np.prod(SHAPE), dtype=np.uint8).reshape(SHAPE)
    results = dict(img=img, sample_idx=3, gt_label=1)
    for transform in (LoadBoundaryBank(),
                      TRANSFORMS.build(dict(type='LoadBoundaryBank'))):
        out = transform(results)
        assert out is results  # the very dict, nothing added or removed
        assert sorted(out) == ['gt_label', 'img', 'sample_idx']
        assert out['img'] is img and out['sample_idx'] == 3
        np.testing.assert_array_equal(
            img, np.arange(np.prod(SHAPE), dtype=np.uint8).reshape(SHAPE))
    # Even for an image no bank could hold: nothing is opened or checked.
    odd = dict(img=np.zeros((28, 28), np.uint8), sample_idx=10**6)
    assert LoadBoundaryBank()(odd) is odd
    assert sorted(odd) == ['img', 'sample_idx']


# --- the banked train pipeline and the cropping fragment -----------------


def load_cfg(name: str) -> Config:
    return Config.fromfile(str(CONFIG_DIR / f'{name}.py'))


def crop_pipeline() -> list:
    """The digits pair's train pipeline with the bank_crop fragment."""
    cfg = merge_fragments(str(DIGITS_PAIR), [str(CROP_FRAGMENT)])
    pipeline = cfg.train_dataloader.dataset.pipeline
    # The fragment's pipeline replaces the pair's, as a whole.
    fragment = Config.fromfile(str(CROP_FRAGMENT))
    assert pipeline == fragment.train_dataloader.dataset.pipeline
    return pipeline


def pipeline_cfg(name: str, key: str) -> list:
    """The pipeline config of ``key``: ``CROP`` is the fragment's (digits
    only), ``AMKD`` the dataset config's train pipeline, which
    :func:`banked` completes once built."""
    if key == CROP:
        assert name == 'digits', 'bank_crop.py is for the digits pairs'
        return crop_pipeline()
    return load_cfg(name).train_pipeline


def banked(pipeline: Compose, key: str) -> Compose:
    """``pipeline`` as training runs it with a bank: the train pipeline gets
    its LoadBoundaryBank from the hook (``add_bank_loader``)."""
    if key == AMKD:
        add_bank_loader(pipeline)
    return pipeline


def amkd_pipeline(name: str, scope: str) -> Compose:
    """Dataset config ``name``'s train pipeline with the bank loader."""
    with DefaultScope.overwrite_default_scope(scope):
        return banked(Compose(load_cfg(name).train_pipeline), AMKD)


def bind_pipeline(transforms, bank_path: str) -> None:
    """Bind the LoadBoundaryBank of a built pipeline, as the hook does."""
    banks = [t for t in transforms if isinstance(t, LoadBoundaryBank)]
    assert len(banks) == 1
    banks[0].bind(bank_path)


def build_bank_pipeline(name: str,
                        scope: str,
                        bank_path: str,
                        key: str = CROP) -> Compose:
    with DefaultScope.overwrite_default_scope(scope):
        pipeline = banked(Compose(pipeline_cfg(name, key)), key)
    bind_pipeline(pipeline.transforms, bank_path)
    return pipeline


def gradient_image() -> np.ndarray:
    """A clean image that shows crops and flips: it grows with x (and
    differs per channel) and is nowhere zero, unlike the padding."""
    x = np.arange(SHAPE[1])
    img = 10 + 2 * x[None, :, None] + 5 * np.arange(3)[None, None, :]
    return np.broadcast_to(img, SHAPE).astype(np.uint8)


def run(pipeline: Compose,
        img: np.ndarray,
        seed: int,
        sample_idx: int = 0) -> tuple:
    """Clean and boundary outputs as (H, W, C) arrays, plus the sample."""
    np.random.seed(seed)
    packed = pipeline(dict(img=img.copy(), sample_idx=sample_idx, gt_label=1))
    sample = packed['data_samples']
    clean = packed['inputs'].permute(1, 2, 0).numpy()
    return clean, np.asarray(sample.boundary_img), sample


def test_cifar10_config_inherits_the_train_pipeline():
    assert load_cfg('cifar10').train_pipeline == load_cfg(
        'cifar100').train_pipeline


@pytest.mark.parametrize('name', ['cifar100', 'digits', 'fashion_mnist',
                                  'tiny_imagenet'])
def test_dataset_configs_have_no_crop_pipeline(name):
    """The cropping pipeline is a fragment now, not a dataset config's."""
    cfg = load_cfg(name)
    for key in ('bank_crop_train_pipeline', 'bank_train_pipeline',
                'amkd_train_pipeline'):
        assert key not in cfg


@pytest.mark.parametrize('scope', SCOPES)
def test_bank_crop_pipeline_builds(scope):
    cfg = load_cfg('digits')
    crop = crop_pipeline()
    with DefaultScope.overwrite_default_scope(scope):
        pipeline = Compose(crop)
    names = [type(t).__name__ for t in pipeline.transforms]
    assert 'LoadBoundaryBank' in names
    assert names[-2:] == ['TransformBroadcaster', 'PackInputs']
    # The broadcaster wraps exactly the random transforms of train_pipeline.
    wrapped = [dict(t) for t in crop[-2].transforms]
    loaders = [t for t in cfg.train_pipeline if 'Load' in t['type']]
    assert [dict(t) for t in cfg.train_pipeline] == (
        loaders + wrapped + [dict(type='mmpretrain.PackInputs')])


@pytest.mark.parametrize('scope', SCOPES)
@pytest.mark.parametrize('name', ['cifar100', 'digits', 'fashion_mnist',
                                  'tiny_imagenet'])
def test_bank_pipeline_is_train_pipeline_plus_bank(name, scope):
    """The hook's pipeline is the train pipeline with LoadBoundaryBank
    after the loading transforms and the banked fields packed: the
    bank_train_pipeline the dataset configs used to write out."""
    cfg = load_cfg(name)
    steps = [dict(t) for t in cfg.train_pipeline]
    at = sum('Load' in t['type'] for t in steps)
    expected = [*steps[:at], dict(type='mmpretrain.LoadBoundaryBank'),
                *steps[at:-1], dict(steps[-1], algorithm_keys=AS_BANKED_KEYS)]
    with DefaultScope.overwrite_default_scope(scope):
        derived = amkd_pipeline(name, scope)
        written = Compose(expected)
    assert [repr(t) for t in derived.transforms] == [
        repr(t) for t in written.transforms]
    assert derived.transforms[-1].algorithm_keys == AS_BANKED_KEYS
    if name == 'digits':
        packed = dict(crop_pipeline()[-1])
        assert packed['algorithm_keys'] == BANK_KEYS


@pytest.mark.parametrize('scope', SCOPES)
@pytest.mark.parametrize('name', ['cifar100', 'digits'])
def test_unbound_amkd_pipeline_is_train_pipeline(name, scope):
    """Without a bank bound the banked pipeline gives what the train
    pipeline gives: the same augmented image, no boundary field."""
    rng = np.random.default_rng(2)
    clean = rng.integers(1, 256, (3, ) + SHAPE, np.uint8)
    with DefaultScope.overwrite_default_scope(scope):
        plain = Compose(load_cfg(name).train_pipeline)
    amkd = amkd_pipeline(name, scope)
    for seed in range(6):
        idx = seed % 3
        np.random.seed(seed)
        out = amkd(dict(img=clean[idx].copy(), sample_idx=idx, gt_label=1))
        np.random.seed(seed)
        expected = plain(dict(img=clean[idx].copy(), sample_idx=idx,
                              gt_label=1))
        assert torch.equal(out['inputs'], expected['inputs'])
        sample = out['data_samples']
        for key in AS_BANKED_KEYS:
            assert key not in sample, key
        assert sorted(sample.keys()) == sorted(
            expected['data_samples'].keys())
        assert sample.gt_label.tolist() == [1]


@pytest.mark.parametrize('scope', SCOPES)
@pytest.mark.parametrize('name', ['cifar100', 'digits'])
def test_bank_pipeline_keeps_banked_image_as_is(name, scope, tmp_path):
    rng = np.random.default_rng(1)
    clean = rng.integers(1, 256, (3, ) + SHAPE, np.uint8)
    banked = rng.integers(0, 256, (3, ) + SHAPE, np.uint8)
    path = build_bank(tmp_path / 'bank', banked[:, None]).path
    pipeline = build_bank_pipeline(name, scope, path, AMKD)
    with DefaultScope.overwrite_default_scope(scope):
        plain = Compose(load_cfg(name).train_pipeline)
    cropped = 0
    for seed in range(20):
        idx = seed % 3
        clean_out, bank_out, sample = run(pipeline, clean[idx], seed, idx)
        np.testing.assert_array_equal(bank_out, banked[idx])
        # The clean image is augmented as by train_pipeline with the seed.
        np.random.seed(seed)
        expected = plain(dict(img=clean[idx].copy(), gt_label=1))['inputs']
        np.testing.assert_array_equal(clean_out,
                                      expected.permute(1, 2, 0).numpy())
        cropped += bool((clean_out == 0).any())
    assert cropped > 10


@pytest.mark.parametrize('scope', SCOPES)
@pytest.mark.parametrize('name', ['digits'])
def test_bank_crop_pipeline_same_image_same_output(name, scope, tmp_path):
    rng = np.random.default_rng(1)
    clean = rng.integers(0, 256, (3, ) + SHAPE, np.uint8)
    path = build_bank(tmp_path / 'bank', clean[:, None]).path
    pipeline = build_bank_pipeline(name, scope, path)
    with DefaultScope.overwrite_default_scope(scope):
        plain = Compose(load_cfg(name).train_pipeline)
    for seed in range(20):
        idx = seed % 3
        clean_out, bank_out, sample = run(pipeline, clean[idx], seed, idx)
        np.testing.assert_array_equal(clean_out, bank_out)
        assert bank_out.dtype == np.float32 and bank_out.shape == SHAPE
        assert sample.boundary_target == 0 and sample.sample_idx == idx
        # Same seed, same crop/flip as the ordinary train_pipeline (K=1 makes
        # no draw, so the random streams line up).
        np.random.seed(seed)
        expected = plain(dict(img=clean[idx].copy(), gt_label=1))['inputs']
        np.testing.assert_array_equal(clean_out,
                                      expected.permute(1, 2, 0).numpy())


@pytest.mark.parametrize('scope', SCOPES)
@pytest.mark.parametrize('name, flips', [('digits', False)])
def test_bank_crop_pipeline_shares_crop_and_flip(name, flips, scope, tmp_path):
    clean = gradient_image()
    path = build_bank(tmp_path / 'bank', (clean + OFFSET)[None, None]).path
    pipeline = build_bank_pipeline(name, scope, path)
    crops, flipped = set(), set()
    for seed in range(60):
        clean_out, bank_out, _ = run(pipeline, clean, seed)
        padding = clean_out == 0
        # Zero padding in the same places, the same pixels elsewhere.
        np.testing.assert_array_equal(bank_out == 0, padding)
        np.testing.assert_array_equal(bank_out[~padding],
                                      clean_out[~padding] + OFFSET)
        crops.add(padding.tobytes())
        row = clean_out[SHAPE[0] // 2, :, 0]
        content = row[row > 0].astype(int)
        flipped.add(bool(content[0] > content[-1]))
    assert len(crops) > 10
    assert flipped == ({False, True} if flips else {False})


# --- datasets with the bank pipelines ----------------------------------


def bank_dataset(name: str, scope: str, tmp_path: Path, key: str,
                 **dataset_kwargs):
    """A train dataset with pipeline ``key`` and a bank bound to it whose
    K=2 images of each index are ``clean // 2 + 100`` and ``+ 101``."""
    cfg = load_cfg(name)
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.update(pipeline=pipeline_cfg(name, key), **dataset_kwargs)
    with DefaultScope.overwrite_default_scope(scope):
        dataset = DATASETS.build(dataset_cfg)
        banked(dataset.pipeline, key)
    clean = np.stack(
        [dataset.get_data_info(i)['img'] for i in range(len(dataset))])
    half = clean // 2 + 100
    images = np.stack([half, half + 1], axis=1)
    bank = build_bank(tmp_path / 'bank', images)
    bind_pipeline(dataset.pipeline.transforms, bank.path)
    return dataset, bank


def check_packed(inputs, sample, clean: np.ndarray, key: str) -> None:
    """The packed boundary fields and their relation to the clean image
    (``clean``, as loaded) and to the augmented input."""
    clean_out = inputs.permute(1, 2, 0).numpy()
    bank_out = sample.boundary_img
    assert isinstance(bank_out, np.ndarray)
    assert bank_out.dtype == np.float32 and bank_out.shape == SHAPE
    assert sample.boundary_target in (0, 10)
    assert isinstance(sample.boundary_correct, bool)
    assert isinstance(sample.boundary_reached, bool)
    extra = sample.boundary_target // 10
    if key == AMKD:  # the banked image, as it is
        np.testing.assert_array_equal(bank_out, clean // 2 + 100 + extra)
        return
    padding = bank_out == 0
    np.testing.assert_array_equal(clean_out[padding], 0)
    np.testing.assert_array_equal(bank_out[~padding],
                                  clean_out[~padding] // 2 + 100 + extra)


@pytest.mark.parametrize('key', [AMKD])
@pytest.mark.parametrize('scope', SCOPES)
def test_cifar_dataset_packs_boundary_fields(scope, key, make_cifar,
                                             tmp_path):
    root = make_cifar('cifar100', num_per_class=1)
    dataset, bank = bank_dataset(
        'cifar100', scope, tmp_path, key, data_root=str(root))
    assert bank.num == len(dataset) == 100
    for idx in (0, 57, 99):
        packed = dataset[idx]
        sample = packed['data_samples']
        assert sample.sample_idx == idx
        check_packed(packed['inputs'], sample,
                     dataset.get_data_info(idx)['img'], key)


@pytest.mark.parametrize('key', PIPELINES)
def test_digits_dataset_packs_boundary_fields(key, tmp_path):
    dataset, _ = bank_dataset('digits', 'mmrazor', tmp_path, key)
    idx = len(dataset) - 1
    packed = dataset[idx]
    assert packed['data_samples'].sample_idx == idx
    check_packed(packed['inputs'], packed['data_samples'],
                 dataset.get_data_info(idx)['img'], key)


@pytest.mark.parametrize('name, key', [('cifar100', AMKD),
                                       ('digits', CROP)])
def test_dataloader_workers_open_the_bank(name, key, make_cifar, tmp_path):
    kwargs = ({} if name == 'digits' else dict(
        data_root=str(make_cifar('cifar100', num_per_class=1))))
    dataset, _ = bank_dataset(name, 'mmrazor', tmp_path, key, **kwargs)
    loader = dict(
        dataset=dataset,
        batch_size=8,
        num_workers=1,
        persistent_workers=False,
        sampler=dict(type='DefaultSampler', shuffle=False))
    with DefaultScope.overwrite_default_scope('mmrazor'):
        batch = next(iter(Runner.build_dataloader(loader, seed=0)))
    assert len(batch['data_samples']) == 8
    for inputs, sample in zip(batch['inputs'], batch['data_samples']):
        check_packed(inputs, sample,
                     dataset.get_data_info(sample.sample_idx)['img'], key)
        # How an algorithm turns the packed HWC array into a CHW tensor.
        assert PackInputs.format_input(
            sample.boundary_img).shape == inputs.shape
