# Copyright (c) amkd-mmrazor contributors.
from .cli import UserInputError, format_metrics, tool_main

__all__ = ['UserInputError', 'format_metrics', 'tool_main']
