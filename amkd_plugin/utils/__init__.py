# Copyright (c) amkd-mmrazor contributors.
from .cli import (UserInputError, UserValueError, format_metrics,
                  set_work_dir, tool_main)
from .modes import eval_mode
from .registry import build_in_mmrazor

__all__ = [
    'UserInputError', 'UserValueError', 'build_in_mmrazor', 'eval_mode',
    'format_metrics', 'set_work_dir', 'tool_main'
]
