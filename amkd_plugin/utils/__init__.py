# Copyright (c) amkd-mmrazor contributors.
from .cli import UserInputError, exit_on_user_error, format_metrics

__all__ = ['UserInputError', 'exit_on_user_error', 'format_metrics']
