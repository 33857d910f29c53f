# Copyright (c) amkd-mmrazor contributors.
from .amkd import AMKDDistill

__all__ = ['AMKDDistill']
