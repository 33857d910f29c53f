# Copyright (c) amkd-mmrazor contributors.
from .boundary_attack import BoundaryAttack, BoundarySamples, pixel_bounds
from .boundary_bank_builder import BoundaryBankBuilder, banked_samples
from .boundary_fidelity import BoundaryFidelity

__all__ = [
    'BoundaryAttack', 'BoundaryBankBuilder', 'BoundaryFidelity',
    'BoundarySamples', 'banked_samples', 'pixel_bounds'
]
