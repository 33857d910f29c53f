# Copyright (c) amkd-mmrazor contributors.
from .boundary_attack import BoundaryAttack, BoundarySamples

__all__ = ['BoundaryAttack', 'BoundarySamples']
