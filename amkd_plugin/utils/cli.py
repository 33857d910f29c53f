# Copyright (c) amkd-mmrazor contributors.
"""What the command line tools share: user-facing errors and metric tables."""
import functools
import sys
from typing import Callable, Dict


class UserInputError(RuntimeError):
    """Bad input the user can fix (a missing file, a mismatched checkpoint).

    Its message says what is wrong and how to fix it, so the tools print it
    alone instead of a traceback.
    """


def exit_on_user_error(main: Callable[[], None]) -> Callable[[], None]:
    """Turn :class:`UserInputError` and missing files into one clear line."""

    @functools.wraps(main)
    def wrapper() -> None:
        try:
            main()
        except (UserInputError, FileNotFoundError) as error:
            sys.exit(f'error: {error}')

    return wrapper


def format_metrics(metrics: Dict[str, float]) -> str:
    """Render metrics as a two-column text table."""
    width = max((len(name) for name in metrics), default=6)
    rule = '-' * (width + 14)
    lines = [rule, f'{"metric":<{width}}  {"value":>10}', rule]
    lines += [f'{name:<{width}}  {value:>10.4f}' if isinstance(value, float)
              else f'{name:<{width}}  {value!s:>10}'
              for name, value in metrics.items()]
    return '\n'.join([*lines, rule])
