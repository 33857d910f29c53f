# Copyright (c) amkd-mmrazor contributors.
from .cli import UserInputError, format_metrics, tool_main
from .registry import build_in_mmrazor

__all__ = ['UserInputError', 'build_in_mmrazor', 'format_metrics', 'tool_main']
