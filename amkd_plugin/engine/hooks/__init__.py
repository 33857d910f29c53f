# Copyright (c) amkd-mmrazor contributors.
from .adversarial_boundary_hook import AdversarialBoundaryHook
from .boundary_bank_hook import BoundaryBankHook
from .boundary_fidelity_hook import BoundaryFidelityHook
from .non_finite_loss_hook import NonFiniteLossError, NonFiniteLossHook
from .preemption_hook import PreemptedError, PreemptionHook
from .progress_bar_hook import ProgressBarHook
from .random_state_hook import RandomStateHook

__all__ = [
    'AdversarialBoundaryHook', 'BoundaryBankHook', 'BoundaryFidelityHook',
    'NonFiniteLossError', 'NonFiniteLossHook', 'PreemptedError',
    'PreemptionHook', 'ProgressBarHook', 'RandomStateHook'
]
