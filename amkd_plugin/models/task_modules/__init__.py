# Copyright (c) amkd-mmrazor contributors.
from .boundary_attack import BoundaryAttack, BoundarySamples
from .boundary_fidelity import BoundaryFidelity

__all__ = ['BoundaryAttack', 'BoundaryFidelity', 'BoundarySamples']
