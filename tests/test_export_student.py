# Copyright (c) amkd-mmrazor contributors.
"""tools/export_student.py: a distillation checkpoint becomes a classifier.

The fast tests build a real ``AMKDDistill`` from the digits config
(ResNet20 teacher, ResNet8 student) in this process, move the student's
weights and BN statistics away from their initial values, save the
algorithm in the runner's checkpoint format and export it. The exported
classifier must give the student's logits bit for bit through our own
build, MMPretrain's ``init_model``, and with the preprocessing the algorithm
applied in training (the digits mean/std, not the student's own unused
preprocessor).

The tests marked ``slow`` go through the command lines: a one-epoch
``tools/train.py`` run, the export, and ``tools/test.py`` on both the
distillation config and the exported student, which must agree.
Subprocesses run with ``OMP_NUM_THREADS=1`` unless the caller sets it.
"""
import copy
import hashlib
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Dict

import pytest
import torch
from helpers import assert_ok, load_tool, run, tail
from mmengine.config import Config
from mmengine.registry import DefaultScope
from torch.nn.modules.batchnorm import _BatchNorm

from amkd_plugin.apis import export_student
from amkd_plugin.apis.export import resolve_student_config
from amkd_plugin.datasets.digits import digits_to_rgb32
from amkd_plugin.utils import UserInputError

pytestmark = pytest.mark.usefixtures('in_repo_root', 'single_torch_thread')

AMKD_CFG = 'configs/amkd/resnet20_resnet8_digits.py'
# A study's variant of the pair (KD on raw logits), for --fragments.
NO_LS = 'configs/experiments/logits/no_ls.py'
TEACHER_CFG = 'configs/teachers/resnet20_digits.py'
TOOL = 'tools/export_student.py'
NUM_IMAGES = 32


# ---------------------------------------------------------------- helpers


def build_classifier(model_cfg: Dict) -> torch.nn.Module:
    from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(copy.deepcopy(model_cfg))


def logits(model: torch.nn.Module, batch: Dict) -> torch.Tensor:
    """The model's own preprocessing, then its logits, in eval mode."""
    model.eval()
    with torch.no_grad():
        inputs = model.data_preprocessor(copy.deepcopy(batch))['inputs']
        return model(inputs, mode='tensor')


def top1(result: subprocess.CompletedProcess) -> float:
    """accuracy/top1 from the table tools/test.py prints."""
    found = re.findall(r'^accuracy/top1\s+([\d.]+)\s*$', result.stdout,
                       re.MULTILINE)
    assert len(found) == 1, tail(result)
    return float(found[0])


# --------------------------------------------------------------- fixtures


@pytest.fixture(scope='module')
def tool() -> ModuleType:
    return load_tool(TOOL)


@pytest.fixture(scope='module')
def amkd_cfg() -> Config:
    return Config.fromfile(AMKD_CFG)


@pytest.fixture(scope='module')
def digits_batch() -> Dict:
    """Raw test-split-like digits as the dataloader gives them (uint8 CHW)."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    images = digits_to_rgb32(digits.images[:NUM_IMAGES])
    return dict(inputs=[
        torch.from_numpy(image).permute(2, 0, 1).contiguous()
        for image in images
    ])


@pytest.fixture(scope='module')
def algorithm(amkd_cfg, trained_digits_teacher) -> torch.nn.Module:
    """AMKDDistill of the digits config, its student moved from init."""
    from mmrazor.registry import MODELS
    model_cfg = copy.deepcopy(amkd_cfg.model)
    model_cfg.teacher_ckpt = str(trained_digits_teacher)
    # As the Runner does: the top-level preprocessor goes into the model.
    model_cfg.setdefault('data_preprocessor', amkd_cfg.data_preprocessor)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmrazor'):
        algorithm = MODELS.build(model_cfg)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for param in algorithm.student.parameters():
            param.add_(0.1 * torch.randn(param.shape, generator=generator))
        for module in algorithm.student.modules():
            if isinstance(module, _BatchNorm):
                module.running_mean.normal_(0, 0.5, generator=generator)
                module.running_var.uniform_(0.5, 2.0, generator=generator)
                module.num_batches_tracked.fill_(42)
    # SingleTeacherDistill.train() returns None, so eval() is no chain.
    algorithm.eval()
    return algorithm


@pytest.fixture(scope='module')
def distill_ckpt(algorithm, tmp_path_factory) -> Path:
    """The algorithm saved as MMEngine's CheckpointHook saves it."""
    state_dict = algorithm.state_dict()
    assert any(key.startswith('teacher.') for key in state_dict)
    # A distiller with trainable parts (FitNet's connectors) saves them as
    # distiller.*; the digits AMKD distiller has none, so add one.
    state_dict['distiller.connectors.loss_s4_sfeat.weight'] = torch.ones(2)
    optimizer = torch.optim.SGD(algorithm.student.parameters(), lr=0.1)
    checkpoint = dict(
        meta=dict(
            epoch=3,
            iter=66,
            seed=0,
            dataset_meta=dict(classes=tuple(str(i) for i in range(10)))),
        state_dict=state_dict,
        message_hub=dict(log_scalars={}, runtime_info=dict(epoch=3),
                         resumed_keys={}),
        optimizer=optimizer.state_dict(),
        param_schedulers=[])
    path = tmp_path_factory.mktemp('distill') / 'epoch_3.pth'
    torch.save(checkpoint, path)
    return path


@pytest.fixture(scope='module')
def exported(distill_ckpt, tmp_path_factory):
    """The export of distill_ckpt; the config's teacher_ckpt is not there,
    which must not matter: the export never builds the teacher."""
    assert not Path(Config.fromfile(AMKD_CFG).model.teacher_ckpt).is_file()
    out_dir = tmp_path_factory.mktemp('export') / 'student'
    return export_student(AMKD_CFG, str(distill_ckpt), str(out_dir),
                          {'test_dataloader.batch_size': 50})


# ------------------------------------------------------------ fast tests


def test_writes_student_config(exported, amkd_cfg):
    cfg = Config.fromfile(exported.config)
    assert Path(exported.config).name == 'student.py'
    assert cfg.default_scope == 'mmpretrain'
    assert cfg.custom_imports == dict(
        imports=['amkd_plugin'], allow_failed_imports=False)
    student = cfg.model
    assert student.type == 'ImageClassifier'
    assert student._scope_ == 'mmpretrain'
    assert student.backbone == dict(type='CIFARResNet', depth=8)
    assert student.head.num_classes == 10
    # Normalised as in training: the distillation config's preprocessor.
    assert student.data_preprocessor == amkd_cfg.data_preprocessor
    text = Path(exported.config).read_text()
    for distillation in ('teacher', 'distiller', 'architecture',
                         'AdversarialBoundaryHook', 'mmrazor'):
        assert distillation not in text
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper',
                'param_scheduler', 'custom_hooks', 'train_pipeline',
                'data_preprocessor'):
        assert key not in cfg
    # Evaluation and runtime as in the source, --cfg-options merged.
    assert cfg.test_dataloader.batch_size == 50
    assert cfg.test_dataloader.dataset == amkd_cfg.test_dataloader.dataset
    assert cfg.val_dataloader == amkd_cfg.val_dataloader
    for key in ('test_evaluator', 'val_evaluator', 'test_cfg', 'val_cfg',
                'env_cfg', 'default_hooks'):
        assert cfg[key] == amkd_cfg[key], key


def test_writes_student_weights_only(exported, algorithm, distill_ckpt):
    checkpoint = torch.load(exported.checkpoint, weights_only=True)
    assert set(checkpoint) == {'meta', 'state_dict'}
    state_dict = checkpoint['state_dict']
    assert not [
        key for key in state_dict
        if key.startswith(('teacher.', 'distiller.', 'architecture.'))
    ]
    expected = algorithm.student.state_dict()
    assert list(state_dict) == list(expected)
    for key, value in expected.items():
        assert torch.equal(state_dict[key], value), key
    # torch's module versions (used by BN loading) follow the renaming.
    assert '' in state_dict._metadata and 'backbone' in state_dict._metadata
    assert not [key for key in state_dict._metadata if 'architecture' in key]

    meta = checkpoint['meta']
    assert meta['source_config'] == AMKD_CFG
    assert meta['source_checkpoint'] == str(distill_ckpt)
    assert meta['source_checkpoint_sha256'] == hashlib.sha256(
        distill_ckpt.read_bytes()).hexdigest()
    assert (meta['epoch'], meta['iter']) == (3, 66)
    assert meta['dataset_meta']['classes'][:2] == ('0', '1')
    assert meta['cfg_options'] == {'test_dataloader.batch_size': 50}
    teacher_keys = len(algorithm.teacher.state_dict())  # folded: no BN
    assert exported.left_out == f'teacher.* ({teacher_keys}), distiller.* (1)'


def test_loads_strictly_into_exported_config(exported):
    model = build_classifier(Config.fromfile(exported.config).model)
    state_dict = torch.load(exported.checkpoint,
                            weights_only=True)['state_dict']
    model.load_state_dict(state_dict, strict=True)


def test_round_trip_gives_student_logits(exported, algorithm, digits_batch):
    model = build_classifier(Config.fromfile(exported.config).model)
    model.load_state_dict(
        torch.load(exported.checkpoint, weights_only=True)['state_dict'])
    # The algorithm's way: its preprocessor, then the student.
    algorithm.eval()
    with torch.no_grad():
        inputs = algorithm.data_preprocessor(
            copy.deepcopy(digits_batch))['inputs']
        expected = algorithm.student(inputs, mode='tensor')
    actual = logits(model, digits_batch)
    assert actual.shape == (NUM_IMAGES, 10)
    assert torch.allclose(actual, expected, atol=1e-5)
    assert torch.equal(actual.argmax(1), expected.argmax(1))
    # The student's own preprocessor does not normalise: had the export
    # kept it, the logits would differ.
    own = logits(algorithm.student, digits_batch)
    assert not torch.allclose(own, expected, atol=1e-3)


def test_mmpretrain_init_model_loads_it(exported, algorithm, digits_batch):
    from mmpretrain.apis import init_model
    model = init_model(exported.config, exported.checkpoint, device='cpu')
    assert model._dataset_meta['classes'][9] == '9'
    expected = logits(model, digits_batch)
    with torch.no_grad():
        inputs = algorithm.data_preprocessor(
            copy.deepcopy(digits_batch))['inputs']
        student = algorithm.student(inputs, mode='tensor')
    assert torch.allclose(expected, student, atol=1e-5)
    assert torch.equal(expected.argmax(1), student.argmax(1))


def test_student_of_another_architecture_is_refused(distill_ckpt, tmp_path):
    with pytest.raises(UserInputError, match='does not fit the student') as e:
        export_student(
            AMKD_CFG, str(distill_ckpt), str(tmp_path), {
                'model.architecture.cfg_path':
                'configs/_base_/models/resnet14.py'
            })
    assert '\n' not in str(e.value)
    assert not list(tmp_path.iterdir())  # nothing written


def test_package_student_config_is_refused():
    with pytest.raises(UserInputError, match='package config'):
        resolve_student_config(
            dict(cfg_path='mmpretrain::resnet/resnet18_8xb32_in1k.py'))


def test_checkpoint_without_student_is_refused(trained_digits_teacher,
                                               tmp_path):
    with pytest.raises(UserInputError, match='no student weights'):
        export_student(AMKD_CFG, str(trained_digits_teacher), str(tmp_path))


@pytest.mark.parametrize('case', ['plain config', 'missing checkpoint',
                                  'corrupt checkpoint'])
def test_bad_input_exits_with_one_line(tool, distill_ckpt, tmp_path,
                                       monkeypatch, case):
    config, checkpoint, expected = {
        'plain config': (TEACHER_CFG, distill_ckpt,
                         'is not a distillation config'),
        'missing checkpoint': (AMKD_CFG, tmp_path / 'none.pth',
                               'does not exist'),
        'corrupt checkpoint': (AMKD_CFG, tmp_path / 'bad.pth',
                               'cannot be read'),
    }[case]
    (tmp_path / 'bad.pth').write_bytes(b'not a checkpoint')
    monkeypatch.setattr(
        sys, 'argv',
        [TOOL, config, str(checkpoint), str(tmp_path / 'out')])
    with pytest.raises(SystemExit) as exit_info:
        tool.main()
    message = exit_info.value.code
    assert message.startswith('error: ') and expected in message, message
    assert '\n' not in message
    assert not (tmp_path / 'out').exists()


# ------------------------------------------------- command lines (slow)


@pytest.mark.slow
@pytest.mark.parametrize('case', ['plain config', 'missing checkpoint'])
def test_cli_bad_input(distill_ckpt, tmp_path, case):
    config, checkpoint, expected = {
        'plain config': (TEACHER_CFG, distill_ckpt,
                         'is not a distillation config'),
        'missing checkpoint': (AMKD_CFG, tmp_path / 'none.pth',
                               'does not exist'),
    }[case]
    result = run([sys.executable, TOOL, config, checkpoint, tmp_path / 'out'])
    assert result.returncode != 0, tail(result)
    assert 'Traceback' not in result.output, tail(result)
    errors = [line for line in result.stderr.splitlines()
              if line.startswith('error: ')]
    assert len(errors) == 1 and expected in errors[0], tail(result)


@pytest.mark.slow
def test_train_export_and_test(trained_digits_teacher, tmp_path):
    """A real runner checkpoint, exported and evaluated by the tools, all
    three with the same config fragment (a study's variant of the pair).

    tools/test.py must give the exported student the accuracy it gives the
    distillation checkpoint: same weights, same preprocessing.
    """
    work_dir = tmp_path / 'amkd'
    teacher = f'model.teacher_ckpt={trained_digits_teacher}'
    fragments = ['--fragments', NO_LS]
    assert_ok(run([
        sys.executable, 'tools/train.py', AMKD_CFG, *fragments, '--work-dir',
        work_dir, '--no-validate', '--cfg-options', teacher,
        'train_cfg.max_epochs=1',
        'train_dataloader.dataset.indices=128',
        'default_hooks.checkpoint.interval=1'
    ]))
    checkpoint = work_dir / 'epoch_1.pth'
    out_dir = tmp_path / 'student'

    export = run(
        [sys.executable, TOOL, AMKD_CFG, checkpoint, out_dir, *fragments])
    assert_ok(export)
    student_cfg, student_ckpt = out_dir / 'student.py', out_dir / 'student.pth'
    assert student_cfg.is_file() and student_ckpt.is_file()
    assert (f'python tools/test.py {student_cfg} {student_ckpt}'
            in export.stdout), tail(export)
    assert 'ImageClassificationInferencer' in export.stdout
    assert 'init_model' in export.stdout
    meta = torch.load(student_ckpt, weights_only=True)['meta']
    assert (meta['epoch'], meta['iter']) == (1, 2)
    assert meta['source_fragments'] == [NO_LS]

    evaluated = run([
        sys.executable, 'tools/test.py', student_cfg, student_ckpt,
        '--work-dir', tmp_path / 'test_student'
    ])
    assert_ok(evaluated)
    assert 'accuracy/top1' in evaluated.stdout
    source = run([
        sys.executable, 'tools/test.py', AMKD_CFG, checkpoint, *fragments,
        '--work-dir', tmp_path / 'test_amkd', '--cfg-options', teacher
    ])
    assert_ok(source)
    assert top1(evaluated) == top1(source)
