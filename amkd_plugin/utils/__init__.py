# Copyright (c) amkd-mmrazor contributors.
from .cli import (add_run_arguments, build_runner, format_metrics,
                  parse_run_args, run_config, set_work_dir, tool_main, unwrap,
                  use_amp)
from .errors import DiskFullError, UserInputError, UserValueError
from .files import (is_disk_full, lock_work_dir, reserve, save_atomically,
                    sha256, write_atomically)
from .modes import eval_mode
from .registry import build_in_mmrazor

__all__ = [
    'DiskFullError', 'UserInputError', 'UserValueError', 'add_run_arguments',
    'build_in_mmrazor', 'build_runner', 'eval_mode', 'format_metrics',
    'is_disk_full', 'lock_work_dir', 'parse_run_args', 'reserve',
    'run_config', 'save_atomically', 'set_work_dir', 'sha256', 'tool_main',
    'unwrap', 'use_amp', 'write_atomically'
]
