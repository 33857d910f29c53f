# Copyright (c) amkd-mmrazor contributors.
"""End to end through the real command line tools, on tiny on-disk data.

Every test runs ``tools/train.py``, ``tools/test.py`` or the ``dist_*.sh``
launchers in a subprocess from the repository root (``helpers.run``),
exactly as a user would, with the shipped configs shrunk through
``--cfg-options`` (two epochs at most, one CIFAR-100 image per class, no
dataloader workers).

The teacher trained in (a) is shared by the distillation tests through a
module-scoped fixture.
"""
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import List, Optional

import numpy as np
import pytest
import torch
from helpers import (REPO, assert_ok, assert_user_error, free_port, run,
                     tail)

import amkd_plugin  # noqa: F401  (weights-only loading of runner files)
from amkd_plugin.bank import BoundaryBankFile

pytestmark = pytest.mark.slow

TEACHER_CFG = 'configs/teachers/resnet56_cifar100.py'
TEACHER_CMD = f'python tools/train.py {TEACHER_CFG}'
# The flagship, trained with the online attack (ONLINE) unless a test is
# about its default, the boundary bank (BANK_CFG in (h)).
AMKD_CFG = 'configs/amkd/resnet56_resnet20_cifar100.py'
ONLINE = 'model.boundary.type=OnlineBoundary'


# ---------------------------------------------------------------- helpers


def data_options(data_root: Path, batch_size: int = 32) -> List[str]:
    """``--cfg-options`` that point every loader at a tiny dataset."""
    options = ['default_hooks.checkpoint.interval=1']
    for loader in ('train', 'val', 'test'):
        options += [
            f'{loader}_dataloader.dataset.data_root={data_root}',
            f'{loader}_dataloader.batch_size={batch_size}',
            f'{loader}_dataloader.num_workers=0',
            f'{loader}_dataloader.persistent_workers=False',
        ]
    return options


def train(config: str,
          work_dir: Path,
          data_root: Path,
          *options: str,
          resume: bool = False) -> subprocess.CompletedProcess:
    args = [sys.executable, 'tools/train.py', config, '--work-dir', work_dir]
    if resume:
        args.append('--resume')
    args += ['--cfg-options', *data_options(data_root), *options]
    return run(args)


def evaluate(config: str,
             checkpoint: Path,
             work_dir: Path,
             data_root: Path,
             *options: str,
             fidelity: Optional[list] = None) -> subprocess.CompletedProcess:
    """tools/test.py; ``fidelity``: [] for --fidelity, [CFG, CKPT] for
    --teacher CFG CKPT."""
    out = work_dir / 'metrics.json'
    switch = [] if fidelity is None else (
        ['--teacher', *fidelity] if fidelity else ['--fidelity'])
    result = run([
        sys.executable, 'tools/test.py', config, checkpoint, '--work-dir',
        work_dir, '--out', out, *switch, '--cfg-options',
        *data_options(data_root), *options
    ])
    result.out = out
    return result


def assert_metrics_table(result: subprocess.CompletedProcess) -> dict:
    """test.py printed its table and dumped the same metrics to --out."""
    assert_ok(result)
    table = dict(
        re.findall(r'^(accuracy/top\d+)\s+([\d.]+)\s*$', result.stdout,
                   re.MULTILINE))
    assert set(table) == {'accuracy/top1', 'accuracy/top5'}, tail(result)
    metrics = json.loads(result.out.read_text())
    for name, printed in table.items():
        assert 0 <= metrics[name] <= 100
        assert float(printed) == pytest.approx(metrics[name], abs=1e-4)
    return metrics


def scalars(work_dir: Path, run_index: int = -1) -> List[dict]:
    """The records of ``vis_data/scalars.json`` of one run in a work dir.

    Runs are told apart by their timestamp folders; ``run_index`` counts
    them in time order (0: the first run, -1: the latest).
    """
    files = sorted(work_dir.glob('*/vis_data/scalars.json'))
    assert files, f'no scalars.json in {work_dir}'
    return [
        json.loads(line)
        for line in files[run_index].read_text().splitlines() if line.strip()
    ]


def last_checkpoint(work_dir: Path) -> Path:
    return Path((work_dir / 'last_checkpoint').read_text().strip())


def save_model_checkpoint(config: str, path: Path) -> Path:
    """Save freshly initialised weights of a config's (classifier) model."""
    from mmengine.config import Config
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(REPO / config)
    model = MODELS.build(cfg.model)
    model.init_weights()
    torch.save(dict(meta=dict(), state_dict=model.state_dict()), path)
    return path


# --------------------------------------------------------------- fixtures


@pytest.fixture(scope='module')
def cifar100_tiny(make_cifar) -> Path:
    """CIFAR-100 with one train and one test image per class."""
    return make_cifar('cifar100', num_per_class=1)


@pytest.fixture(scope='module')
def teacher(tmp_path_factory, cifar100_tiny) -> SimpleNamespace:
    """The ResNet56 teacher: one epoch, then resumed for a second."""
    work_dir = tmp_path_factory.mktemp('teacher')
    first = train(TEACHER_CFG, work_dir, cifar100_tiny,
                  'train_cfg.max_epochs=1')
    assert_ok(first)
    resumed = train(
        TEACHER_CFG,
        work_dir,
        cifar100_tiny,
        'train_cfg.max_epochs=2',
        resume=True)
    assert_ok(resumed)
    return SimpleNamespace(
        work_dir=work_dir,
        data_root=cifar100_tiny,
        first=first,
        resumed=resumed,
        checkpoint=work_dir / 'epoch_2.pth')


@pytest.fixture(scope='module')
def amkd(tmp_path_factory, teacher) -> SimpleNamespace:
    """The AMKD flagship: one epoch, then resumed for a second."""
    work_dir = tmp_path_factory.mktemp('amkd')
    ckpt = f'model.teacher_ckpt={teacher.checkpoint}'
    first = train(AMKD_CFG, work_dir, teacher.data_root, ONLINE,
                  'train_cfg.max_epochs=1', 'default_hooks.logger.interval=1',
                  ckpt)
    assert_ok(first)
    resumed = train(
        AMKD_CFG,
        work_dir,
        teacher.data_root,
        ONLINE,
        'train_cfg.max_epochs=2',
        'default_hooks.logger.interval=1',
        ckpt,
        resume=True)
    assert_ok(resumed)
    return SimpleNamespace(
        work_dir=work_dir, first=first, resumed=resumed, teacher_option=ckpt)


# ------------------------------------------------------------ (a) teacher


def test_teacher_trains_and_saves(teacher):
    work_dir = teacher.work_dir
    output = teacher.first.output
    assert 'Epoch(train) [1][4/4]' in output
    assert re.search(r'Epoch\(val\) \[1\]\[\d+/\d+\]\s+accuracy/top1', output)
    assert (work_dir / 'epoch_1.pth').is_file()
    assert list(work_dir.glob('best_accuracy_top1_epoch_*.pth'))
    # Logs: the text log, the json log and the scalars of the visualizer.
    assert list(work_dir.glob('*/*.log'))
    assert list(work_dir.glob('*/vis_data/*.json'))
    records = scalars(work_dir, run_index=0)
    assert any('loss' in r and r.get('epoch') == 1 for r in records)
    assert any('accuracy/top1' in r for r in records)


def test_teacher_resumes(teacher):
    output = teacher.resumed.output
    assert 'resumed epoch: 1, iter: 4' in output
    assert 'Epoch(train) [2][4/4]' in output
    assert 'Epoch(train) [1]' not in output  # epoch 1 was not trained again
    assert last_checkpoint(teacher.work_dir) == teacher.checkpoint
    # Loads weights-only (torch's default), history buffers included.
    checkpoint = torch.load(teacher.checkpoint, weights_only=True)
    assert checkpoint['meta']['epoch'] == 2
    assert checkpoint['meta']['iter'] == 8
    assert 'train/loss' in checkpoint['message_hub']['log_scalars']
    assert 'head.fc.weight' in checkpoint['state_dict']
    assert checkpoint['state_dict']['head.fc.weight'].shape == (100, 64)


def test_teacher_evaluates(teacher, tmp_path):
    result = evaluate(TEACHER_CFG, teacher.checkpoint, tmp_path,
                      teacher.data_root)
    assert_metrics_table(result)
    assert 'Load checkpoint from' in result.output


# ----------------------------------------------------- (b) missing dataset


def test_missing_dataset_explains_where_and_how(tmp_path):
    data_root = tmp_path / 'nowhere'
    result = train(TEACHER_CFG, tmp_path / 'work', data_root,
                   'train_cfg.max_epochs=1')
    assert_user_error(result, f'{data_root}/cifar-100-python',
                      'cifar-100-python.tar.gz', 'tar -xzf')
    assert result.stderr.count('error: ') == 1
    assert not list((tmp_path / 'work').glob('*.pth'))


# -------------------------------------------------------- (c) AMKD flagship


def test_amkd_trains_with_boundary_losses(amkd):
    output = amkd.first.output
    assert 'Epoch(train) [1][4/4]' in output
    for key in ('student.loss', 'distill.loss_kd', 'distill.loss_boundary_kd',
                'distill.loss_triplet', 'boundary_weight',
                'boundary_attacked', 'boundary_reached'):
        assert f'{key}: ' in output, key
    assert (amkd.work_dir / 'epoch_1.pth').is_file()
    # The boundary weight decays linearly to 0 at 75% of training.
    weights = [
        r['boundary_weight'] for r in scalars(amkd.work_dir, run_index=0)
        if 'boundary_weight' in r
    ]
    assert weights == pytest.approx([1., 2 / 3, 1 / 3, 0.])


def test_amkd_resumes_with_attack_state(amkd):
    output = amkd.resumed.output
    assert 'resumed epoch: 1, iter: 4' in output
    assert 'Epoch(train) [2][4/4]' in output
    assert 'Epoch(train) [1]' not in output
    checkpoint_path = amkd.work_dir / 'epoch_2.pth'
    assert last_checkpoint(amkd.work_dir) == checkpoint_path
    checkpoint = torch.load(checkpoint_path, weights_only=True)
    assert checkpoint['meta']['epoch'] == 2
    assert 'adversarial_boundary' in checkpoint
    assert 'attack' in checkpoint['adversarial_boundary']
    state = checkpoint['state_dict']
    assert any(k.startswith('architecture.') for k in state)
    assert any(k.startswith('teacher.') for k in state)
    assert state['architecture.head.fc.weight'].shape == (100, 64)


def test_amkd_evaluates(amkd, teacher, tmp_path):
    result = evaluate(AMKD_CFG, amkd.work_dir / 'epoch_2.pth', tmp_path,
                      teacher.data_root, amkd.teacher_option)
    assert_metrics_table(result)


FIDELITY_KEYS = {'fidelity/agree_t0.5', 'fidelity/agree_t1.0',
                 'fidelity/agree_t1.5', 'fidelity/agree_mean',
                 'fidelity/kl_t1.0', 'fidelity/reached', 'fidelity/images',
                 'fidelity/agree_clean', 'fidelity/missed'}


def test_amkd_evaluates_boundary_fidelity(amkd, teacher, tmp_path):
    result = evaluate(AMKD_CFG, amkd.work_dir / 'epoch_2.pth', tmp_path,
                      teacher.data_root, amkd.teacher_option, fidelity=[])
    metrics = assert_metrics_table(result)
    assert FIDELITY_KEYS <= set(metrics), tail(result)
    measured = metrics['fidelity/images'] > 0  # NaN over no images
    for key in FIDELITY_KEYS - {'fidelity/images', 'fidelity/kl_t1.0'}:
        in_range = 0 <= metrics[key] <= 100
        assert in_range if measured else (in_range or math.isnan(
            metrics[key])), key
        assert re.search(rf'^{key}\s+([\d.]+|nan)\s*$', result.stdout,
                         re.M), key
    assert metrics['fidelity/kl_t1.0'] >= 0 or not measured


def test_teacher_against_itself_has_full_fidelity(teacher, tmp_path):
    """A lone classifier with --teacher; the teacher is its own student."""
    result = evaluate(TEACHER_CFG, teacher.checkpoint, tmp_path,
                      teacher.data_root,
                      fidelity=[TEACHER_CFG, teacher.checkpoint])
    metrics = assert_metrics_table(result)
    if metrics['fidelity/images'] > 0:
        assert metrics['fidelity/agree_mean'] == 100
        assert metrics['fidelity/kl_t1.0'] == pytest.approx(0, abs=1e-6)


def test_fidelity_of_a_classifier_needs_a_teacher(teacher, tmp_path):
    result = evaluate(TEACHER_CFG, teacher.checkpoint, tmp_path,
                      teacher.data_root, fidelity=[])
    assert_user_error(result, 'has no teacher', '--teacher CONFIG CKPT')


# ------------------------------------------------ (d) baselines and mixing


# config, logged, not logged: stock MMRazor KD has no boundary terms.
@pytest.mark.parametrize('config, logged, absent', [
    ('configs/kd/resnet56_resnet20_cifar100.py', ['distill.loss_kd: '],
     ['boundary']),
    ('configs/bss/resnet56_resnet20_cifar100.py',
     ['distill.loss_boundary_kd: ', 'distill.loss_triplet: 0.0000'], []),
    ('configs/amkd/resnet56_resnet20_cifar100_dkd.py',
     ['distill.loss_dkd: ', 'distill.loss_boundary_kd: '], []),
    ('configs/amkd/resnet56_resnet20_cifar100_fitnet.py',
     ['distill.loss_fitnet: ', 'distill.loss_boundary_kd: '], []),
],
                         ids=['kd', 'bss', 'amkd_dkd', 'amkd_fitnet'])
def test_distillation_variant_trains_and_evaluates(config, logged, absent,
                                                   teacher, tmp_path):
    ckpt = f'model.teacher_ckpt={teacher.checkpoint}'
    result = train(config, tmp_path, teacher.data_root,
                   'train_cfg.max_epochs=1', ckpt)
    assert_ok(result)
    assert 'Epoch(train) [1][4/4]' in result.output
    for text in logged:
        assert text in result.output, (text, tail(result))
    train_log = [line for line in result.output.splitlines()
                 if 'Epoch(train)' in line]
    for text in absent:
        assert not any(text in line for line in train_log), text
    assert re.search(r'Epoch\(val\) \[1\]\[\d+/\d+\]\s+accuracy/top1',
                     result.output)
    checkpoint = tmp_path / 'epoch_1.pth'
    assert checkpoint.is_file()
    assert_metrics_table(
        evaluate(config, checkpoint, tmp_path / 'test', teacher.data_root,
                 ckpt))


# ------------------------------- (d2) the CIFAR-100 benchmark's 13 pairs

BENCHMARK_PAIRS = [
    'resnet56_resnet20', 'resnet110_resnet20', 'resnet110_resnet32',
    'resnet32x4_resnet8x4', 'wrn_40_2_wrn_16_2', 'wrn_40_2_wrn_40_1',
    'vgg13_vgg8', 'vgg13_mobilenetv2', 'resnet50_mobilenetv2',
    'resnet50_vgg8', 'resnet32x4_shufflenetv1', 'resnet32x4_shufflenetv2',
    'wrn_40_2_shufflenetv1'
]


def released_teacher(teacher_cfg: str, path: Path) -> Path:
    """The teacher's fresh weights as the benchmark released its teachers:
    ckpt_epoch_240.pth with the bare network's names under 'model'."""
    from mmengine.config import Config
    from mmpretrain.registry import MODELS

    from amkd_plugin.models.backbones.benchmark_names import \
        CLASSIFIER_PREFIXES
    name = Path(teacher_cfg).stem.rsplit('_cifar100', 1)[0]
    model = MODELS.build(Config.fromfile(REPO / teacher_cfg).model)
    model.init_weights()
    network = {
        (CLASSIFIER_PREFIXES[name] + key[len('head.fc.'):]
         if key.startswith('head.fc.') else key[len('backbone.'):]): value
        for key, value in model.state_dict().items()
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(dict(epoch=240, model=network, accuracy=torch.tensor(70.),
                    optimizer=dict(state={}, param_groups=[])), path)
    return path


@pytest.mark.parametrize('pair', BENCHMARK_PAIRS)
def test_benchmark_pair_trains_from_a_released_teacher(pair, tmp_path,
                                                       cifar100_tiny):
    """One step (32 images, batch 32) of each pair's default config, bank
    built, from a teacher file in the benchmark's released format."""
    from mmengine.config import Config
    config = f'configs/amkd/{pair}_cifar100.py'
    teacher_cfg = Config.fromfile(REPO / config).model.teacher.cfg_path
    arch = Path(teacher_cfg).stem.rsplit('_cifar100', 1)[0]
    ckpt = released_teacher(
        teacher_cfg, tmp_path / f'{arch}_vanilla' / 'ckpt_epoch_240.pth')
    result = train(config, tmp_path / 'work', cifar100_tiny,
                   'train_cfg.max_epochs=1', 'train_cfg.val_interval=2',
                   'train_dataloader.dataset.indices=32',
                   f'model.teacher_ckpt={ckpt}')
    assert_ok(result)
    assert "the CIFAR KD benchmark's format (RepDistiller; epoch 240, " \
        'accuracy 70.00)' in result.output
    assert 'Boundary bank: building' in result.output
    assert 'Epoch(train) [1][1/1]' in result.output
    assert (tmp_path / 'work' / 'epoch_1.pth').is_file()


def test_converted_released_teacher_evaluates_like_the_original(
        tmp_path, teacher):
    """convert_teacher.py's output, evaluated by tools/test.py, scores what
    the same weights saved the MMPretrain way score."""
    checkpoint = torch.load(teacher.checkpoint, weights_only=True)
    released = tmp_path / 'resnet56_vanilla' / 'ckpt_epoch_240.pth'
    released.parent.mkdir()
    torch.save(dict(epoch=2, model={
        ('fc.' + key[len('head.fc.'):] if key.startswith('head.fc.') else
         key[len('backbone.'):]): value
        for key, value in checkpoint['state_dict'].items()
    }, accuracy=torch.tensor(1.)), released)
    converted = tmp_path / 'converted.pth'
    result = run([sys.executable, 'tools/convert_teacher.py', released,
                  converted, TEACHER_CFG])
    assert_ok(result)
    assert f'Wrote {converted}' in result.output
    meta = torch.load(converted, weights_only=True)['meta']
    assert meta['source_checkpoint'] == str(released)
    original = assert_metrics_table(
        evaluate(TEACHER_CFG, teacher.checkpoint, tmp_path / 'a',
                 teacher.data_root))
    assert assert_metrics_table(
        evaluate(TEACHER_CFG, converted, tmp_path / 'b',
                 teacher.data_root)) == original
    # Of another architecture: one line naming what it looks like.
    result = run([sys.executable, 'tools/convert_teacher.py', released,
                  tmp_path / 'other.pth',
                  'configs/teachers/resnet110_cifar100.py'])
    assert_user_error(result, "looks like the benchmark's resnet56")


# ---------------------------------------------- (e) bad teacher checkpoints


@pytest.fixture(scope='module')
def cifar10_teacher_checkpoint(tmp_path_factory) -> Path:
    """A ResNet56 checkpoint for 10 classes (a CIFAR-10 teacher)."""
    return save_model_checkpoint(
        'configs/teachers/resnet56_cifar10.py',
        tmp_path_factory.mktemp('cifar10_teacher') / 'epoch_240.pth')


@pytest.mark.parametrize('problem',
                         ['missing', 'garbage', 'truncated', 'wrong_classes'])
def test_bad_teacher_checkpoint_stops_before_training(
        problem, tmp_path, cifar100_tiny, cifar10_teacher_checkpoint):
    if problem == 'missing':
        checkpoint = tmp_path / 'teacher' / 'epoch_240.pth'
        expected = [f'{checkpoint} does not exist', TEACHER_CMD]
    elif problem == 'garbage':
        checkpoint = tmp_path / 'garbage.pth'
        checkpoint.write_bytes(b'not a checkpoint\n' + bytes(range(256)) * 16)
        expected = [f'{checkpoint} cannot be read', TEACHER_CMD]
    elif problem == 'truncated':  # e.g. an interrupted copy
        data = cifar10_teacher_checkpoint.read_bytes()
        checkpoint = tmp_path / 'truncated.pth'
        checkpoint.write_bytes(data[:len(data) // 2])
        expected = [f'{checkpoint} cannot be read', TEACHER_CMD]
    else:
        checkpoint = cifar10_teacher_checkpoint
        expected = [f'{checkpoint} does not fit', 'head.fc.weight',
                    TEACHER_CMD]
    work_dir = tmp_path / 'work'
    result = train(AMKD_CFG, work_dir, cifar100_tiny, ONLINE,
                   'train_cfg.max_epochs=1',
                   f'model.teacher_ckpt={checkpoint}')
    assert_user_error(result, *expected)
    assert 'Epoch(train)' not in result.output
    assert not list(work_dir.glob('*.pth'))


def unsafe_checkpoint(path: Path) -> Path:
    """A checkpoint whose pickle would run a shell command when loaded."""

    class Payload:

        def __reduce__(self):
            return (os.system, (f'touch {path}.ran',))

    torch.save(dict(state_dict={}, meta=Payload()), path)
    return path


@pytest.mark.parametrize('problem', ['missing', 'truncated', 'unsafe',
                                     'other model'])
def test_bad_checkpoint_for_test_and_resume_is_one_line(
        problem, tmp_path, teacher):
    """tools/test.py CONFIG CKPT and tools/train.py --resume CKPT."""
    checkpoint = tmp_path / f'{problem}.pth'
    expected = [f'{checkpoint} ']
    if problem == 'truncated':
        data = teacher.checkpoint.read_bytes()
        checkpoint.write_bytes(data[:len(data) // 3])
        expected.append('cannot be read')
    elif problem == 'unsafe':
        unsafe_checkpoint(checkpoint)
        expected.append('loading it could run code, so it was not loaded')
    elif problem == 'other model':
        save_model_checkpoint('configs/teachers/resnet110_cifar100.py',
                              checkpoint)
        expected += ['does not fit the model of', 'unexpected']
    else:
        expected.append('does not exist')
    for result in (
            evaluate(TEACHER_CFG, checkpoint, tmp_path / 'test',
                     teacher.data_root),
            run([sys.executable, 'tools/train.py', TEACHER_CFG,
                 '--work-dir', tmp_path / 'train', '--resume', checkpoint,
                 '--cfg-options', *data_options(teacher.data_root)])):
        assert_user_error(result, *expected)
        assert 'weights_only' not in result.output, tail(result)
        assert 'Epoch(' not in result.output, tail(result)
    assert not Path(f'{checkpoint}.ran').exists()


def test_plugin_config_error_is_one_line(tmp_path, teacher):
    result = train(AMKD_CFG, tmp_path, teacher.data_root,
                   f'model.teacher_ckpt={teacher.checkpoint}',
                   ONLINE, 'model.boundary.attack.max_steps=0')
    assert_user_error(result, 'BoundaryAttack needs max_steps >= 1',
                      'got max_steps=0')


# ------------------------------------------ (e2) resume = uninterrupted run

DIGITS_TEACHER_CFG = 'configs/teachers/resnet20_digits.py'
DIGITS_AMKD_CFG = 'configs/amkd/resnet20_resnet8_digits.py'
# 256 training digits: 4 steps of 64 per epoch; no validation in between;
# the online first-order attack.
DIGITS_SMALL = [ONLINE, 'model.boundary.attack.max_steps=3',
                'train_dataloader.dataset.indices=256',
                'train_cfg.val_interval=100',
                'default_hooks.checkpoint.interval=1',
                'default_hooks.logger.interval=1']


@pytest.fixture(scope='module')
def digits_teacher(tmp_path_factory) -> Path:
    work_dir = tmp_path_factory.mktemp('digits_teacher')
    result = run([
        sys.executable, 'tools/train.py', DIGITS_TEACHER_CFG, '--work-dir',
        work_dir, '--cfg-options', 'train_cfg.max_epochs=3',
        'train_dataloader.dataset.indices=512', 'train_cfg.val_interval=100'
    ])
    assert_ok(result)
    return work_dir / 'epoch_3.pth'


@pytest.mark.parametrize('workers', [0, 2])
def test_resume_continues_the_same_run(workers, digits_teacher, tmp_path):
    """Online AMKD (first-order step) on digits: 4 epochs straight and the
    same run resumed from its epoch_2.pth end with the same weights, bit
    for bit."""
    options = [*DIGITS_SMALL, 'train_cfg.max_epochs=4',
               f'train_dataloader.num_workers={workers}',
               f'model.teacher_ckpt={digits_teacher}']
    straight = tmp_path / 'straight'
    result = run([sys.executable, 'tools/train.py', DIGITS_AMKD_CFG,
                  '--work-dir', straight, '--cfg-options', *options])
    assert_ok(result)
    attacked = [r.get('boundary_attacked', 0) for r in scalars(straight)]
    assert max(attacked) > 0  # the attack ran
    resumed = tmp_path / 'resumed'
    result = run([sys.executable, 'tools/train.py', DIGITS_AMKD_CFG,
                  '--work-dir', resumed, '--resume', straight / 'epoch_2.pth',
                  '--cfg-options', *options])
    assert_ok(result)
    assert 'resumed epoch: 2' in result.output
    assert 'Epoch(train) [1]' not in result.output

    a, b = (torch.load(path / 'epoch_4.pth', weights_only=True)
            for path in (straight, resumed))
    assert a['state_dict'].keys() == b['state_dict'].keys()
    differ = [key for key, value in a['state_dict'].items()
              if not torch.equal(value, b['state_dict'][key])]
    assert differ == []
    for key, value in a['optimizer']['state'].items():
        assert torch.equal(value['momentum_buffer'],
                           b['optimizer']['state'][key]['momentum_buffer'])


# --------------------------------------------------- (f) stock MMRazor KD

STOCK_KD_CONFIG = '''
_base_ = [
    '{repo}/configs/_base_/datasets/cifar100.py',
    '{repo}/configs/_base_/schedules/cifar_kd_240e.py',
    '{repo}/configs/_base_/default_runtime.py',
]
default_scope = 'mmrazor'

teacher = dict(
    _scope_='mmpretrain',
    type='ImageClassifier',
    backbone=dict(type='CIFARResNet', depth=14),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=100,
        in_channels=64,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
student = dict(
    _scope_='mmpretrain',
    type='ImageClassifier',
    backbone=dict(type='CIFARResNet', depth=8),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=100,
        in_channels=64,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))

model = dict(
    _scope_='mmrazor',
    type='SingleTeacherDistill',
    architecture=student,
    teacher=teacher,
    teacher_ckpt='{teacher_ckpt}',
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(
            fc=dict(type='ModuleOutputs', source='head.fc')),
        teacher_recorders=dict(
            fc=dict(type='ModuleOutputs', source='head.fc')),
        distill_losses=dict(
            loss_kl=dict(type='KLDivergence', tau=4, loss_weight=3)),
        loss_forward_mappings=dict(
            loss_kl=dict(
                preds_S=dict(from_student=True, recorder='fc'),
                preds_T=dict(from_student=False, recorder='fc')))))

find_unused_parameters = True
val_cfg = dict(_delete_=True, type='mmrazor.SingleTeacherDistillValLoop')
'''


def test_stock_mmrazor_kd_config_trains(tmp_path, cifar100_tiny):
    teacher_ckpt = save_model_checkpoint(
        'configs/_base_/models/resnet14.py', tmp_path / 'resnet14.pth')
    config = tmp_path / 'kd_logits_resnet14_resnet8_cifar100.py'
    config.write_text(
        STOCK_KD_CONFIG.format(repo=REPO, teacher_ckpt=teacher_ckpt))
    work_dir = tmp_path / 'work'
    result = train(config, work_dir, cifar100_tiny, 'train_cfg.max_epochs=1')
    assert_ok(result)
    assert 'Epoch(train) [1][4/4]' in result.output
    assert 'distill.loss_kl: ' in result.output
    assert 'student.loss: ' in result.output
    # SingleTeacherDistillValLoop evaluates the student and the teacher.
    assert re.search(r'Epoch\(val\) \[1\]\[\d+/\d+\]\s+accuracy/top1.*'
                     r'teacher\.accuracy/top1', result.output)
    checkpoint = torch.load(work_dir / 'epoch_1.pth', weights_only=True)
    assert 'architecture.backbone.conv1.weight' in checkpoint['state_dict']


# ------------------------------------------------- (g) distributed on CPU

RANK_DUMP_HOOK = '''
import os.path as osp

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module()
class DumpRankParamsHook(Hook):
    """Save this rank's parameters after training, to compare ranks."""

    def after_train(self, runner):
        model = runner.model
        assert is_model_wrapper(model), type(model)
        params = {name: p.detach().clone()
                  for name, p in model.module.named_parameters()}
        torch.save(params, osp.join(runner.work_dir,
                                    f'params_rank{runner.rank}.pth'))
'''


def test_distributed_training_on_cpu(tmp_path, cifar100_tiny):
    """2 gloo processes via dist_train.sh; ranks end with equal weights."""
    small = ['model.backbone.depth=8', 'env_cfg.dist_cfg.backend=gloo']
    (tmp_path / 'rank_dump_hook.py').write_text(RANK_DUMP_HOOK)
    config = tmp_path / 'resnet8_cifar100_dump.py'
    config.write_text(
        f"_base_ = ['{REPO / TEACHER_CFG}']\n"
        "custom_imports = dict(imports=['amkd_plugin', 'rank_dump_hook'], "
        'allow_failed_imports=False)\n'
        "custom_hooks = [dict(type='DumpRankParamsHook')]\n")
    env = dict(
        PYTHON=sys.executable,
        PORT=str(free_port()),
        PYTHONPATH=os.pathsep.join(
            filter(None, [str(tmp_path),
                          os.environ.get('PYTHONPATH')])))
    work_dir = tmp_path / 'work'
    result = run([
        'bash', 'tools/dist_train.sh', config, 2, '--work-dir', work_dir,
        '--cfg-options', *data_options(cifar100_tiny, batch_size=16),
        'train_cfg.max_epochs=1', *small
    ],
                 env=env)
    assert_ok(result)
    assert 'Distributed training: True' in result.output
    assert 'GPU number: 2' in result.output  # MMEngine's name: world size
    # 100 images, 16 per process and step, 2 processes: 4 steps.
    assert 'Epoch(train) [1][4/4]' in result.output
    assert [p.name for p in work_dir.glob('epoch_*.pth')] == ['epoch_1.pth']

    # Both ranks finished, with the same parameters as the checkpoint.
    ranks = [torch.load(work_dir / f'params_rank{r}.pth') for r in (0, 1)]
    saved = torch.load(work_dir / 'epoch_1.pth',
                       weights_only=True)['state_dict']
    assert ranks[0].keys() == ranks[1].keys()
    for name, value in ranks[0].items():
        assert torch.equal(value, ranks[1][name]), name
        assert torch.equal(value, saved[name]), name

    # 2-process evaluation agrees with 1-process evaluation.
    checkpoint = work_dir / 'epoch_1.pth'
    env['PORT'] = str(free_port())
    out = tmp_path / 'dist_metrics.json'
    dist_test = run([
        'bash', 'tools/dist_test.sh', TEACHER_CFG, checkpoint, 2,
        '--work-dir', tmp_path / 'dist_test', '--out', out, '--cfg-options',
        *data_options(cifar100_tiny), *small
    ],
                    env=env)
    dist_test.out = out
    single = evaluate(TEACHER_CFG, checkpoint, tmp_path / 'test',
                      cifar100_tiny, 'model.backbone.depth=8')
    assert 'GPU number: 2' in dist_test.output
    # Two ranks evaluate in other batch sizes than one process: logits may
    # differ in the last bits, which could move one image at a near-tie.
    shared, alone = assert_metrics_table(dist_test), assert_metrics_table(
        single)
    one_image = 100 / 100  # percent, of the 100 test images
    for key in alone:
        assert shared[key] == pytest.approx(alone[key], abs=one_image + 1e-6)


@pytest.mark.parametrize('step', ['bss', 'newton'])
def test_distributed_amkd_on_cpu(step, tmp_path, teacher):
    """The online flagship over 2 gloo processes, with either attack step:
    DDP-wrapped AMKD and its hook."""
    work_dir = tmp_path / 'work'
    result = run([
        'bash', 'tools/dist_train.sh', AMKD_CFG, 2, '--work-dir', work_dir,
        '--cfg-options', *data_options(teacher.data_root, batch_size=16),
        'train_cfg.max_epochs=1', 'env_cfg.dist_cfg.backend=gloo',
        f'model.teacher_ckpt={teacher.checkpoint}',
        ONLINE, f'model.boundary.attack.step={step}'
    ],
                 env=dict(PYTHON=sys.executable, PORT=str(free_port())))
    assert_ok(result)
    assert 'GPU number: 2' in result.output
    assert 'Epoch(train) [1][4/4]' in result.output
    for key in ('distill.loss_boundary_kd', 'distill.loss_triplet',
                'boundary_attacked'):
        assert f'{key}: ' in result.output, key
    checkpoint = torch.load(work_dir / 'epoch_1.pth', weights_only=True)
    assert 'adversarial_boundary' in checkpoint


# ---------------------------------------------------- (h) boundary bank

BANK_CFG = 'configs/amkd/resnet56_resnet20_cifar100.py'
BANK_FIELDS = ('delta', 'scale', 'checksum', 'targets', 'weights', 'correct',
               'reached', 'steps')


def build_bank(config: str, work_dir: Path, data_root: Path,
               *options: str) -> subprocess.CompletedProcess:
    return run([
        sys.executable, 'tools/build_boundary_bank.py', config, '--work-dir',
        work_dir, '--cfg-options', *data_options(data_root), *options
    ])


def bank_arrays(path: Path) -> dict:
    bank = BoundaryBankFile.open(str(path))
    return {name: bank[name].copy() for name in BANK_FIELDS}


@pytest.fixture(scope='module')
def banked(tmp_path_factory, teacher) -> SimpleNamespace:
    """The flagship's bank built by the tool, then 1 epoch of training in
    the same work dir, then resumed for a second."""
    work_dir = tmp_path_factory.mktemp('bank')
    ckpt = f'model.teacher_ckpt={teacher.checkpoint}'
    built = build_bank(BANK_CFG, work_dir, teacher.data_root, ckpt)
    assert_ok(built)
    found = re.findall(r'^Boundary bank: (/\S+)$', built.stdout, re.M)
    assert len(found) == 1, tail(built)
    path = Path(found[0])
    meta = (path / 'meta.json').stat()
    options = ['default_hooks.logger.interval=1', ckpt]
    first = train(BANK_CFG, work_dir, teacher.data_root,
                  'train_cfg.max_epochs=1', *options)
    assert_ok(first)
    resumed = train(BANK_CFG, work_dir, teacher.data_root,
                    'train_cfg.max_epochs=2', *options, resume=True)
    assert_ok(resumed)
    return SimpleNamespace(work_dir=work_dir, built=built, path=path,
                           meta=meta, first=first, resumed=resumed,
                           data_root=teacher.data_root, teacher_option=ckpt)


def test_bank_tool_builds_and_training_reuses_it(banked):
    assert banked.built.output.count('Boundary bank: building') == 1
    assert 'as stored (6-bit change)' in banked.built.output
    assert banked.path.parent == banked.work_dir / 'boundary_bank'
    assert [p.name for p in banked.path.parent.iterdir()] == [
        banked.path.name]
    arrays = bank_arrays(banked.path)
    assert arrays['delta'].shape == (100, 1, 32 * 32 * 3 * 6 // 8)
    # Nothing was rebuilt or touched since.
    meta = (banked.path / 'meta.json').stat()
    assert (meta.st_ino, meta.st_mtime_ns) == (banked.meta.st_ino,
                                               banked.meta.st_mtime_ns)

    output = banked.first.output
    assert f'Boundary bank: reusing {banked.path}.' in output
    assert 'Boundary bank: building' not in output
    assert 'Epoch(train) [1][4/4]' in output
    for key in ('distill.loss_kd', 'distill.loss_boundary_kd',
                'distill.loss_triplet', 'boundary_attacked',
                'boundary_margin_clean', 'boundary_margin'):
        assert f'{key}: ' in output, key
    # The 2-epoch teacher is right on few training images (those alone
    # are banked), so whether the student shares one in a batch is luck of
    # the seed: the margin line comes exactly with boundary samples.
    records = scalars(banked.work_dir, run_index=0)
    attacked = sum(r.get('boundary_attacked', 0) for r in records)
    assert arrays['correct'].sum() >= 1 or not attacked
    assert (('Epoch 1: teacher margin z_b - z_k on the boundary samples'
             in output) == (attacked > 0)), tail(banked.first)


def test_bank_training_resumes_and_reuses_the_bank(banked):
    output = banked.resumed.output
    assert 'resumed epoch: 1, iter: 4' in output
    assert 'Epoch(train) [2][4/4]' in output
    assert 'Epoch(train) [1]' not in output
    assert f'Boundary bank: reusing {banked.path}.' in output
    assert 'Boundary bank: building' not in output
    assert last_checkpoint(banked.work_dir) == banked.work_dir / 'epoch_2.pth'
    assert [p.name for p in banked.path.parent.iterdir()] == [
        banked.path.name]


def test_bank_tool_needs_a_bank_config(tmp_path, cifar100_tiny):
    result = build_bank(AMKD_CFG, tmp_path, cifar100_tiny, ONLINE)
    assert_user_error(result, 'takes no boundary bank (model.boundary.type '
                      "is 'OnlineBoundary')")
    assert not (tmp_path / 'boundary_bank').exists()


def test_distributed_bank_training_on_cpu(tmp_path, teacher, banked):
    """2 gloo processes build the bank together, then train on it."""
    work_dir = tmp_path / 'work'
    result = run([
        'bash', 'tools/dist_train.sh', BANK_CFG, 2, '--work-dir', work_dir,
        '--cfg-options', *data_options(teacher.data_root, batch_size=16),
        'train_cfg.max_epochs=1', 'env_cfg.dist_cfg.backend=gloo',
        f'model.teacher_ckpt={teacher.checkpoint}'
    ],
                 env=dict(PYTHON=sys.executable, PORT=str(free_port())))
    assert_ok(result)
    assert 'GPU number: 2' in result.output
    assert result.output.count('Boundary bank: building') == 1
    assert 'Epoch(train) [1][4/4]' in result.output
    assert 'distill.loss_boundary_kd: ' in result.output
    # The same key as the single-process bank, and every index written by
    # one of the ranks: teacher-right flags and the clean pixels of the
    # images it gets wrong agree with the single-process bank.
    banks = list((work_dir / 'boundary_bank').iterdir())
    assert [p.name for p in banks] == [banked.path.name]


def two_machines(config: str, work_dirs: List[Path], data_root: Path,
                 *options: str,
                 per_machine: int = 1) -> List[subprocess.CompletedProcess]:
    """tools/dist_train.sh as on two machines of ``per_machine`` processes
    each: two torchrun launches with NNODES=2 and NODE_RANK 0 and 1
    (torchrun tells each rank its machine through GROUP_RANK), run at the
    same time."""
    port = str(free_port())
    launches = [
        subprocess.Popen(
            ['bash', 'tools/dist_train.sh', config, str(per_machine),
             '--work-dir',
             work_dir, '--cfg-options', *data_options(data_root, 16),
             'env_cfg.dist_cfg.backend=gloo', *options],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, 'OMP_NUM_THREADS': '1', 'NNODES': '2',
                 'NODE_RANK': str(node), 'PORT': port,
                 'PYTHON': sys.executable})
        for node, work_dir in enumerate(map(str, work_dirs))
    ]
    results = []
    for launch in launches:
        stdout, stderr = launch.communicate(timeout=600)
        result = subprocess.CompletedProcess(launch.args, launch.returncode,
                                             stdout, stderr)
        result.output = stdout + stderr
        results.append(result)
    return results


def test_two_machines_build_the_bank_once(tmp_path, teacher, banked):
    """Two machines of 2 ranks each: every rank attacks its batches into a
    shard of the shared work dir, rank 0 commits one bank, the
    single-process one."""
    work_dir = tmp_path / 'shared'
    results = two_machines(BANK_CFG, [work_dir, work_dir], teacher.data_root,
                           'train_cfg.max_epochs=1',
                           'model.boundary.batch_size=16',
                           f'model.teacher_ckpt={teacher.checkpoint}',
                           per_machine=2)
    for result in results:
        assert_ok(result)
    output = ''.join(r.output for r in results)
    assert output.count('Boundary bank: building') == 1, output[-4000:]
    # 100 images in batches of 16: 7 batches round 4 ranks, 2 machines.
    assert ('by 4 rank(s); batches by rank: 0: 2, 1: 2, 2: 2, 3: 1.'
            ) in output, output[-4000:]
    assert 'Epoch(train) [1][' in output
    bank, = (work_dir / 'boundary_bank').iterdir()
    assert bank.name == banked.path.name  # the key names no batch size
    assert BoundaryBankFile.open(str(bank)).build['ranks'] == 4
    assert sorted(os.listdir(bank)) == sorted(os.listdir(banked.path))
    single = tmp_path / 'single'
    assert_ok(build_bank(BANK_CFG, single, teacher.data_root,
                         'model.boundary.batch_size=16',
                         f'model.teacher_ckpt={teacher.checkpoint}'))
    shared, single = bank_arrays(bank), bank_arrays(
        single / 'boundary_bank' / bank.name)
    for name in BANK_FIELDS:
        np.testing.assert_array_equal(shared[name], single[name],
                                      err_msg=name)


def test_two_machines_without_a_shared_work_dir_stop(tmp_path, teacher):
    """The second machine's work dir is another folder: it would never see
    the bank, so both stop with one line before building."""
    results = two_machines(BANK_CFG, [tmp_path / 'one', tmp_path / 'two'],
                           teacher.data_root, 'train_cfg.max_epochs=1',
                           f'model.teacher_ckpt={teacher.checkpoint}')
    for result in results:
        assert result.returncode != 0, tail(result)
        errors = [line for line in result.stderr.splitlines()
                  if line.startswith('error: ')]
        assert len(errors) == 1, tail(result)
        for text in ('is not shared by all ranks', 'rank 1 (node 1)',
                     'tools/build_boundary_bank.py'):
            assert text in errors[0], tail(result)
        # The one traceback is torchrun's report that its worker failed.
        assert result.output.count('Traceback') == result.output.count(
            'ChildFailedError: '), tail(result)
        assert 'Boundary bank: building' not in result.output
    assert not list((tmp_path / 'one' / 'boundary_bank').iterdir())


def test_bank_does_not_depend_on_the_process_count(tmp_path, teacher):
    """Built by 1 and by 2 processes (batches of 16 go round the ranks;
    targets drawn per image), the bank is the same, array for array."""
    options = [*data_options(teacher.data_root),
               'model.boundary.batch_size=16',
               f'model.teacher_ckpt={teacher.checkpoint}',
               'env_cfg.dist_cfg.backend=gloo']
    single = run([sys.executable, 'tools/build_boundary_bank.py', BANK_CFG,
                  '--work-dir', tmp_path / 'one', '--cfg-options', *options])
    assert_ok(single)
    shared = run(['bash', 'tools/dist_run.sh', 2, 'build_boundary_bank.py',
                  BANK_CFG, '--launcher', 'pytorch', '--work-dir',
                  tmp_path / 'two', '--cfg-options', *options],
                 env=dict(PYTHON=sys.executable, PORT=str(free_port())))
    assert_ok(shared)
    one, = (tmp_path / 'one' / 'boundary_bank').iterdir()
    two, = (tmp_path / 'two' / 'boundary_bank').iterdir()
    assert one.name == two.name
    one, two = bank_arrays(one), bank_arrays(two)
    assert one['correct'].any() and one['steps'].max() >= 1
    for name in BANK_FIELDS:
        np.testing.assert_array_equal(one[name], two[name], err_msg=name)


def test_damaged_bank_is_one_line(tmp_path, banked):
    """A bank whose delta.npy lost its end (a full disk, an interrupted
    copy) stops training with one line that names it."""
    work_dir = tmp_path / 'work'
    damaged = work_dir / 'boundary_bank' / banked.path.name
    shutil.copytree(banked.path, damaged)
    delta = damaged / 'delta.npy'
    delta.write_bytes(delta.read_bytes()[:-1000])
    result = train(BANK_CFG, work_dir, banked.data_root,
                   'train_cfg.max_epochs=1', banked.teacher_option)
    assert_user_error(result,
                      f'Boundary bank {damaged} is damaged: delta.npy',
                      'tools/build_boundary_bank.py')
    assert 'Epoch(train)' not in result.output
