# Copyright (c) amkd-mmrazor contributors.
"""Helpers the test modules share: running the tools, near-copy students.

Imported as ``helpers`` (pytest puts this folder on ``sys.path``); the
mmrazor wheel installs a top-level ``tests`` package, so never
``tests.helpers``. Fixtures live in conftest.py.
"""
import importlib.util
import json
import os
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch
from torch.nn.modules.batchnorm import _BatchNorm

from amkd_plugin.checkpoints import load_teacher_checkpoint
# The tests' torchrun launches take the library's free port.
from amkd_plugin.utils.dist import free_port  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
TOOL_TIMEOUT = 600


def run(args: Sequence,
        env: Optional[dict] = None,
        timeout: int = TOOL_TIMEOUT) -> subprocess.CompletedProcess:
    """Run a command from the repository root and capture its output.

    Subprocesses get ``OMP_NUM_THREADS=1`` unless the caller sets it: on a
    small shared CPU machine, several OpenMP threads per process fighting
    for cores make each step many times slower.
    """
    full_env = {**os.environ, **(env or {})}
    full_env.setdefault('OMP_NUM_THREADS', '1')
    result = subprocess.run([str(arg) for arg in args],
                            cwd=REPO,
                            env=full_env,
                            capture_output=True,
                            text=True,
                            timeout=timeout)
    result.output = result.stdout + result.stderr
    return result


def tail(result: subprocess.CompletedProcess, chars: int = 6000) -> str:
    return f'exit {result.returncode}; output ends:\n{result.output[-chars:]}'


def assert_ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, tail(result)
    assert 'Traceback' not in result.output, tail(result)


def assert_user_error(result: subprocess.CompletedProcess,
                      *expected: str) -> None:
    """A nonzero exit with one clear message on stderr, no traceback."""
    assert result.returncode != 0, tail(result)
    assert 'Traceback' not in result.output, tail(result)
    errors = [line for line in result.stderr.splitlines()
              if line.startswith('error: ')]
    assert len(errors) == 1, tail(result)
    for text in expected:
        assert text in errors[0], (text, tail(result))


def assert_same_bank(bank: Path, reference: Path,
                     resumed: Optional[bool] = None) -> None:
    """Two committed banks hold the same bytes in every array and the same
    meta.json but for its account of the build (``resumed`` says whether
    ``bank``'s build took a stopped one over, if given)."""
    assert sorted(os.listdir(bank)) == sorted(os.listdir(reference))
    for name in os.listdir(reference):
        if name != 'meta.json':
            assert (Path(bank) / name).read_bytes() == (
                Path(reference) / name).read_bytes(), name
    meta = [json.loads((Path(path) / 'meta.json').read_text())
            for path in (bank, reference)]
    builds = [m.pop('build') for m in meta]
    assert meta[0] == meta[1]
    if resumed is not None:
        assert [b['resumed'] for b in builds] == [resumed, False]


def load_tool(path: str) -> ModuleType:
    """Import a tool of ``tools/``, which is not in a package."""
    spec = importlib.util.spec_from_file_location(
        Path(path).stem, REPO / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_student_near_copy(algorithm: torch.nn.Module,
                           teacher_ckpt: str) -> torch.nn.Module:
    """Make the student a near copy of the teacher (``teacher_ckpt``, of
    the student's architecture), BatchNorm in eval mode.

    Both then get nearly every image right, so the attack has candidates,
    and their outputs still differ (a little noise on the classifier), so
    the selection's disagreement is not a tie.
    """
    load_teacher_checkpoint(algorithm.student, teacher_ckpt, None)
    with torch.no_grad():
        gen = torch.Generator().manual_seed(0)
        fc = algorithm.student.head.fc
        fc.weight.add_(0.02 * torch.randn(fc.weight.shape, generator=gen))
    algorithm.train()
    for module in algorithm.student.modules():
        if isinstance(module, _BatchNorm):
            module.eval()
    return algorithm


Losses = Dict[str, torch.Tensor]


def student_step(algorithm: torch.nn.Module,
                 forward_loss: Callable[[torch.nn.Module, dict], Losses],
                 data: dict) -> Tuple[Losses, Losses]:
    """The losses ``forward_loss(algorithm, data)`` of one step and the
    student's gradients of their sum, by parameter name."""
    algorithm.student.zero_grad()
    losses = forward_loss(algorithm, data)
    sum(losses.values()).backward()
    return losses, {name: p.grad.clone()
                    for name, p in algorithm.student.named_parameters()
                    if p.grad is not None}


def assert_same_step(first: Tuple[Losses, Losses],
                     second: Tuple[Losses, Losses]) -> None:
    """Two :func:`student_step` results equal up to float32 noise in the
    teacher's logits on the boundary samples.

    Absolutely, not relatively: a near-copy student
    (:func:`make_student_near_copy`) leaves a boundary KD of about 2e-5, a
    KL of nearly equal distributions, which float32 noise of the teacher's
    logits (about 1e-6 after standardization) moves by about 1e-6 once
    scaled by the loss weight 9 and tau^2 = 4: a large fraction of so small
    a loss on some CPUs.
    """
    (losses, grads), (other_losses, other_grads) = first, second
    assert losses.keys() == other_losses.keys()
    for name in losses:
        torch.testing.assert_close(losses[name], other_losses[name],
                                   rtol=1e-4, atol=1e-5, msg=name)
    assert grads.keys() == other_grads.keys()
    for name in grads:
        torch.testing.assert_close(grads[name], other_grads[name],
                                   rtol=1e-3, atol=1e-5, msg=name)
