# Copyright (c) amkd-mmrazor contributors.
"""Fashion-MNIST as a user gets it: the dataset, the stratified subset, the
configs, the bank on 2-D grey images, and one AMKD run through the tools,
all on tiny IDX files in the genuine format (``conftest.py``)."""
import collections
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import fashion_mnist_images, fashion_mnist_labels
from helpers import REPO, assert_ok, assert_user_error, run
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import DefaultScope
from mmpretrain.datasets import FashionMNIST
from mmpretrain.registry import DATASETS

from amkd_plugin.bank import BoundaryBankFile, add_bank_loader
from amkd_plugin.bank.bank_file import decode, encode
from amkd_plugin.datasets import OfflineFashionMNIST, stratified_indices
from amkd_plugin.utils import UserInputError, UserValueError
from amkd_plugin.utils.fragments import merge_fragments

DATASET_CFG = REPO / 'configs/_base_/datasets/fashion_mnist.py'
LOWDATA_CFG = REPO / 'configs/_base_/datasets/fashion_mnist_lowdata.py'
PAIR = 'resnet20_resnet8_fashion_mnist_lowdata'


def test_splits_load_their_own_files(fashion_mnist_root):
    train = OfflineFashionMNIST(data_root=str(fashion_mnist_root))
    test = OfflineFashionMNIST(data_root=str(fashion_mnist_root),
                               split='test')
    assert (len(train), len(test)) == (60, 20)
    np.testing.assert_array_equal(test.get_gt_labels(),
                                  fashion_mnist_labels(2))
    np.testing.assert_array_equal(test.get_data_info(3)['img'],
                                  fashion_mnist_images(
                                      fashion_mnist_labels(2), 1)[3])
    assert test.get_data_info(0)['img'].shape == (28, 28)
    assert test.CLASSES[0] == 'T-shirt/top'
    # The trap this class closes: MMPretrain 1.2.0 serves the training
    # images for split='test' unless test_mode is set too.
    stock = FashionMNIST(data_root=str(fashion_mnist_root), split='test',
                         download=False)
    assert len(stock) == 60


def test_missing_files_say_how_to_get_them(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        OfflineFashionMNIST(data_root=str(tmp_path), split='test')
    message = str(info.value)
    assert 'bash scripts/get_data.sh fashion-mnist' in message
    assert 't10k-images-idx3-ubyte' in message and '\n' not in message


@pytest.mark.parametrize('damage, expected', [
    ('truncated', 'bytes where its header promises'),
    ('garbled', 'not its header'),
    ('counts', 'has 20 images but 19 labels for the test split'),
])
def test_damaged_files_are_named_with_the_fix(damage, expected,
                                              make_fashion_mnist):
    root = make_fashion_mnist(num_per_class=2)
    images = root / 't10k-images-idx3-ubyte'
    labels = root / 't10k-labels-idx1-ubyte'
    if damage == 'truncated':
        images.write_bytes(images.read_bytes()[:-100])
    elif damage == 'garbled':
        images.write_bytes(b'\x00' * 64 + images.read_bytes()[64:])
    else:  # a header that agrees with a file one label short
        data = labels.read_bytes()
        labels.write_bytes(data[:4] + (19).to_bytes(4, 'big') + data[8:-1])
    with pytest.raises(UserInputError) as info:
        OfflineFashionMNIST(data_root=str(root), split='test')
    message = str(info.value)
    assert expected in message and '\n' not in message
    assert 'bash scripts/get_data.sh fashion-mnist' in message
    if damage != 'counts':
        assert str(images) in message


def test_stratified_indices_keep_every_class_in_proportion():
    labels = np.repeat(np.arange(4), [100, 50, 20, 3])
    kept = stratified_indices(labels, 0.1, seed=0)
    assert collections.Counter(labels[kept].tolist()) == {
        0: 10, 1: 5, 2: 2, 3: 1}
    assert (np.diff(kept) > 0).all()
    np.testing.assert_array_equal(kept, stratified_indices(labels, 0.1, 0))
    assert not np.array_equal(kept, stratified_indices(labels, 0.1, 1))
    np.testing.assert_array_equal(stratified_indices(labels, 1, 0),
                                  np.arange(len(labels)))
    for bad in (0, 1.5):
        with pytest.raises(UserValueError, match='fraction'):
            stratified_indices(labels, bad, 0)


def build_loader_dataset(cfg_path: Path, loader: str, data_root: Path,
                         **changes):
    cfg = Config.fromfile(str(cfg_path))
    dataset = cfg[loader].dataset
    inner = dataset.get('dataset', dataset)
    inner.data_root = str(data_root)
    dataset.update(changes)
    with DefaultScope.overwrite_default_scope('mmrazor'):
        return DATASETS.build(dataset)


def test_configs_build_and_subset_is_stratified(fashion_mnist_root):
    test = build_loader_dataset(DATASET_CFG, 'test_dataloader',
                                fashion_mnist_root)
    assert len(test) == 20
    assert test[0]['inputs'].shape == (1, 28, 28)
    subset = build_loader_dataset(LOWDATA_CFG, 'train_dataloader',
                                  fashion_mnist_root, fraction=0.5)
    # Still the dataset class, with its pipeline; half of every class.
    assert isinstance(subset, OfflineFashionMNIST)
    assert collections.Counter(subset.get_gt_labels().tolist()) == {
        c: 3 for c in range(10)}
    again = build_loader_dataset(LOWDATA_CFG, 'train_dataloader',
                                 fashion_mnist_root, fraction=0.5)
    np.testing.assert_array_equal(
        np.stack([subset.get_data_info(i)['img'] for i in range(30)]),
        np.stack([again.get_data_info(i)['img'] for i in range(30)]))
    assert [subset.get_data_info(i)['sample_idx'] for i in range(3)] == [
        0, 1, 2]
    packed = subset[0]
    assert packed['inputs'].shape == (1, 28, 28)


def shapes(model_cfg: dict) -> dict:
    """Parameter and buffer shapes of a network config."""
    from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(model_cfg)
    return {name: tuple(value.shape)
            for name, value in model.state_dict().items()}


@pytest.mark.parametrize('pair', [
    PAIR, 'resnet20_mobilenetv2_fashion_mnist_lowdata',
    'wrn_16_2_resnet8_fashion_mnist_lowdata'
])
def test_a_pairs_kd_configs_distil_its_networks(pair):
    """Stock KD and function-matching KD write the networks out in full;
    they must be the AMKD pair's teacher and student, or the teacher's
    checkpoint would not load and the rows would compare other networks."""
    amkd = Config.fromfile(REPO / f'configs/amkd/{pair}.py').model
    teacher = shapes(Config.fromfile(REPO / amkd.teacher.cfg_path).model)
    student = shapes(
        Config.fromfile(REPO / amkd.architecture.cfg_path).model)
    for kd in (f'{pair}.py', f'{pair}_fm.py'):
        model = Config.fromfile(REPO / 'configs/kd' / kd).model
        assert shapes(model.teacher) == teacher, kd
        assert shapes(model.architecture) == student, kd
        assert model.teacher_ckpt == amkd.teacher_ckpt, kd


@pytest.mark.parametrize('config', [
    f'configs/amkd/{PAIR}.py', f'configs/kd/{PAIR}.py',
    f'configs/kd/{PAIR}_fm.py', f'configs/students/{PAIR}.py',
    'configs/amkd/resnet20_mobilenetv2_fashion_mnist_lowdata.py',
    'configs/amkd/wrn_16_2_resnet8_fashion_mnist_lowdata.py'
])
def test_a_pair_trains_the_benchmarks_converged_schedule(config):
    """A user's run of a pair is the benchmark's run at its converged
    length but for validating on the way; ``schedule/step_15e.py`` gives
    back the recipe of the 15-epoch tables."""
    own = Config.fromfile(REPO / config)
    benchmark = merge_fragments(
        str(REPO / config),
        [str(REPO / 'configs/experiments/schedule/cosine.py')])
    assert own.train_cfg.max_epochs == 240
    assert own.train_cfg.val_interval < 240 < benchmark.train_cfg.val_interval
    own.train_cfg.val_interval = benchmark.train_cfg.val_interval
    assert own.to_dict() == benchmark.to_dict()

    step = merge_fragments(
        str(REPO / config),
        [str(REPO / 'configs/experiments/schedule/step_15e.py')])
    assert step.param_scheduler == dict(
        type='MultiStepLR', by_epoch=True, milestones=[9, 12], gamma=0.1)
    assert step.train_cfg == dict(by_epoch=True, max_epochs=15,
                                  val_interval=5)


def test_bank_pipeline_takes_grey_images(tmp_path):
    """A 2-D grey ``img`` (MMPretrain's MNIST family) against a bank of
    (H, W, 1) images: the pipeline keeps it as the bank's (H, W, 1) clean
    image, and the banked sample comes out as stored."""
    clean = np.full((2, 28, 28, 1), 7, np.uint8)
    banked = np.random.default_rng(0).uniform(0, 255, (2, 1, 28, 28, 1))
    delta, scale = encode(banked.astype(np.float32), clean[:, None])
    bank = BoundaryBankFile.create(str(tmp_path / 'bank'), 2, 1, (28, 28, 1),
                                   10)
    bank.write(np.arange(2),
               delta=delta,
               scale=scale,
               clean=clean,
               logits=np.zeros((2, 1, 10), np.float32),
               targets=np.full((2, 1), 3),
               weights=np.ones((2, 1), np.float32),
               correct=np.ones(2, bool),
               reached=np.ones((2, 1), bool),
               steps=np.ones((2, 1), np.int16))
    path = bank.commit().path
    cfg = Config.fromfile(str(DATASET_CFG))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        pipeline = Compose(cfg.train_pipeline)
    add_bank_loader(pipeline).bind(path)
    img = np.full((28, 28), 7, np.uint8)
    packed = pipeline(dict(img=img, sample_idx=1, gt_label=2))
    assert packed['inputs'].shape == (1, 28, 28)
    kept = packed['data_samples'].boundary_clean
    np.testing.assert_array_equal(kept, clean[1])
    read = BoundaryBankFile.open(path).read(np.array([1]), np.array([0]),
                                            kept[None])
    np.testing.assert_array_equal(read['images'][0],
                                  decode(clean[1], delta[1, 0], scale[1, 0]))
    # Each value within half a level of the attack's (the format's bound).
    assert np.abs(read['images'][0] - banked[1, 0]).max() <= (
        scale[1, 0] / 2 * (1 + 1e-5))
    with pytest.raises(UserValueError, match=r'\(27, 28, 1\)'):
        pipeline(dict(img=np.zeros((27, 28), np.uint8), sample_idx=0,
                      gt_label=0))


@pytest.mark.skipif(not os.path.isdir('/usr/share/datasets/fashion-mnist'),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_get_data_puts_checked_files(tmp_path):
    result = subprocess.run(
        ['bash', 'scripts/get_data.sh', 'fashion-mnist', str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert 'train 60000 images, 6000 per class: ok' in result.stdout
    assert 't10k 10000 images, 1000 per class: ok' in result.stdout
    assert len(OfflineFashionMNIST(data_root=str(tmp_path),
                                   split='test')) == 10000


def test_get_data_refuses_files_that_are_not_the_release(
        make_fashion_mnist, tmp_path):
    """Files of the right format and counts but other content (the tiny
    copy here; a tampered one elsewhere) fail the release's SHA-256."""
    source = make_fashion_mnist(num_per_class=1)
    package = tmp_path / 'package'
    package.mkdir()
    for path in source.iterdir():
        (package / f'{path.name}.gz').write_bytes(
            gzip.compress(path.read_bytes()))
    dest = tmp_path / 'data'
    result = run(['bash', 'scripts/get_data.sh', 'fashion-mnist', dest],
                 env=dict(FASHION_MNIST_PACKAGE=str(package)))
    assert_user_error(result, 'is not the Fashion-MNIST release',
                      'run this script again')
    refused = result.stderr.split()[1]
    assert not Path(refused).exists()


@pytest.mark.slow
def test_amkd_trains_and_tests_on_fashion_mnist(fashion_mnist_root, tmp_path):
    """The teacher, one AMKD epoch with its bank built, then tools/test.py
    --fidelity: the product path of docs/results.md on tiny files."""
    data = [f'{loader}_dataloader.dataset.data_root={fashion_mnist_root}'
            for loader in ('val', 'test')]
    teacher_dir = tmp_path / 'teacher'
    assert_ok(run([
        sys.executable, 'tools/train.py',
        'configs/teachers/resnet20_fashion_mnist.py', '--work-dir',
        teacher_dir, '--cfg-options', 'train_dataloader.batch_size=8',

        f'train_dataloader.dataset.data_root={fashion_mnist_root}', *data
    ]))
    ckpt = teacher_dir / 'epoch_6.pth'
    student_dir = tmp_path / 'amkd'
    options = [f'model.teacher_ckpt={ckpt}', *data]
    trained = run([
        sys.executable, 'tools/train.py', f'configs/amkd/{PAIR}.py',
        '--work-dir', student_dir, '--cfg-options', 'train_cfg.max_epochs=1',
        'train_dataloader.batch_size=16', 'train_dataloader.dataset.'
        'fraction=0.5', 'train_dataloader.dataset.dataset.data_root='
        f'{fashion_mnist_root}', *options
    ])
    assert_ok(trained)
    assert 'Boundary bank: building' in trained.output
    assert 'as stored (6-bit change)' in trained.output
    banks = list((student_dir / 'boundary_bank').iterdir())
    assert len(banks) == 1
    # 28 * 28 grey values of 6 bits: 588 bytes an image.
    assert BoundaryBankFile.open(str(banks[0]))['delta'].shape == (30, 1,
                                                                   588)
    out = tmp_path / 'metrics.json'
    tested = run([
        sys.executable, 'tools/test.py', f'configs/amkd/{PAIR}.py',
        student_dir / 'epoch_1.pth', '--fidelity-images', '20', '--out', out,
        '--cfg-options', *options
    ])
    assert_ok(tested)
    metrics = json.loads(out.read_text())
    assert 0 <= metrics['accuracy/top1'] <= 100
    # A teacher of 60 tiny images may leave fidelity nothing to measure;
    # the metrics are there all the same.
    assert 0 <= metrics['fidelity/images'] <= 20
    assert 0 <= metrics['fidelity/reached'] <= 100


@pytest.mark.slow
def test_train_without_data_stops_with_one_line(tmp_path):
    result = run([
        sys.executable, 'tools/train.py',
        'configs/teachers/resnet20_fashion_mnist.py', '--work-dir', tmp_path,
        '--cfg-options', f'train_dataloader.dataset.data_root={tmp_path}'
    ])
    assert_user_error(result, 'Fashion-MNIST',
                      'bash scripts/get_data.sh fashion-mnist')
