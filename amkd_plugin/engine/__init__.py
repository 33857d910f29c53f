# Copyright (c) amkd-mmrazor contributors.
from .atomic_local_backend import AtomicLocalBackend
from .hooks import *  # noqa: F401,F403
from .hooks import __all__ as _hooks

__all__ = ['AtomicLocalBackend', *_hooks]
