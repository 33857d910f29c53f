# Copyright (c) amkd-mmrazor contributors.
from .adversarial_boundary_hook import AdversarialBoundaryHook
from .progress_bar_hook import ProgressBarHook

__all__ = ['AdversarialBoundaryHook', 'ProgressBarHook']
