# Copyright (c) amkd-mmrazor contributors.
"""What the command line tools share: runners, arguments, metric tables."""
import argparse
import atexit
import functools
import os
import os.path as osp
import sys
from typing import Callable, Dict, Optional

import torch.distributed as dist
from mmengine.config import Config, DictAction
from mmengine.model import is_model_wrapper
from mmengine.registry import RUNNERS
from mmengine.runner import Runner
from torch import nn

from .errors import DiskFullError, UserInputError
from .files import is_disk_full
from .fragments import merge_fragments


def tool_main(main: Callable[[], None]) -> Callable[[], None]:
    """Wrap a tool's ``main``: one clear line for bad input, clean shutdown.

    :class:`UserInputError` and missing files are printed without a
    traceback. A distributed run ends with :func:`leave_process_group`.
    """

    @functools.wraps(main)
    def wrapper() -> None:
        try:
            main()
        except (UserInputError, FileNotFoundError) as error:
            if not hasattr(error, 'exit_code'):
                sys.exit(f'error: {own_message(error)}')
            # An exit status of its own (128 + signal of a preemption).
            print(f'error: {error}', file=sys.stderr, flush=True)
            sys.exit(error.exit_code)
        except OSError as error:
            if not is_disk_full(error):
                raise
            # A write that has no size of its own to report (a log line,
            # a metrics dump): the path, and what to do.
            sys.exit('error: ' + str(DiskFullError(
                error.filename or 'a file', None, 'Free space there, then '
                'run the same command again (with --resume for a training).')))
        if dist.is_available() and dist.is_initialized():
            leave_process_group()

    return wrapper


def leave_process_group() -> None:
    """End a rank that finished cleanly, without the interpreter's teardown.

    The ranks meet at a barrier, so none tears gloo down while a peer is
    still busy, and destroy the process group. A CI run still lost a test
    to a rank that aborted after a clean evaluation ("terminate called
    without an active exception"; not reproduced here in 22 runs): the
    group lives on in objects that hold it (MMEngine's DDP wrapper in the
    runner) until the interpreter's finalization frees them with gloo's
    threads, the teardown where torch #190489 meets that abort. With every
    collective done and the outputs written, the exit handlers run
    (logging's flush among them) and the process leaves at once.
    """
    dist.barrier()
    dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    atexit._run_exitfuncs()
    os._exit(0)


def own_message(error: BaseException) -> str:
    """The error's message; for one re-raised from a DataLoader worker,
    whose message holds the worker's traceback, the original's line."""
    message = str(error)
    if 'Original Traceback' in message:
        last = message.rstrip().splitlines()[-1]
        message = last.split(': ', 1)[-1]
    return message


def add_run_arguments(parser: argparse.ArgumentParser,
                      cfg_options_help: str) -> None:
    """``--work-dir``, ``--cfg-options``, ``--launcher`` and
    ``--local-rank``, as every OpenMMLab tool takes them, and
    ``--fragments``."""
    parser.add_argument('--work-dir', help='the dir of logs, checkpoints '
                        'and the boundary bank')
    parser.add_argument(
        '--fragments', nargs='+', default=[], metavar='FRAGMENT',
        help='config fragments merged onto the config in order, before '
        '--cfg-options, e.g. configs/experiments/logits/no_ls.py (the '
        'default work dir then names them)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, help=cfg_options_help)
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_run_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse the command line of a tool with :func:`add_run_arguments`."""
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def run_config(args: argparse.Namespace,
               apply: Optional[Callable[[Config], None]] = None) -> Config:
    """The config of ``args.config`` with the command line merged in: its
    ``--fragments``, launcher and work dir, then the tool's own flags
    (``apply``), then ``--cfg-options``, which have the last word."""
    cfg = merge_fragments(args.config, args.fragments)
    cfg.launcher = args.launcher
    name = '+'.join(
        osp.splitext(osp.basename(path))[0]
        for path in (args.config, *args.fragments))
    set_work_dir(cfg, name, args.work_dir)
    if apply is not None:
        apply(cfg)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def use_amp(cfg: Config) -> None:
    """``--amp``: mixed precision through MMEngine's ``AmpOptimWrapper``,
    with a dynamic loss scale unless the config sets one."""
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')


def build_runner(cfg: Config) -> Runner:
    """The config's runner, as MMEngine's own tools build it."""
    return RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(
        cfg)


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DDP (or other) wrapper."""
    return model.module if is_model_wrapper(model) else model


def set_work_dir(cfg: Config, name: str, work_dir: Optional[str]) -> None:
    """``--work-dir``, else the config's, else ``work_dirs/<name>``."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', name)


def format_metrics(metrics: Dict[str, float]) -> str:
    """Render metrics as a two-column text table."""
    width = max((len(name) for name in metrics), default=6)
    rule = '-' * (width + 14)
    lines = [rule, f'{"metric":<{width}}  {"value":>10}', rule]
    lines += [f'{name:<{width}}  {value:>10.4f}' if isinstance(value, float)
              else f'{name:<{width}}  {value!s:>10}'
              for name, value in metrics.items()]
    return '\n'.join([*lines, rule])
