# Copyright (c) amkd-mmrazor contributors.
"""Datasets and dataset configs on tiny on-disk copies, fully offline."""
import pickle
import sys
import urllib.request
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import METRICS, DefaultScope
from mmengine.runner import Runner
from mmpretrain.datasets.categories import (CIFAR10_CATEGORIES,
                                            CIFAR100_CATEGORIES)
from helpers import assert_user_error, run
from mmpretrain.registry import DATASETS
from torch.utils.data import DataLoader

import amkd_plugin.datasets.cifar as offline_cifar
from amkd_plugin.datasets import (OfflineCIFAR10, OfflineCIFAR100,
                                  SklearnDigits, TinyImageNet)
from amkd_plugin.utils import UserInputError
from amkd_plugin.utils.cli import own_message
from amkd_plugin.utils.safe_pickle import UnsafePickleError, load_data_pickle

CONFIG_DIR = Path(__file__).parents[1] / 'configs' / '_base_' / 'datasets'


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Fail any test that tries to download."""

    def refuse(*args, **kwargs):
        raise AssertionError('network access attempted')

    monkeypatch.setattr(offline_cifar, 'download_and_extract_archive',
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

    monkeypatch.setattr(offline_cifar, 'download_and_extract_archive',
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


def test_a_damaged_tiny_imagenet_image_is_named_with_the_fix(
        make_tiny_imagenet):
    root = make_tiny_imagenet(num_classes=2)
    dataset = DATASETS.build(
        dataset_cfg('tiny_imagenet', data_root=str(root)))
    path = Path(dataset.get_data_info(1)['img_path'])
    path.write_bytes(path.read_bytes()[:40])  # a truncated JPEG
    dataset[0]  # the others still load
    with pytest.raises(UserInputError) as error:
        dataset[1]
    assert str(error.value) == (
        f'{path} is damaged: it does not decode as an image. Extract '
        'tiny-imagenet-200.zip into data_root again.')


def test_the_one_line_of_an_error_raised_in_a_loader_worker(
        make_tiny_imagenet):
    """A worker's error reaches the tool with the worker's traceback in
    its message; the tool prints the original line alone."""
    root = make_tiny_imagenet(num_classes=2)
    dataset = DATASETS.build(
        dataset_cfg('tiny_imagenet', data_root=str(root)))
    path = Path(dataset.get_data_info(0)['img_path'])
    path.write_bytes(b'not an image')
    loader = DataLoader(dataset, batch_size=1, num_workers=1,
                        collate_fn=lambda batch: batch)
    with pytest.raises(UserInputError) as error:
        next(iter(loader))
    assert 'Original Traceback' in str(error.value)
    assert own_message(error.value) == (
        f'{path} is damaged: it does not decode as an image. Extract '
        'tiny-imagenet-200.zip into data_root again.')


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


class _RunsCode:
    """Pickles as a call of os.system: what a tampered data file holds."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os
        return os.system, (f'touch {self.marker}', )


def tampered_cifar100(make_cifar, tmp_path) -> Path:
    """A tiny CIFAR-100 whose train file, when unpickled, runs a command."""
    root = make_cifar('cifar100', num_per_class=1, root=tmp_path / 'data')
    train = root / 'cifar-100-python' / 'train'
    entry = pickle.loads(train.read_bytes())
    entry['batch_label'] = _RunsCode(tmp_path / 'code_ran')
    train.write_bytes(pickle.dumps(entry))
    return root


def test_a_cifar_pickle_that_carries_code_is_refused_unrun(
        make_cifar, tmp_path):
    root = tampered_cifar100(make_cifar, tmp_path)
    train = root / 'cifar-100-python' / 'train'
    with pytest.raises(UnsafePickleError) as error:
        OfflineCIFAR100(data_root=str(root), split='train')
    message = str(error.value)
    assert str(train) in message and 'posix.system' in message
    assert 'nothing of it was run' in message
    assert 'cifar-100-python.tar.gz' in message
    assert not (tmp_path / 'code_ran').exists()
    # The stock reader would have run it: the file really carries code.
    pickle.loads(train.read_bytes())
    assert (tmp_path / 'code_ran').exists()


def test_numpy_1_and_python_2_cifar_pickles_load():
    """The official files: Python 2 strings (latin-1) and numpy arrays
    pickled under numpy 1's module name, numpy.core.multiarray."""
    array = np.arange(6, dtype=np.uint8).reshape(2, 3)
    data = pickle.dumps(dict(data=array, labels=[1, 2]), protocol=2)
    data = data.replace(b'numpy._core.multiarray', b'numpy.core.multiarray')
    assert b'cnumpy.core.multiarray\n_reconstruct' in data
    loaded = load_data_pickle(data, 'batch', 'fix')
    assert np.array_equal(loaded['data'], array)
    assert loaded['labels'] == [1, 2]
    # Python 2's str is read as latin-1 text, as MMPretrain reads it.
    py2_text = b'\x80\x02U\x04caf\xe9q\x00.'  # SHORT_BINSTRING 'caf\xe9'
    assert load_data_pickle(py2_text, 'meta', 'fix') == 'caf\xe9'


@pytest.mark.parametrize('damage', ['truncated', 'not a batch'])
def test_a_damaged_cifar_file_is_named_with_the_fix(damage, make_cifar,
                                                    tmp_path):
    root = make_cifar('cifar10', num_per_class=1, root=tmp_path)
    batch = root / 'cifar-10-batches-py' / 'data_batch_3'
    if damage == 'truncated':
        batch.write_bytes(batch.read_bytes()[:200])
        expected = 'is damaged'
    else:
        batch.write_bytes(pickle.dumps(dict(data=np.zeros((2, 5)),
                                            labels=[0, 1])))
        expected = 'is not a CIFAR batch'
    with pytest.raises(UserInputError) as error:
        OfflineCIFAR10(data_root=str(root), split='train')
    message = str(error.value)
    assert str(batch) in message and expected in message
    assert 'cifar-10-python.tar.gz' in message and '\n' not in message


def test_bytes_only_in_latin_1():
    """Protocol 2 writes bytes as _codecs.encode(text, 'latin1'); another
    codec is refused."""
    assert load_data_pickle(pickle.dumps(b'\x00\xff', protocol=2), 'f',
                            'fix') == b'\x00\xff'
    rot13 = pickle.dumps(b'x', protocol=2).replace(b'latin1', b'rot13_')
    with pytest.raises(UserInputError, match="f is damaged.*'rot13_'"):
        load_data_pickle(rot13, 'f', 'fix')


@pytest.mark.slow
def test_training_on_a_tampered_cifar_never_runs_its_code(
        make_cifar, tmp_path):
    """The tried attack: tools/train.py on CIFAR-100 files whose pickle
    calls os.system stops with one line, and the command never ran."""
    root = tampered_cifar100(make_cifar, tmp_path)
    result = run([
        sys.executable, 'tools/train.py',
        'configs/teachers/resnet56_cifar100.py', '--work-dir',
        tmp_path / 'work', '--cfg-options', 'train_cfg.max_epochs=1',
        *[f'{split}_dataloader.dataset.data_root={root}'
          for split in ('train', 'val', 'test')]
    ])
    assert_user_error(result, 'cifar-100-python/train asks to call',
                      'nothing of it was run')
    assert not (tmp_path / 'code_ran').exists()
