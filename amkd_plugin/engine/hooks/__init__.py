# Copyright (c) amkd-mmrazor contributors.
from .adversarial_boundary_hook import AdversarialBoundaryHook
from .boundary_bank_hook import BoundaryBankHook
from .boundary_fidelity_hook import BoundaryFidelityHook
from .non_finite_loss_hook import NonFiniteLossError, NonFiniteLossHook
from .progress_bar_hook import ProgressBarHook
from .random_state_hook import RandomStateHook

__all__ = [
    'AdversarialBoundaryHook', 'BoundaryBankHook', 'BoundaryFidelityHook', 'NonFiniteLossError',
    'NonFiniteLossHook', 'ProgressBarHook', 'RandomStateHook'
]
