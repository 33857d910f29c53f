# Copyright (c) amkd-mmrazor contributors.
"""Errors the user can fix; the tools print them as one line."""


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
