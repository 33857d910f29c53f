# Copyright (c) amkd-mmrazor contributors.
from .amkd_distiller import AMKDDistiller

__all__ = ['AMKDDistiller']
