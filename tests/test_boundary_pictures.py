# Copyright (c) amkd-mmrazor contributors.
"""tools/analysis/boundary_pictures.py: boundary samples and their paths.

The briefly trained ResNet20 digits teacher of conftest.py
(``trained_digits_teacher``) classifies most held-out digits correctly.
Its checkpoint serves as the "student" classifier checkpoint and as
``--teacher``: the student is the teacher itself, so its curves must equal
the teacher's. The command line is run for the PNG and for the error of a
classifier config without ``--teacher``; subprocesses get
``OMP_NUM_THREADS=1`` unless the caller sets it.
"""
import copy
import sys
from types import ModuleType
from typing import Sequence

import helpers
import pytest
import torch
from helpers import assert_ok, tail
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope
from mmpretrain.models import ClsDataPreprocessor
from PIL import Image

import amkd_plugin  # noqa: F401  (registers the models and datasets)
from amkd_plugin.apis import pictures
from amkd_plugin.models.task_modules import BoundaryFidelity

pytestmark = pytest.mark.usefixtures('in_repo_root', 'single_torch_thread')

TOOL = 'tools/analysis/boundary_pictures.py'
TEACHER_CFG = 'configs/teachers/resnet20_digits.py'
AMKD_CFG = 'configs/amkd/resnet20_resnet8_digits.py'
TIMEOUT = 300


def run(args: Sequence):
    return helpers.run([sys.executable, TOOL, *args], timeout=TIMEOUT)


@pytest.fixture(scope='module')
def tool() -> ModuleType:
    """The library the tool calls."""
    return pictures


@pytest.fixture(scope='module')
def student_is_teacher(tool, trained_digits_teacher):
    """(cfg, model, student, teacher, fidelity): the classifier config
    with the teacher's checkpoint, and the same as --teacher."""
    cfg = Config.fromfile(TEACHER_CFG)
    cfg.test_dataloader.batch_size = 16
    with DefaultScope.overwrite_default_scope('mmrazor'):
        fidelity = BoundaryFidelity()
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model, student, teacher = tool.build_models(
            cfg, TEACHER_CFG, str(trained_digits_teacher),
            (TEACHER_CFG, str(trained_digits_teacher)))
    return cfg, model, student, teacher, fidelity


def test_paths_cross_the_teacher_boundary(tool, student_is_teacher):
    """Teacher: b at t = 0, not b at t = 1; the student-teacher agrees."""
    cfg, model, student, teacher, fidelity = student_is_teacher
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        dataloader = tool.build_dataloader(cfg, 'test')
    ts = tool.path_ts(21)
    paths = tool.boundary_paths(student, teacher, model.data_preprocessor,
                                dataloader, 3, fidelity, ts)
    assert student is model and teacher is not model
    assert len(paths) == 3
    assert ts[0] == 0.0 and ts[-1] == 2.0 and 1.0 in ts
    at_zero, at_one = ts.index(0.0), ts.index(1.0)
    dataset = dataloader.dataset
    indices = [path['sample_idx'] for path in paths]
    assert indices == sorted(set(indices))
    for path in paths:
        b, k = path['b'], path['k']
        assert b != k
        assert b == int(dataset[path['sample_idx']]['data_samples'].gt_label)
        probs = path['teacher_probs']
        assert probs.shape == (len(ts), 10)
        # What the tool promises: the path starts in b and crosses the
        # teacher's boundary at t = 1, having moved toward k. At t = 1
        # itself b lost by a few ulps (recomputed in another batch, it may
        # win by as few), and which class took over is a near-tie: the
        # grid points around t = 1 carry the claim.
        before = ts.index(max(t for t in ts if t < 1))
        after = ts.index(min(t for t in ts if t > 1))
        assert int(probs[at_zero].argmax()) == b
        assert int(probs[before].argmax()) == b
        assert int(probs[after].argmax()) != b
        log_probs = probs[at_one].log()
        others = torch.cat([log_probs[:b], log_probs[b + 1:]])
        assert others.max() - log_probs[b] > -1e-4
        log_odds = (probs[:, b] / probs[:, k]).log()
        assert log_odds[at_one] < log_odds[at_zero]
        # The student is the teacher: identical curves.
        torch.testing.assert_close(path['student_probs'], probs)
        # Undoing the preprocessing gives the dataset's pixels back.
        pixels = tool.display_pixels(path['clean'][None],
                                     model.data_preprocessor)
        original = dataset[path['sample_idx']]['inputs'].permute(1, 2, 0)
        assert abs(pixels[0] - original.numpy()).max() < 1e-3


def test_batches_the_teacher_gets_all_wrong_are_skipped(
        tool, student_is_teacher):
    """No teacher-correct image in a batch: nothing to attack, no crash."""
    cfg, model, student, teacher, fidelity = student_is_teacher
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        dataset = tool.build_dataloader(cfg, 'test').dataset
    batch = pseudo_collate([dataset[i] for i in range(4)])
    with torch.no_grad():
        inputs = model.data_preprocessor(batch, False)['inputs']
        wrong = (teacher(inputs, mode='tensor').argmax(1) + 1) % 10
    for sample, label in zip(batch['data_samples'], wrong):
        sample.set_gt_label(int(label))
    assert tool.boundary_paths(student, teacher, model.data_preprocessor,
                               [batch], 2, fidelity, (0.0, 1.0)) == []


def test_distillation_config_gives_student_and_teacher(
        tool, trained_digits_teacher, tmp_path):
    """model.student and model.teacher; --teacher replaces the teacher."""
    from mmengine.registry import MODELS
    cfg = Config.fromfile(AMKD_CFG)
    cfg.merge_from_dict({'model.teacher_ckpt': str(trained_digits_teacher)})
    with DefaultScope.overwrite_default_scope('mmrazor'):
        model_cfg = copy.deepcopy(cfg.model)
        model_cfg['data_preprocessor'] = cfg.data_preprocessor
        checkpoint = tmp_path / 'amkd.pth'
        torch.save(
            dict(state_dict=MODELS.build(model_cfg).state_dict()), checkpoint)
        model, student, teacher = tool.build_models(cfg, AMKD_CFG,
                                                    str(checkpoint))
        assert student is model.student and teacher is model.teacher
        _, _, other = tool.build_models(
            cfg, AMKD_CFG, str(checkpoint),
            (TEACHER_CFG, str(trained_digits_teacher)))
    assert other is not model.teacher and not other.training


@pytest.mark.slow  # a subprocess
def test_command_writes_png_of_expected_size(tool, trained_digits_teacher,
                                             tmp_path):
    out = tmp_path / 'pictures' / 'boundary.png'
    dpi = 40
    result = run([
        TEACHER_CFG, trained_digits_teacher, '--teacher', TEACHER_CFG,
        trained_digits_teacher,
        '--num-images', 2, '--dpi', dpi, '--out', out, '--points', 11,
        '--device', 'cpu', '--cfg-options', 'test_dataloader.batch_size=16'
    ])
    assert_ok(result)
    assert f'Wrote {out}' in result.stdout, tail(result)
    with Image.open(out) as image:
        assert image.format == 'PNG'
        assert image.size == tool.figure_size(2, dpi) == (400, 176)


@pytest.mark.slow  # a subprocess
def test_classifier_config_without_teacher_is_one_line_error(
        trained_digits_teacher, tmp_path):
    result = run([
        TEACHER_CFG, trained_digits_teacher, '--out', tmp_path / 'x.png',
        '--device', 'cpu'
    ])
    assert result.returncode != 0, tail(result)
    assert 'Traceback' not in result.output, tail(result)
    errors = [line for line in result.stderr.splitlines()
              if line.startswith('error:')]
    assert len(errors) == 1 and '--teacher' in errors[0], tail(result)
    assert not (tmp_path / 'x.png').exists()


@pytest.mark.parametrize('to_rgb, bgr, order', [
    (False, False, [0, 1, 2]),  # shown in the dataset's (the input's) order
    (False, True, [2, 1, 0]),  # a BGR input, shown as RGB
    (True, False, [0, 1, 2]),  # the preprocessor made the input RGB
])
def test_display_pixels_undo_the_preprocessing(tool, to_rgb, bgr, order):
    preprocessor = ClsDataPreprocessor(
        mean=[10., 20., 30.], std=[2., 4., 8.], to_rgb=to_rgb)
    pixels = torch.randint(0, 256, (2, 3, 4, 5), dtype=torch.uint8)
    inputs = preprocessor(dict(inputs=list(pixels)), False)['inputs']
    shown = tool.display_pixels(inputs, preprocessor, bgr)
    # The model's input channels, un-normalised, in the order given.
    model_order = pixels.flip(1) if to_rgb else pixels
    expected = model_order[:, order].permute(0, 2, 3, 1).float().numpy()
    assert shown.shape == (2, 4, 5, 3)
    assert abs(shown - expected).max() < 1e-3
