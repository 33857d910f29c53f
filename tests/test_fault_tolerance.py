# Copyright (c) amkd-mmrazor contributors.
"""Faults that must not waste a run: a NaN loss, a kill while saving, a
truncated newest checkpoint, a killed bank build, a killed rank.

The unit tests drive the parts directly; the ``slow`` ones run the tools.
"""
import logging
import os
import os.path as osp
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from helpers import (REPO, assert_ok, assert_same_bank, assert_user_error,
                     free_port, run, tail)
from mmengine.config import Config
from mmengine.fileio import get_file_backend
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from mmengine.registry import HOOKS

import amkd_plugin  # noqa: F401  (registers the parts)
from amkd_plugin.bank import BoundaryBankFile
from amkd_plugin.engine import AtomicLocalBackend
from amkd_plugin.engine.hooks import (NonFiniteLossError, NonFiniteLossHook,
                                      PreemptionHook, non_finite_loss_hook)
from amkd_plugin.apis import resume_checkpoint
from amkd_plugin.utils import (DiskFullError, UserInputError, lock_work_dir,
                               write_atomically)

NAN, INF = float('nan'), float('inf')

# ------------------------------------------------------- NonFiniteLossHook


def fake_runner(iteration: int = 11, epoch: int = 2, last_ckpt=None,
                optim_wrapper=None) -> SimpleNamespace:
    hub = MessageHub.get_instance('test_fault_tolerance')
    hub.update_info('last_ckpt', last_ckpt)
    return SimpleNamespace(iter=iteration, epoch=epoch, message_hub=hub,
                           optim_wrapper=optim_wrapper)


def outputs(**values) -> dict:
    return {name.replace('__', '.'): torch.tensor(value)
            for name, value in values.items()}


def test_non_finite_loss_hook_is_on_by_default():
    assert isinstance(HOOKS.build(dict(type='NonFiniteLossHook')),
                      NonFiniteLossHook)
    for config in ('configs/amkd/resnet56_resnet20_cifar100.py',
                   'configs/teachers/resnet20_fashion_mnist.py',
                   'configs/kd/resnet20_resnet8_fashion_mnist_lowdata.py'):
        cfg = Config.fromfile(str(REPO / config))
        assert cfg.default_hooks.non_finite_loss.type == 'NonFiniteLossHook'


def test_finite_losses_pass():
    hook = NonFiniteLossHook()
    logged = outputs(loss=1.5, student__loss=1.0, distill__loss_kd=0.5)
    hook.after_train_iter(fake_runner(), 0, outputs=logged)
    assert set(logged) == {'loss', 'student.loss', 'distill.loss_kd'}


@pytest.mark.parametrize('bad', [NAN, INF, -INF])
def test_first_non_finite_loss_stops_with_one_line(bad):
    hook = NonFiniteLossHook()
    runner = fake_runner(iteration=11, epoch=2,
                         last_ckpt='work_dirs/x/epoch_2.pth')
    with pytest.raises(NonFiniteLossError) as error:
        hook.after_train_iter(
            runner, 3,
            outputs=outputs(loss=bad, student__loss=1.0,
                            distill__loss_kd=bad, boundary_reached=NAN))
    message = str(error.value)
    assert '\n' not in message
    assert message.startswith(
        f'Non-finite loss at iteration 12 (epoch 3): loss = {bad}, '
        f'distill.loss_kd = {bad}; training stopped')
    assert 'student.loss' not in message
    # Not a loss, not summed into one: a NaN statistic is no reason to stop.
    assert 'boundary_reached' not in message
    assert 'last checkpoint: work_dirs/x/epoch_2.pth' in message
    for fix in ('optim_wrapper.optimizer.lr', 'clip_grad', 'loss_scale',
                'default_hooks.non_finite_loss.max_skips'):
        assert fix in message
    assert isinstance(error.value, UserInputError)  # the tools' one line


def test_no_checkpoint_yet_is_said():
    with pytest.raises(NonFiniteLossError, match='last checkpoint: none yet'):
        NonFiniteLossHook().after_train_iter(fake_runner(), 0,
                                             outputs=outputs(loss=NAN))


def test_skips_leave_the_weights_then_stop(monkeypatch):
    logged_lines = []
    monkeypatch.setattr(non_finite_loss_hook, 'print_log',
                        lambda msg, *a, **k: logged_lines.append(msg))
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    runner = fake_runner(optim_wrapper=wrapper)
    hook = NonFiniteLossHook(max_skips=2)
    hook.before_train(runner)
    x = torch.ones(4, 3)

    def step(poison: float) -> dict:
        loss = model(x).sum() * poison
        wrapper.update_params(loss)
        logged = {'loss': loss.detach()}
        hook.after_train_iter(runner, 0, outputs=logged)
        return logged

    before = [p.detach().clone() for p in model.parameters()]
    for skip in (1, 2):
        logged = step(NAN)
        assert logged == {}  # the NaN stays out of the log's window means
        assert all(torch.equal(a, b)
                   for a, b in zip(before, model.parameters()))
        assert all(p.grad is None for p in model.parameters())
        assert logged_lines[-1].endswith(f'({skip} of at most 2 skips).')
    step(1.0)  # a finite loss updates as usual
    assert not torch.equal(before[0], model.weight)
    with pytest.raises(NonFiniteLossError,
                       match='training stopped after 2 skipped steps'):
        step(INF)


def test_max_skips_must_not_be_negative():
    with pytest.raises(ValueError, match='max_skips must be >= 0'):
        NonFiniteLossHook(max_skips=-1)


# ------------------------------------------------------ AtomicLocalBackend


def test_checkpoints_are_saved_through_the_atomic_backend(tmp_path):
    cfg = Config.fromfile(str(REPO / 'configs/_base_/default_runtime.py'))
    args = cfg.default_hooks.checkpoint.backend_args
    backend = get_file_backend(str(tmp_path / 'a.pth'), backend_args=args)
    assert isinstance(backend, AtomicLocalBackend)
    backend.put(b'weights', tmp_path / 'sub' / 'a.pth')
    backend.put_text('epoch_1.pth', tmp_path / 'last_checkpoint')
    assert (tmp_path / 'sub' / 'a.pth').read_bytes() == b'weights'
    assert (tmp_path / 'last_checkpoint').read_text() == 'epoch_1.pth'
    assert sorted(os.listdir(tmp_path)) == ['last_checkpoint', 'sub']


def test_a_kill_while_saving_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / 'epoch_3.pth'
    backend = AtomicLocalBackend()
    backend.put(b'old complete checkpoint', target)

    real_open = open

    class HalfFile:
        """A file whose process is killed half way through the write."""

        def __init__(self, path, mode):
            self.file = real_open(path, mode)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

        def write(self, data):
            self.file.write(data[:len(data) // 2])
            raise KeyboardInterrupt

    monkeypatch.setattr('builtins.open', HalfFile)
    with pytest.raises(KeyboardInterrupt):
        backend.put(b'new checkpoint, longer than the old one', target)
    monkeypatch.undo()
    assert target.read_bytes() == b'old complete checkpoint'
    assert os.listdir(tmp_path) == ['epoch_3.pth']


# -------------------------------------------------------- resume_checkpoint


def save(path: Path, epoch: int) -> Path:
    torch.save(dict(meta=dict(epoch=epoch),
                    state_dict=dict(w=torch.full((2, ), float(epoch)))), path)
    return path


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 3])


@pytest.fixture
def work_dir(tmp_path) -> Path:
    """Checkpoints of epochs 1, 2, 9 and 10 (9 < 10 by number, not text)."""
    for epoch in (1, 2, 9, 10):
        save(tmp_path / f'epoch_{epoch}.pth', epoch)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_10.pth'))
    (tmp_path / 'epoch_11.pth.tmp').write_bytes(b'a kill while saving')
    return tmp_path


@pytest.fixture
def warnings(monkeypatch) -> list:
    lines = []
    monkeypatch.setattr('amkd_plugin.checkpoints.loading.print_log',
                        lambda msg, *a, **k: lines.append((msg, k)))
    return lines


def test_resume_takes_mmengines_choice_when_it_reads(work_dir, warnings):
    assert resume_checkpoint(str(work_dir), 'make') == str(
        work_dir / 'epoch_10.pth')
    assert warnings == []


def test_resume_falls_back_to_the_newest_readable(work_dir, warnings):
    truncate(work_dir / 'epoch_10.pth')
    (work_dir / 'epoch_9.pth').unlink()
    (work_dir / 'epoch_2.pth').write_bytes(b'')

    assert resume_checkpoint(str(work_dir), 'make') == str(
        work_dir / 'epoch_1.pth')
    [(message, kwargs)] = warnings
    assert message == (
        f'Resume: {work_dir / "epoch_10.pth"}, {work_dir / "epoch_2.pth"} '
        f'cannot be read; resuming from {work_dir / "epoch_1.pth"}, the '
        'newest readable checkpoint.')
    assert kwargs['level'] == logging.WARNING


@pytest.mark.parametrize('pointer', ['empty', 'gone'])
def test_resume_without_a_usable_pointer_takes_the_newest(
        pointer, work_dir, warnings):
    text = '' if pointer == 'empty' else str(work_dir / 'epoch_12.pth')
    (work_dir / 'last_checkpoint').write_text(text)
    assert resume_checkpoint(str(work_dir), 'make') == str(
        work_dir / 'epoch_10.pth')
    assert len(warnings) == (pointer == 'gone')


def test_resume_with_nothing_readable_is_one_line(work_dir):
    for name in ('epoch_1.pth', 'epoch_2.pth', 'epoch_9.pth', 'epoch_10.pth'):
        truncate(work_dir / name)
    with pytest.raises(UserInputError,
                       match=r'No checkpoint in .* can be read .*; train '
                       r'again without --resume: `make`'):
        resume_checkpoint(str(work_dir), 'make')


def test_resume_in_an_empty_work_dir_starts_afresh(tmp_path):
    assert resume_checkpoint(str(tmp_path), 'make') is None
    assert resume_checkpoint(str(tmp_path / 'not_yet'), 'make') is None


# ------------------------------------------------ stale bank build folders


def test_stale_partial_bank_builds_are_removed(tmp_path):
    host = socket.gethostname()
    dead_pid = _ended_pid()  # a process of this machine that is gone
    stale = tmp_path / f'abc.partial-{host}-{dead_pid}-0123abcd'
    running = tmp_path / f'abc.partial-{host}-{os.getpid()}-89abcdef'
    elsewhere = tmp_path / f'abc.partial-other-host-{dead_pid}-0123abcd'
    bank = tmp_path / 'abc'
    for folder in (stale, running, elsewhere, bank):
        folder.mkdir()
        (folder / 'delta.npy').write_bytes(b'x')

    assert BoundaryBankFile.stale_partials(str(tmp_path), of='abc') == [
        str(stale)]
    assert BoundaryBankFile.stale_partials(str(tmp_path), of='ab') == []
    assert BoundaryBankFile.remove_stale_partials(str(tmp_path)) == [
        str(stale)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (running, elsewhere, bank))


def _ended_pid() -> int:
    child = subprocess.Popen([sys.executable, '-c', 'pass'])
    child.wait()
    return child.pid


# ---------------------------------------------------- the tools, end to end

DIGITS_TEACHER_CFG = 'configs/teachers/resnet20_digits.py'
DIGITS_AMKD_CFG = 'configs/amkd/resnet20_resnet8_digits.py'
# The digits pair with the online first-order attack.
ONLINE = ['model.boundary.type=OnlineBoundary',
          'model.boundary.attack.max_steps=3']
# 256 training digits; a checkpoint every epoch, no validation in between.
SMALL = ['train_dataloader.dataset.indices=256', 'train_cfg.val_interval=100',
         'default_hooks.checkpoint.interval=1',
         'default_hooks.logger.interval=1']


def train(config: str, work_dir: Path, *options: str,
          resume: bool = False) -> subprocess.CompletedProcess:
    return run([sys.executable, 'tools/train.py', config, '--work-dir',
                work_dir, *(['--resume'] if resume else []),
                '--cfg-options', *SMALL, *options])


@pytest.mark.slow
def test_nan_loss_stops_the_run_at_once(tmp_path, trained_digits_teacher):
    """The issue's case: lr 1e12, no clipping, on the digits AMKD config."""
    result = train(DIGITS_AMKD_CFG, tmp_path,
                   f'model.teacher_ckpt={trained_digits_teacher}',
                   'optim_wrapper.optimizer.lr=1e12',
                   'optim_wrapper.clip_grad=None')
    assert_user_error(result, 'Non-finite loss at iteration ', '(epoch 1)',
                      'last checkpoint: none yet')
    assert 'Epoch(train) [2]' not in result.output, tail(result)
    assert not list(tmp_path.glob('epoch_*.pth'))


@pytest.mark.slow
def test_resume_skips_a_truncated_newest_checkpoint(tmp_path):
    assert_ok(train(DIGITS_TEACHER_CFG, tmp_path, 'train_cfg.max_epochs=2'))
    truncate(tmp_path / 'epoch_2.pth')

    result = train(DIGITS_TEACHER_CFG, tmp_path, 'train_cfg.max_epochs=3',
                   resume=True)

    assert_ok(result)
    assert (f'Resume: {tmp_path / "epoch_2.pth"} cannot be read; resuming '
            f'from {tmp_path / "epoch_1.pth"}') in result.output
    assert 'resumed epoch: 1' in result.output, tail(result)
    assert 'Epoch(train) [2]' in result.output
    torch.load(tmp_path / 'epoch_3.pth', weights_only=True)
    torch.load(tmp_path / 'epoch_2.pth', weights_only=True)  # saved again


def children(pid: int) -> list:
    """The pids of a process's children (Linux)."""
    text = Path(f'/proc/{pid}/task/{pid}/children').read_text()
    return [int(child) for child in text.split()]


@pytest.mark.slow
@pytest.mark.skipif(not osp.isdir('/proc'), reason='finds ranks in /proc')
def test_a_killed_rank_loses_nothing_past_the_last_checkpoint(
        tmp_path, trained_digits_teacher):
    """2 gloo ranks of online AMKD; one is killed after the epoch-2
    checkpoint, which ends the group; the same command with --resume ends
    with the uninterrupted run's weights, bit for bit."""
    options = ['--cfg-options', *SMALL, *ONLINE, 'train_cfg.max_epochs=5',
               'env_cfg.dist_cfg.backend=gloo',
               f'model.teacher_ckpt={trained_digits_teacher}']

    def dist_train(work_dir: Path, *extra: str) -> subprocess.Popen:
        env = {**os.environ, 'PYTHON': sys.executable,
               'PORT': str(free_port()), 'OMP_NUM_THREADS': '1'}
        return subprocess.Popen(
            ['bash', 'tools/dist_train.sh', DIGITS_AMKD_CFG, '2',
             '--work-dir', str(work_dir), *extra, *options],
            cwd=REPO, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)

    def finish(job: subprocess.Popen) -> str:
        output, _ = job.communicate(timeout=600)
        assert job.returncode == 0, errors(output)
        return output

    finish(dist_train(tmp_path / 'straight'))

    killed = tmp_path / 'killed'
    job = dist_train(killed)
    deadline = time.time() + 600
    while not (killed / 'epoch_2.pth').exists():
        assert job.poll() is None and time.time() < deadline, errors(
            job.communicate()[0])
        time.sleep(0.02)
    os.kill(children(job.pid)[-1], signal.SIGKILL)
    job.communicate(timeout=600)
    assert job.returncode != 0  # torchrun ends the group
    assert not (killed / 'epoch_5.pth').exists()

    output = finish(dist_train(killed, '--resume'))
    assert 'resumed epoch: ' in output, output[-4000:]
    a, b = (torch.load(path / 'epoch_5.pth', weights_only=True)['state_dict']
            for path in (tmp_path / 'straight', killed))
    assert a.keys() == b.keys()
    assert [key for key in a if not torch.equal(a[key], b[key])] == []


@pytest.mark.slow
def test_a_restarted_group_resumes_by_itself(tmp_path):
    """What torchrun --max-restarts starts (TORCHELASTIC_RESTART_COUNT > 0)
    resumes from the newest checkpoint without --resume."""
    assert_ok(train(DIGITS_TEACHER_CFG, tmp_path, 'train_cfg.max_epochs=2'))
    result = run([sys.executable, 'tools/train.py', DIGITS_TEACHER_CFG,
                  '--work-dir', tmp_path, '--cfg-options', *SMALL,
                  'train_cfg.max_epochs=3'],
                 env=dict(TORCHELASTIC_RESTART_COUNT='1'))
    assert_ok(result)
    assert 'resumed epoch: 2' in result.output, tail(result)
    assert 'Epoch(train) [1]' not in result.output


def errors(output: str) -> str:
    """The lines of a distributed run's output that say what failed."""
    return '\n'.join(line for line in output.splitlines()
                     if 'rror' in line or 'Traceback' in line)[-4000:]


HOLD = ('import sys, time; from amkd_plugin.utils import lock_work_dir; '
        'lock_work_dir(sys.argv[1], "holder"); print("held", flush=True); '
        'time.sleep(60)')


def test_a_live_training_s_work_dir_is_refused_a_dead_one_s_is_not(
        tmp_path):
    holder = subprocess.Popen([sys.executable, '-c', HOLD, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == 'held\n'
        with pytest.raises(UserInputError) as error:
            lock_work_dir(str(tmp_path), 'second')
        assert str(error.value).startswith(
            f'{tmp_path} is in use by a live training (pid {holder.pid}: '
            'holder)')
    finally:
        holder.kill()  # SIGKILL: no chance to tidy the lock file up
        holder.wait()
    assert (tmp_path / 'train.lock').exists()
    lock_work_dir(str(tmp_path), 'after the holder died')
    assert (tmp_path / 'train.lock').read_text() == (
        f'pid {os.getpid()}: after the holder died\n')


@pytest.mark.slow
def test_a_second_training_in_a_live_work_dir_refuses(tmp_path):
    """The tried case: a second tools/train.py in the work dir of one that
    is training refuses in one line; once the first is killed, training
    there resumes."""
    first = subprocess.Popen(
        [sys.executable, 'tools/train.py', DIGITS_TEACHER_CFG, '--work-dir',
         tmp_path, '--cfg-options', *SMALL, 'train_cfg.max_epochs=50'],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, 'OMP_NUM_THREADS': '1'})
    try:
        deadline = time.time() + 300
        while not (tmp_path / 'epoch_1.pth').exists():
            assert first.poll() is None and time.time() < deadline
            time.sleep(0.5)
        second = train(DIGITS_TEACHER_CFG, tmp_path, 'train_cfg.max_epochs=2')
        assert_user_error(second, f'{tmp_path} is in use by a live training',
                          f'pid {first.pid}')
    finally:
        first.kill()
        first.wait()
    assert_ok(train(DIGITS_TEACHER_CFG, tmp_path, 'train_cfg.max_epochs=2',
                    resume=True))


def sigterm_mid_epoch(command: list, work_dir: Path, marker: str,
                      targets) -> subprocess.CompletedProcess:
    """Start ``command``, SIGTERM ``targets(job)`` once ``marker`` is in
    its output (a log line inside an epoch), collect what it printed."""
    job = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True,
                           env={**os.environ, 'OMP_NUM_THREADS': '1',
                                'PYTHON': sys.executable,
                                'PORT': str(free_port())})
    lines = []
    for line in job.stdout:
        lines.append(line)
        if marker in line:
            for pid in targets(job):
                os.kill(pid, signal.SIGTERM)
            break
    lines += job.stdout.readlines()
    job.wait(timeout=600)
    return subprocess.CompletedProcess(command, job.returncode,
                                       ''.join(lines), '')


def final_weights(work_dir: Path, epochs: int) -> dict:
    return torch.load(work_dir / f'epoch_{epochs}.pth',
                      weights_only=True)['state_dict']


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    assert [key for key in a if not torch.equal(a[key], b[key])] == []


@pytest.mark.slow
def test_sigterm_mid_epoch_saves_and_resumes_bit_for_bit(
        tmp_path, trained_digits_teacher):
    """Online AMKD on 256 digits (4 iterations an epoch): SIGTERM during
    epoch 2; the run finishes its iteration, saves it, stops with one line
    and exit 143; --resume goes on inside the epoch and ends with the
    uninterrupted run's weights."""
    options = [*ONLINE, 'train_cfg.max_epochs=3',
               f'model.teacher_ckpt={trained_digits_teacher}']
    assert_ok(train(DIGITS_AMKD_CFG, tmp_path / 'straight', *options))

    stopped = tmp_path / 'stopped'
    command = [sys.executable, 'tools/train.py', DIGITS_AMKD_CFG,
               '--work-dir', str(stopped), '--cfg-options', *SMALL, *options]
    result = sigterm_mid_epoch(command, stopped, 'Epoch(train) [2][1/4]',
                               lambda job: [job.pid])
    assert result.returncode == 128 + signal.SIGTERM, result.stdout[-3000:]
    lines = [line for line in result.stdout.splitlines()
             if line.startswith('error: ')]
    assert len(lines) == 1 and 'Traceback' not in result.stdout
    saved = sorted(stopped.glob('iter_*.pth'))
    # Iterations 5-8 are epoch 2's: it stops inside the epoch.
    assert len(saved) == 1 and saved[0].name in ('iter_5.pth', 'iter_6.pth',
                                                 'iter_7.pth')
    assert lines[0] == (
        f'error: stopped by SIGTERM after iteration {saved[0].stem[5:]} '
        f'(epoch 2); saved {saved[0]}. Go on with the same command and '
        '--resume.')
    assert not (stopped / 'epoch_2.pth').exists()

    resumed = train(DIGITS_AMKD_CFG, stopped, *options, resume=True)
    assert_ok(resumed)
    assert 'Resumed inside epoch 2: going on from its batch' in \
        resumed.output
    assert_same_weights(final_weights(tmp_path / 'straight', 3),
                        final_weights(stopped, 3))


@pytest.mark.slow
@pytest.mark.skipif(not osp.isdir('/proc'), reason='finds ranks in /proc')
def test_sigterm_to_two_ranks_stops_both_at_one_iteration(
        tmp_path, trained_digits_teacher):
    """As a scheduler does it: SIGTERM to every rank of 2 gloo ranks
    during epoch 2; one checkpoint, written once; --resume ends with the
    uninterrupted run's weights."""
    options = ['--cfg-options', *SMALL, *ONLINE, 'train_cfg.max_epochs=3',
               'env_cfg.dist_cfg.backend=gloo',
               f'model.teacher_ckpt={trained_digits_teacher}']

    def dist_train(work_dir: Path, *extra: str) -> list:
        return ['bash', 'tools/dist_train.sh', DIGITS_AMKD_CFG, '2',
                '--work-dir', str(work_dir), *extra, *options]

    def finish(command: list) -> None:
        job = subprocess.run(command, cwd=REPO, capture_output=True,
                             text=True, timeout=600,
                             env={**os.environ, 'PYTHON': sys.executable,
                                  'PORT': str(free_port()),
                                  'OMP_NUM_THREADS': '1'})
        assert job.returncode == 0, errors(job.stdout + job.stderr)

    finish(dist_train(tmp_path / 'straight'))
    stopped = tmp_path / 'stopped'

    # dist_train.sh execs torchrun, whose children are the ranks.
    result = sigterm_mid_epoch(dist_train(stopped), stopped,
                               'Epoch(train) [2][1/2]',
                               lambda job: children(job.pid))
    assert result.returncode != 0
    assert len(list(stopped.glob('iter_*.pth'))) == 1, errors(result.stdout)
    assert result.stdout.count('error: stopped by SIGTERM after iteration') \
        == 2  # both ranks, at the same iteration
    finish(dist_train(stopped, '--resume'))
    assert_same_weights(final_weights(tmp_path / 'straight', 3),
                        final_weights(stopped, 3))


STUCK = ('import os, signal, time; '
         'from amkd_plugin.engine.hooks import PreemptionHook; '
         'hook = PreemptionHook(grace=1); hook.before_train(None); '
         'os.kill(os.getpid(), signal.SIGTERM); time.sleep(60)')


def test_an_iteration_past_the_grace_period_ends_the_process():
    """A signal, then an iteration that never ends: the process ends at the
    grace period with one line, as the signal would have ended it."""
    start = time.time()
    result = run([sys.executable, '-c', STUCK], timeout=60)
    assert time.time() - start < 30
    assert result.returncode == 128 + signal.SIGTERM
    assert result.stderr.strip().splitlines()[-1] == (
        'error: stopped by SIGTERM: the iteration in flight did not end '
        'within 1 s; resume from the newest checkpoint with --resume.')


def test_the_grace_period_must_be_positive():
    with pytest.raises(UserInputError, match='grace must be > 0 s'):
        PreemptionHook(grace=0)


@pytest.fixture
def tiny_disk(tmp_path):
    """A real file system of a few MB (tmpfs), to fill up; resizable."""
    mount = tmp_path / 'disk'
    mount.mkdir()

    def make(size: str) -> Path:
        done = subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size}',
                               'tmpfs', str(mount)], capture_output=True)
        if done.returncode != 0:
            pytest.skip('cannot mount a tmpfs here (needs root): '
                        f'{done.stderr.decode().strip()}')
        return mount

    yield make
    subprocess.run(['umount', str(mount)], capture_output=True)


def resize(mount: Path, size: str) -> None:
    subprocess.run(['mount', '-o', f'remount,size={size}', str(mount)],
                   check=True)


def test_a_full_disk_keeps_the_previous_file_and_names_the_bytes(
        tiny_disk):
    disk = tiny_disk('1m')
    target = disk / 'checkpoint.pth'
    write_atomically(target, b'good')
    with pytest.raises(DiskFullError) as error:
        write_atomically(target, b'x' * 2 * 2**20)
    message = str(error.value)
    assert message.startswith(f'No space left for {target}: it needs '
                              '2,097,152 bytes, ')
    assert 'bytes are free there' in message and '\n' not in message
    assert target.read_bytes() == b'good'
    assert sorted(p.name for p in disk.iterdir()) == ['checkpoint.pth']


def test_a_bank_that_does_not_fit_fails_before_the_attack(tiny_disk):
    """Reserved at creation: no SIGBUS from the memory map later, and no
    partial bank left to resume."""
    disk = tiny_disk('1m')
    with pytest.raises(DiskFullError) as error:
        BoundaryBankFile.create(str(disk / 'bank'), num=2000, num_targets=1,
                                image_shape=(32, 32, 3), num_classes=10)
    assert str(error.value).startswith(f'No space left for {disk / "bank"}')
    assert list(disk.iterdir()) == []


@pytest.mark.slow
def test_training_on_a_full_disk_stops_with_one_line_and_resumes(
        tiny_disk):
    """Checkpoints of the digits teacher (about 2.7 MB each) on a 7 MB
    disk: the third does not fit; one line, no signal, the second intact;
    with room made, --resume goes on from it."""
    disk = tiny_disk('7m')
    result = train(DIGITS_TEACHER_CFG, disk, 'train_cfg.max_epochs=4',
                   'default_hooks.checkpoint.max_keep_ckpts=4')
    assert_user_error(result, 'No space left for ', 'run the same command '
                      'again (with --resume for a training)')
    assert result.returncode > 0  # an exit, not a signal
    assert not list(disk.glob('*.tmp'))
    newest = max(disk.glob('epoch_*.pth'), key=lambda p: p.stat().st_mtime)
    torch.load(newest, weights_only=True)
    resize(disk, '64m')
    resumed = train(DIGITS_TEACHER_CFG, disk, 'train_cfg.max_epochs=4',
                    'default_hooks.checkpoint.max_keep_ckpts=4', resume=True)
    assert_ok(resumed)
    assert f'resumed epoch: {newest.stem[6:]}' in resumed.output
    torch.load(disk / 'epoch_4.pth', weights_only=True)


@pytest.mark.slow
def test_a_bank_build_on_a_full_disk_is_one_line_not_sigbus(
        tiny_disk, trained_digits_teacher):
    """The tried case: the digits AMKD run with its work dir on a 4 MB
    file system died of SIGBUS in the bank build."""
    disk = tiny_disk('4m')
    result = run([sys.executable, 'tools/train.py', DIGITS_AMKD_CFG,
                  '--work-dir', disk, '--cfg-options',
                  f'model.teacher_ckpt={trained_digits_teacher}'])
    assert_user_error(result, f'No space left for {disk / "boundary_bank"}')
    assert result.returncode > 0


def test_every_fault_in_the_docs_names_a_test_that_exists():
    """docs/faults.md's table: each test it names is in the file named."""
    rows = [line for line in (REPO / 'docs/faults.md').read_text()
            .splitlines() if line.startswith('| ') and '::' in line]
    assert len(rows) >= 15
    module = None  # `::name`: in the file named last
    for row in rows:
        for ref in re.findall(r'`([a-z_]*\.py)?::(test_[a-z0-9_]+)`', row):
            module = ref[0] or module
            source = (REPO / 'tests' / module).read_text()
            assert f'def {ref[1]}(' in source, (module, ref[1])


@pytest.mark.slow
def test_sigterm_to_a_bank_build_keeps_its_progress(
        tmp_path, trained_digits_teacher):
    """SIGTERM to tools/build_boundary_bank.py once a batch is recorded:
    the next build takes the stopped one over and ends with the bank a
    build in one go makes, byte for byte."""
    options = ['--cfg-options', f'model.teacher_ckpt={trained_digits_teacher}']
    command = [sys.executable, 'tools/build_boundary_bank.py',
               DIGITS_AMKD_CFG, *options]
    assert_ok(run([*command, '--work-dir', tmp_path / 'whole']))
    stopped = tmp_path / 'stopped'
    job = subprocess.Popen([*command, '--work-dir', stopped], cwd=REPO,
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL,
                           env={**os.environ, 'OMP_NUM_THREADS': '1'})
    deadline = time.time() + 300
    while not list(stopped.glob('boundary_bank/*.partial-*/shard-*/'
                                'progress.json')):
        assert job.poll() is None and time.time() < deadline
        time.sleep(0.05)
    job.send_signal(signal.SIGTERM)
    job.wait(timeout=60)
    assert job.returncode == -signal.SIGTERM  # ended as by a kill
    resumed = run([*command, '--work-dir', stopped])
    assert_ok(resumed)
    assert 'Boundary bank: resuming the killed build in' in resumed.output
    [whole] = (tmp_path / 'whole' / 'boundary_bank').iterdir()
    [bank] = [p for p in (stopped / 'boundary_bank').iterdir()
              if '.partial-' not in p.name]
    assert bank.name == whole.name
    assert_same_bank(bank, whole, resumed=True)
