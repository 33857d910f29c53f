# Copyright (c) amkd-mmrazor contributors.
from .adversarial_boundary_hook import AdversarialBoundaryHook
from .boundary_fidelity_hook import BoundaryFidelityHook
from .progress_bar_hook import ProgressBarHook
from .random_state_hook import RandomStateHook

__all__ = [
    'AdversarialBoundaryHook', 'BoundaryFidelityHook', 'ProgressBarHook',
    'RandomStateHook'
]
