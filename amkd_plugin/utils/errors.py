# Copyright (c) amkd-mmrazor contributors.
"""Errors the user can fix; the tools print them as one line."""
import os
import shutil
from typing import Optional


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


class DiskFullError(UserInputError):
    """A write that found no room: what it wrote, how much it needed.

    Args:
        path (str): The file that could not be written.
        needed (int, optional): The bytes it needed, when known.
        fix (str): What to do once space is freed.
    """

    def __init__(self, path: str, needed: Optional[int], fix: str) -> None:
        folder = os.path.dirname(os.path.abspath(path))
        try:
            free = f'{shutil.disk_usage(folder).free:,} bytes are free'
        except OSError:
            free = 'its free space is unknown'
        need = f'needs {needed:,} bytes' if needed is not None else \
            'did not fit'
        super().__init__(f'No space left for {path}: it {need}, {free} '
                         f'there. {fix}')
