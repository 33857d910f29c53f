# Copyright (c) amkd-mmrazor contributors.
"""What the command line tools share: user-facing errors and metric tables."""
import functools
import os.path as osp
import sys
from typing import Callable, Dict, Optional

import torch.distributed as dist
from mmengine.config import Config


class UserInputError(RuntimeError):
    """Bad input the user can fix (a missing file, a mismatched checkpoint).

    Its message says what is wrong and how to fix it, so the tools print it
    alone instead of a traceback.
    """


class UserValueError(UserInputError, ValueError):
    """A value the user gave that the plugin cannot use: a config setting
    out of range, a file whose content contradicts its description.

    A ``ValueError`` for code that catches those; printed as one line by
    the tools, like every :class:`UserInputError`.
    """


def tool_main(main: Callable[[], None]) -> Callable[[], None]:
    """Wrap a tool's ``main``: one clear line for bad input, clean shutdown.

    :class:`UserInputError` and missing files are printed without a
    traceback. After a distributed run the ranks meet at a barrier and then
    destroy the process group: a rank that tore gloo down while its peer
    was still busy, or left it to the interpreter's exit, could abort
    ("terminate called without an active exception") after a clean run.
    """

    @functools.wraps(main)
    def wrapper() -> None:
        try:
            main()
        except (UserInputError, FileNotFoundError) as error:
            sys.exit(f'error: {error}')
        if dist.is_available() and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()

    return wrapper


def set_work_dir(cfg: Config, config: str, work_dir: Optional[str]) -> None:
    """``--work-dir``, else the config's, else ``work_dirs/<config name>``."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])


def format_metrics(metrics: Dict[str, float]) -> str:
    """Render metrics as a two-column text table."""
    width = max((len(name) for name in metrics), default=6)
    rule = '-' * (width + 14)
    lines = [rule, f'{"metric":<{width}}  {"value":>10}', rule]
    lines += [f'{name:<{width}}  {value:>10.4f}' if isinstance(value, float)
              else f'{name:<{width}}  {value!s:>10}'
              for name, value in metrics.items()]
    return '\n'.join([*lines, rule])
