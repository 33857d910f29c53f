# Copyright (c) amkd-mmrazor contributors.
from .load_boundary_bank import LoadBoundaryBank

__all__ = ['LoadBoundaryBank']
