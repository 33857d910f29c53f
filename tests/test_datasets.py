# Copyright (c) amkd-mmrazor contributors.
"""Datasets and dataset configs on tiny on-disk copies, fully offline."""
import pickle
import urllib.request
from collections import Counter
from pathlib import Path

import mmpretrain.datasets.cifar as mmpretrain_cifar
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import METRICS, DefaultScope
from mmengine.runner import Runner
from mmpretrain.datasets.categories import (CIFAR10_CATEGORIES,
                                            CIFAR100_CATEGORIES)
from mmpretrain.registry import DATASETS

from amkd_plugin.datasets import (OfflineCIFAR10, OfflineCIFAR100,
                                  SklearnDigits, TinyImageNet)

CONFIG_DIR = Path(__file__).parents[1] / 'configs' / '_base_' / 'datasets'


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Fail any test that tries to download."""

    def refuse(*args, **kwargs):
        raise AssertionError('network access attempted')

    monkeypatch.setattr(mmpretrain_cifar, 'download_and_extract_archive',
                        refuse)
    monkeypatch.setattr(urllib.request, 'urlopen', refuse)


def dataset_cfg(name: str, split_key: str = 'train_dataloader', **override):
    """The dataset dict of a dataloader in a dataset config."""
    cfg = Config.fromfile(str(CONFIG_DIR / f'{name}.py'))
    dataset = cfg[split_key].dataset
    dataset.update(override)
    return dataset


def build_loader(name: str, split_key: str, scope: str, **override):
    """Build a single-process dataloader of a config in ``scope``."""
    cfg = Config.fromfile(str(CONFIG_DIR / f'{name}.py'))
    loader = cfg[split_key]
    loader.dataset.update(override)
    loader.update(num_workers=0, persistent_workers=False, batch_size=4)
    with DefaultScope.overwrite_default_scope(scope):
        return Runner.build_dataloader(loader)


@pytest.mark.parametrize('name, classes, folder', [
    ('cifar100', CIFAR100_CATEGORIES, 'cifar-100-python'),
    ('cifar10', CIFAR10_CATEGORIES, 'cifar-10-batches-py'),
])
def test_cifar_config_loads_tiny_pickles(name, classes, folder, make_cifar):
    root = make_cifar(name, num_per_class=3, num_test_per_class=2)
    train = DATASETS.build(dataset_cfg(name, data_root=str(root)))
    test = DATASETS.build(
        dataset_cfg(name, 'val_dataloader', data_root=str(root)))

    assert isinstance(train, (OfflineCIFAR10, OfflineCIFAR100))
    assert (len(train), len(test)) == (3 * len(classes), 2 * len(classes))
    assert tuple(train.metainfo['classes']) == tuple(classes)
    assert Counter(train.get_gt_labels().tolist()) == {
        label: 3
        for label in range(len(classes))
    }
    for i in (0, len(train) - 1):
        info = train.get_data_info(i)
        img = info['img']
        assert img.shape == (32, 32, 3) and img.dtype == np.uint8
        # The fixture writes red = label and green = 8 * row.
        assert (img[..., 0] == info['gt_label']).all()
        assert (img[:, 0, 1] == 8 * np.arange(32)).all()
    packed = train[0]
    assert tuple(packed['inputs'].shape) == (3, 32, 32)
    assert packed['data_samples'].gt_label.item() in range(len(classes))


def test_cifar_classes_come_from_meta_file(make_cifar):
    root = make_cifar('cifar10', num_per_class=1)
    meta_path = root / 'cifar-10-batches-py' / 'batches.meta'
    meta = pickle.loads(meta_path.read_bytes())
    meta['label_names'] = [f'c{i}' for i in range(10)]
    meta_path.write_bytes(pickle.dumps(meta))

    dataset = OfflineCIFAR10(data_root=str(root), split='test')
    assert list(dataset.metainfo['classes']) == meta['label_names']


@pytest.mark.parametrize('scope', ['mmpretrain', 'mmrazor'])
def test_cifar100_dataloader_builds_in_both_scopes(scope, cifar100_root):
    loader = build_loader(
        'cifar100', 'train_dataloader', scope, data_root=str(cifar100_root))
    batch = next(iter(loader))
    assert [tuple(x.shape) for x in batch['inputs']] == [(3, 32, 32)] * 4
    assert len(loader.dataset) == 200
    cfg = Config.fromfile(str(CONFIG_DIR / 'cifar100.py'))
    with DefaultScope.overwrite_default_scope(scope):
        metric = METRICS.build(cfg.val_evaluator)
    assert metric.topk == (1, 5)


@pytest.mark.parametrize('cls, url', [
    (OfflineCIFAR100, 'https://www.cs.toronto.edu/~kriz/'
     'cifar-100-python.tar.gz'),
    (OfflineCIFAR10, 'https://www.cs.toronto.edu/~kriz/'
     'cifar-10-python.tar.gz'),
])
def test_cifar_missing_files_clear_error(cls, url, tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        cls(data_root=str(tmp_path / 'nowhere'), split='train')
    message = str(error.value)
    assert cls.base_folder in message and url in message
    assert 'download=True' in message and 'data_root' in message
    assert cls.train_list[0][0] in message


def test_cifar_partial_files_name_the_missing_one(make_cifar):
    root = make_cifar('cifar100', num_per_class=1)
    (root / 'cifar-100-python' / 'test').unlink()
    with pytest.raises(FileNotFoundError, match=r"missing \['test'\]"):
        OfflineCIFAR100(data_root=str(root), split='train')


def test_cifar_md5_check_is_opt_in(cifar100_root):
    with pytest.raises(RuntimeError, match='md5 checksum mismatch'):
        OfflineCIFAR100(data_root=str(cifar100_root), check_md5=True)


def test_cifar_download_only_when_asked(monkeypatch, make_cifar, tmp_path):
    calls = []

    def fake_download(url, root, filename, md5):
        calls.append(url)
        make_cifar('cifar100', num_per_class=1, root=Path(root))

    monkeypatch.setattr(mmpretrain_cifar, 'download_and_extract_archive',
                        fake_download)
    dataset = OfflineCIFAR100(
        data_root=str(tmp_path), split='test', download=True)
    assert calls == [OfflineCIFAR100.url] and len(dataset) == 100


def test_tiny_imagenet_both_splits(make_tiny_imagenet):
    root = make_tiny_imagenet(
        num_classes=4, num_train_per_class=3, num_val_per_class=2)
    train = DATASETS.build(
        dataset_cfg('tiny_imagenet', data_root=str(root)))
    val = DATASETS.build(
        dataset_cfg('tiny_imagenet', 'val_dataloader', data_root=str(root)))

    wnids = (root / 'wnids.txt').read_text().split()
    assert train.metainfo['classes'] == ('Egyptian cat', 'reel',
                                         'volleyball', 'rocking chair')
    assert train.metainfo['wnids'] == tuple(wnids)
    assert len(train) == 12 and len(val) == 8
    for info in map(train.get_data_info, range(len(train))):
        assert Path(info['img_path']).parent.parent.name == \
            wnids[info['gt_label']]
    annotations = dict(
        line.split('\t')[:2]
        for line in (root / 'val' / 'val_annotations.txt').read_text()
        .splitlines())
    for info in map(val.get_data_info, range(len(val))):
        assert wnids[info['gt_label']] == \
            annotations[Path(info['img_path']).name]
    for dataset in (train, val):
        assert tuple(dataset[0]['inputs'].shape) == (3, 64, 64)


def test_tiny_imagenet_dataloader_builds_in_mmrazor_scope(
        tiny_imagenet_root):
    loader = build_loader(
        'tiny_imagenet',
        'val_dataloader',
        'mmrazor',
        data_root=str(tiny_imagenet_root))
    assert tuple(next(iter(loader))['inputs'][0].shape) == (3, 64, 64)


def test_tiny_imagenet_missing_annotations_clear_error(make_tiny_imagenet):
    root = make_tiny_imagenet(num_classes=2)
    missing = root / 'val' / 'val_annotations.txt'
    missing.unlink()
    with pytest.raises(FileNotFoundError) as error:
        TinyImageNet(data_root=str(root), split='val')
    message = str(error.value)
    assert str(missing) in message
    for part in ('wnids.txt', 'words.txt', 'train/<wnid>/images/',
                 'val_annotations.txt'):
        assert part in message


def test_digits_split_is_stratified_and_deterministic():
    train = SklearnDigits(split='train')
    test = SklearnDigits(split='test')
    train_labels = train.get_gt_labels()
    test_labels = test.get_gt_labels()

    assert len(train) + len(test) == 1797
    assert len(test) == pytest.approx(0.25 * 1797, abs=1)
    assert train.metainfo['classes'] == tuple('0123456789')
    totals = np.bincount(np.concatenate([train_labels, test_labels]))
    test_fraction = np.bincount(test_labels, minlength=10) / totals
    assert np.all(np.abs(test_fraction - 0.25) < 0.02)

    img = train.get_data_info(0)['img']
    assert img.shape == (32, 32, 3) and img.dtype == np.uint8
    assert img.max() > 200 and img.min() == 0

    again = SklearnDigits(split='train')
    assert np.array_equal(again.get_gt_labels(), train_labels)
    assert np.array_equal(again.get_data_info(5)['img'],
                          train.get_data_info(5)['img'])
    other = SklearnDigits(split='train', seed=1)
    assert not np.array_equal(other.get_gt_labels(), train_labels)


def test_digits_train_fraction_is_a_stratified_subset_of_the_train_split():
    full = SklearnDigits(split='train')
    low = SklearnDigits(split='train', train_fraction=0.2)
    assert len(low) == pytest.approx(0.2 * len(full), abs=1)
    counts = np.bincount(low.get_gt_labels(), minlength=10)
    assert counts.max() - counts.min() <= 1  # stratified: 26-27 a class
    # A subset of the training images, none of the held-out ones.
    kept = {full.get_data_info(i)['img'].tobytes() for i in range(len(full))}
    assert all(low.get_data_info(i)['img'].tobytes() in kept
               for i in range(len(low)))
    again = SklearnDigits(split='train', train_fraction=0.2)
    assert np.array_equal(again.get_gt_labels(), low.get_gt_labels())
    # The held-out split stays whole.
    assert len(SklearnDigits(split='test', train_fraction=0.2)) == len(
        SklearnDigits(split='test'))
    with pytest.raises(ValueError, match=r'train_fraction must be in'):
        SklearnDigits(train_fraction=0.)


def test_digits_config_stats_and_pipeline():
    cfg = Config.fromfile(str(CONFIG_DIR / 'digits.py'))
    assert not any('RandomFlip' in t['type'] for t in cfg.train_pipeline)
    loader = build_loader('digits', 'train_dataloader', 'mmrazor')
    pixels = np.stack([
        loader.dataset.get_data_info(i)['img']
        for i in range(len(loader.dataset))
    ]).astype(np.float64)
    assert cfg.data_preprocessor.mean == pytest.approx(
        [pixels.mean()] * 3, abs=1e-3)
    assert cfg.data_preprocessor.std == pytest.approx(
        [pixels.std()] * 3, abs=1e-3)
    batch = next(iter(loader))
    assert [tuple(x.shape) for x in batch['inputs']] == [(3, 32, 32)] * 4
