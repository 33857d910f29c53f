# Copyright (c) amkd-mmrazor contributors.
"""Shared fixtures that write tiny datasets in their genuine on-disk layout.

Factory fixtures are session scoped so tests of any scope can use them;
each call writes a fresh copy into its own temporary folder unless a
``root`` is given.

* ``make_cifar(variant='cifar100', num_per_class=2, num_test_per_class=None,
  root=None) -> Path``: CIFAR in the official python-pickle layout.
* ``make_tiny_imagenet(num_classes=3, num_train_per_class=2,
  num_val_per_class=2, root=None) -> Path``: Tiny ImageNet tree with JPEGs.
* ``make_fashion_mnist(num_per_class=6, num_test_per_class=2, root=None)
  -> Path``: Fashion-MNIST's four IDX files, gzipped and extracted.
* ``cifar100_root``, ``cifar10_root``, ``tiny_imagenet_root``,
  ``fashion_mnist_root``: one default copy each, shared by the session
  (treat as read-only).

Images are learnable on purpose: in CIFAR images the red plane equals the
label, in Tiny ImageNet images the colour depends on the class, in
Fashion-MNIST images the brightness does.
"""
import gzip
import os
import pickle
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import pytest
from mmpretrain.datasets.categories import (CIFAR10_CATEGORIES,
                                            CIFAR100_CATEGORIES)
from PIL import Image

CIFAR_SIZE = 32
TINY_IMAGENET_SIZE = 64
# (wnid, words.txt text) of real Tiny ImageNet classes; more are synthetic.
TINY_IMAGENET_WORDS = [
    ('n02124075', 'Egyptian cat'),
    ('n04067472', 'reel'),
    ('n04540053', 'volleyball'),
    ('n04099969', 'rocking chair, rocker'),
    ('n07749582', 'lemon'),
    ('n01641577', 'bullfrog, Rana catesbeiana'),
    ('n02802426', 'basketball'),
    ('n09246464', 'cliff, drop, drop-off'),
    ('n07920052', 'espresso'),
    ('n03970156', "plunger, plumber's helper"),
]


def cifar_images(labels: np.ndarray, seed: int) -> np.ndarray:
    """Flattened CIFAR rows (1024 R, 1024 G, 1024 B bytes per image).

    Red is the label, green is ``8 * row`` (so HWC conversion can be
    checked) and blue is seeded noise.

    Args:
        labels (np.ndarray): Label of every image.
        seed (int): Seed of the blue noise.

    Returns:
        np.ndarray: ``(N, 3072)`` uint8 array.
    """
    num = len(labels)
    shape = (num, CIFAR_SIZE, CIFAR_SIZE)
    red = np.broadcast_to(labels[:, None, None], shape)
    green = np.broadcast_to(
        (8 * np.arange(CIFAR_SIZE))[None, :, None] % 256, shape)
    blue = np.random.default_rng(seed).integers(0, 256, shape)
    chw = np.stack([red, green, blue], axis=1).astype(np.uint8)
    return chw.reshape(num, -1)


def _dump(path: Path, obj: dict) -> None:
    with open(path, 'wb') as f:
        pickle.dump(obj, f)


def _cifar_batches(labels: np.ndarray, num_batches: int,
                   seed: int) -> List[Dict[str, np.ndarray]]:
    """Shuffle images like the official files and cut them into batches."""
    labels = np.random.default_rng(seed).permutation(labels)
    data = cifar_images(labels, seed)
    return [
        dict(labels=labels[i::num_batches], data=data[i::num_batches])
        for i in range(num_batches)
    ]


def _write_cifar10(folder: Path, labels: Dict[str, np.ndarray]) -> None:
    """Write ``data_batch_1..5``, ``test_batch`` and ``batches.meta``."""
    outputs = [(f'data_batch_{i + 1}', batch) for i, batch in enumerate(
        _cifar_batches(labels['train'], num_batches=5, seed=0))]
    outputs.append(
        ('test_batch', _cifar_batches(labels['test'], num_batches=1,
                                      seed=1)[0]))
    for name, batch in outputs:
        _dump(folder / name, {
            'batch_label': name,
            'labels': batch['labels'].tolist(),
            'data': batch['data'],
            'filenames': [f'{name}_{i}.png'
                          for i in range(len(batch['labels']))],
        })
    _dump(folder / 'batches.meta', {
        'num_cases_per_batch': len(outputs[0][1]['labels']),
        'label_names': list(CIFAR10_CATEGORIES),
        'num_vis': CIFAR_SIZE * CIFAR_SIZE * 3,
    })


def _write_cifar100(folder: Path, labels: Dict[str, np.ndarray]) -> None:
    """Write ``train``, ``test`` and ``meta``."""
    for seed, name in enumerate(('train', 'test')):
        batch = _cifar_batches(labels[name], num_batches=1, seed=seed)[0]
        _dump(folder / name, {
            'filenames': [f'{name}_{i}.png'
                          for i in range(len(batch['labels']))],
            'batch_label': f'{name} batch',
            'fine_labels': batch['labels'].tolist(),
            # Placeholder superclasses: fine // 5, not the official mapping.
            'coarse_labels': (batch['labels'] // 5).tolist(),
            'data': batch['data'],
        })
    _dump(folder / 'meta', {
        'fine_label_names': list(CIFAR100_CATEGORIES),
        'coarse_label_names': [f'superclass_{i}' for i in range(20)],
    })


CIFAR_VARIANTS = {
    'cifar10': ('cifar-10-batches-py', 10, _write_cifar10),
    'cifar100': ('cifar-100-python', 100, _write_cifar100),
}


def write_cifar(root: Path, variant: str, num_per_class: int,
                num_test_per_class: int) -> Path:
    """Write a tiny CIFAR-10/100 in the official python-pickle layout.

    Args:
        root (Path): The ``data_root`` to write into.
        variant (str): ``'cifar10'`` or ``'cifar100'``.
        num_per_class (int): Train images per class.
        num_test_per_class (int): Test images per class.

    Returns:
        Path: ``root``.
    """
    folder_name, num_classes, write = CIFAR_VARIANTS[variant]
    folder = root / folder_name
    folder.mkdir(parents=True, exist_ok=True)
    write(folder, {
        'train': np.repeat(np.arange(num_classes), num_per_class),
        'test': np.repeat(np.arange(num_classes), num_test_per_class),
    })
    return root


def _jpeg(path: Path, colour: np.ndarray, rng: np.random.Generator) -> None:
    """Write a 64x64 JPEG of ``colour`` plus mild noise."""
    noise = rng.integers(-20, 21, (TINY_IMAGENET_SIZE, TINY_IMAGENET_SIZE, 3))
    pixels = np.clip(colour + noise, 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, format='JPEG')


def write_tiny_imagenet(root: Path, num_classes: int,
                        num_train_per_class: int,
                        num_val_per_class: int) -> Path:
    """Write a tiny Tiny ImageNet in the layout of the original archive.

    ``words.txt`` also names a wnid outside ``wnids.txt``, as the real file
    covers all of WordNet. ``test/images`` holds one unlabeled image.

    Args:
        root (Path): The ``data_root`` (``tiny-imagenet-200``) to write.
        num_classes (int): Number of classes; the first 10 are real wnids.
        num_train_per_class (int): Train images per class.
        num_val_per_class (int): Val images per class.

    Returns:
        Path: ``root``.
    """
    words = TINY_IMAGENET_WORDS + [(f'n9{i:07d}', f'synthetic class {i}')
                                   for i in range(len(TINY_IMAGENET_WORDS),
                                                  num_classes + 1)]
    wnids = [wnid for wnid, _ in words[:num_classes]]
    rng = np.random.default_rng(0)
    colours = rng.integers(40, 216, (num_classes, 3))
    root.mkdir(parents=True, exist_ok=True)
    (root / 'wnids.txt').write_text(''.join(f'{w}\n' for w in wnids))
    (root / 'words.txt').write_text(''.join(f'{w}\t{t}\n' for w, t in words))
    for label, wnid in enumerate(wnids):
        images = root / 'train' / wnid / 'images'
        images.mkdir(parents=True)
        boxes = []
        for i in range(num_train_per_class):
            _jpeg(images / f'{wnid}_{i}.JPEG', colours[label], rng)
            boxes.append(f'{wnid}_{i}.JPEG\t0\t0\t63\t63\n')
        (root / 'train' / wnid / f'{wnid}_boxes.txt').write_text(
            ''.join(boxes))
    val_images = root / 'val' / 'images'
    val_images.mkdir(parents=True)
    val_labels = rng.permutation(
        np.repeat(np.arange(num_classes), num_val_per_class))
    lines = []
    for i, label in enumerate(val_labels):
        _jpeg(val_images / f'val_{i}.JPEG', colours[label], rng)
        lines.append(f'val_{i}.JPEG\t{wnids[label]}\t0\t0\t63\t63\n')
    (root / 'val' / 'val_annotations.txt').write_text(''.join(lines))
    test_images = root / 'test' / 'images'
    test_images.mkdir(parents=True)
    _jpeg(test_images / 'test_0.JPEG', colours[0], rng)
    return root


def fashion_mnist_labels(num_per_class: int) -> np.ndarray:
    """Labels 0..9, ``num_per_class`` each, interleaved."""
    return np.tile(np.arange(10, dtype=np.uint8), num_per_class)


def fashion_mnist_images(labels: np.ndarray, seed: int) -> np.ndarray:
    """``(N, 28, 28)`` uint8 images whose brightness follows the label."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 8, (len(labels), 28, 28))
    return (25 * labels[:, None, None] + noise).astype(np.uint8)


def write_fashion_mnist(root: Path, num_per_class: int,
                        num_test_per_class: int) -> Path:
    """Write Fashion-MNIST's IDX files (``train-images-idx3-ubyte`` ...),
    each also gzipped, as the official release and Debian ship them."""
    root.mkdir(parents=True, exist_ok=True)
    for split, count, seed in (('train', num_per_class, 0),
                               ('t10k', num_test_per_class, 1)):
        labels = fashion_mnist_labels(count)
        images = fashion_mnist_images(labels, seed)
        # IDX: magic (0, 0, type 0x08 = uint8, dims), big-endian sizes.
        files = {
            f'{split}-images-idx3-ubyte':
            bytes([0, 0, 8, 3]) + np.array(images.shape, '>u4').tobytes() +
            images.tobytes(),
            f'{split}-labels-idx1-ubyte':
            bytes([0, 0, 8, 1]) + np.array([len(labels)], '>u4').tobytes() +
            labels.tobytes(),
        }
        for name, content in files.items():
            (root / name).write_bytes(content)
            (root / f'{name}.gz').write_bytes(gzip.compress(content))
    return root


@pytest.fixture(scope='session')
def make_fashion_mnist(tmp_path_factory) -> Callable[..., Path]:
    """Factory writing a tiny Fashion-MNIST; see
    :func:`write_fashion_mnist`. Returns the ``data_root``."""

    def make(num_per_class: int = 6,
             num_test_per_class: int = 2,
             root: Optional[Path] = None) -> Path:
        root = Path(root or tmp_path_factory.mktemp('fashion_mnist'))
        return write_fashion_mnist(root, num_per_class, num_test_per_class)

    return make


@pytest.fixture(scope='session')
def fashion_mnist_root(make_fashion_mnist) -> Path:
    """A shared tiny Fashion-MNIST: 6 train and 2 test images per class."""
    return make_fashion_mnist()


@pytest.fixture(scope='session')
def make_cifar(tmp_path_factory) -> Callable[..., Path]:
    """Factory writing a tiny CIFAR; see :func:`write_cifar`.

    Call as ``make_cifar(variant='cifar100', num_per_class=2,
    num_test_per_class=None, root=None)``; ``num_test_per_class`` defaults
    to ``num_per_class`` and ``root`` to a new temporary folder. Returns
    the ``data_root``.
    """

    def make(variant: str = 'cifar100',
             num_per_class: int = 2,
             num_test_per_class: Optional[int] = None,
             root: Optional[Path] = None) -> Path:
        root = Path(root or tmp_path_factory.mktemp(variant))
        test_count = (num_per_class
                      if num_test_per_class is None else num_test_per_class)
        return write_cifar(root, variant, num_per_class, test_count)

    return make


@pytest.fixture(scope='session')
def make_tiny_imagenet(tmp_path_factory) -> Callable[..., Path]:
    """Factory writing a tiny Tiny ImageNet; see
    :func:`write_tiny_imagenet`.

    Call as ``make_tiny_imagenet(num_classes=3, num_train_per_class=2,
    num_val_per_class=2, root=None)``; ``root`` defaults to a new
    ``tiny-imagenet-200`` folder. Returns the ``data_root``.
    """

    def make(num_classes: int = 3,
             num_train_per_class: int = 2,
             num_val_per_class: int = 2,
             root: Optional[Path] = None) -> Path:
        root = Path(root or tmp_path_factory.mktemp('tiny_imagenet') /
                    'tiny-imagenet-200')
        return write_tiny_imagenet(root, num_classes, num_train_per_class,
                                   num_val_per_class)

    return make


@pytest.fixture(scope='session')
def cifar100_root(make_cifar) -> Path:
    """A shared tiny CIFAR-100: 2 train and 2 test images per class."""
    return make_cifar('cifar100')


@pytest.fixture(scope='session')
def cifar10_root(make_cifar) -> Path:
    """A shared tiny CIFAR-10: 2 train and 2 test images per class."""
    return make_cifar('cifar10')


@pytest.fixture(scope='session')
def tiny_imagenet_root(make_tiny_imagenet) -> Path:
    """A shared tiny Tiny ImageNet: 3 classes, 2 train and 2 val each."""
    return make_tiny_imagenet()


# --- AMKD unit-test fixtures (tests/test_boundary_attack.py, ...) ----------


@pytest.fixture(scope='module')
def in_repo_root():
    """Run a module from the repository root: ``cfg_path`` in the configs
    is relative to it."""
    previous = os.getcwd()
    os.chdir(Path(__file__).resolve().parents[1])
    yield
    os.chdir(previous)


@pytest.fixture(scope='module')
def single_torch_thread():
    """Run a module's tiny CPU models on one torch thread, then restore.

    Tiny models gain nothing from intra-op threads, and on a busy machine
    contended threads make them many times slower.
    """
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def mmrazor_scope():
    """Build from MMRazor's registries whatever scope an earlier test left.

    A Runner makes its ``default_scope`` the current one for the whole
    process; this restores the previous scopes afterwards.
    """
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmrazor'):
        yield


@pytest.fixture(scope='session')
def trained_digits_teacher(tmp_path_factory) -> Path:
    """A briefly trained digits teacher (configs/teachers/resnet20_digits.py):
    30 SGD steps, BN re-estimated, saved as ``{'state_dict': ...}``.

    About 75% of the held-out digits come out right, in a few seconds.
    """
    import copy

    import torch
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    from torch.nn.modules.batchnorm import _BatchNorm

    from amkd_plugin.datasets import SklearnDigits
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see single_torch_thread
    cfg = Config.fromfile(
        str(Path(__file__).parents[1] / 'configs/teachers/resnet20_digits.py'))
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg['data_preprocessor'] = cfg.data_preprocessor
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        torch.manual_seed(0)
        model = MODELS.build(model_cfg.to_dict())
        train = SklearnDigits(
            split='train', pipeline=[dict(type='mmpretrain.PackInputs')])
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.train()
    for _ in range(30):
        rows = torch.randperm(len(train), generator=generator)[:32]
        data = model.data_preprocessor(
            pseudo_collate([train[i] for i in rows.tolist()]), True)
        loss = model(data['inputs'], data['data_samples'], mode='loss')
        optimizer.zero_grad()
        loss['loss'].backward()
        optimizer.step()
    # The running statistics lag far behind 30 large steps: re-estimate
    # them as plain averages over 256 training images.
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.reset_running_stats()
            module.momentum = None
    with torch.no_grad():
        for start in range(0, 256, 64):
            batch = pseudo_collate(
                [train[i] for i in range(start, start + 64)])
            model(model.data_preprocessor(batch, False)['inputs'],
                  mode='tensor')
    path = tmp_path_factory.mktemp('digits_teacher') / 'teacher.pth'
    torch.save(dict(state_dict=model.state_dict()), path)
    torch.set_num_threads(threads)
    return path


# --- end of AMKD unit-test fixtures ----------------------------------------
