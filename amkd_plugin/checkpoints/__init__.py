# Copyright (c) amkd-mmrazor contributors.
"""Checkpoints: reading, checking and loading them, and the teachers the
CIFAR-100 KD benchmark released. Below the algorithm and the hooks, which
load teachers, and the APIs, which re-export it for the tools."""
from .loading import (check_class_counts, check_model_checkpoint,
                      check_state_dict, load_model_checkpoint,
                      load_teacher_checkpoint, read_checkpoint,
                      resolve_model_config, resume_checkpoint, state_dict_of)
from .released import (describe, guess_architecture, is_released_checkpoint,
                       released_state_dict, to_classifier_names)

__all__ = [
    'check_class_counts', 'check_model_checkpoint', 'check_state_dict',
    'describe', 'guess_architecture', 'is_released_checkpoint',
    'load_model_checkpoint', 'load_teacher_checkpoint', 'read_checkpoint',
    'released_state_dict', 'resolve_model_config', 'resume_checkpoint',
    'state_dict_of', 'to_classifier_names'
]
