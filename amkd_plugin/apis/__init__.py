# Copyright (c) amkd-mmrazor contributors.
"""What the tools call: checkpoints (from :mod:`amkd_plugin.checkpoints`),
exports, experiments, comparisons, benchmarks."""
from ..checkpoints import (check_class_counts, check_model_checkpoint,
                           check_state_dict, describe, guess_architecture,
                           is_released_checkpoint, load_model_checkpoint,
                           load_teacher_checkpoint, read_checkpoint,
                           released_state_dict, resolve_model_config,
                           resume_checkpoint, state_dict_of,
                           to_classifier_names)
from .benchmark import SteadyStateAttack, sync_device
from .experiments import train_and_test
from .export import Exported, convert_teacher, export_student

__all__ = [
    'Exported', 'SteadyStateAttack', 'check_class_counts',
    'check_model_checkpoint', 'check_state_dict', 'convert_teacher',
    'describe', 'export_student', 'guess_architecture',
    'is_released_checkpoint', 'load_model_checkpoint',
    'load_teacher_checkpoint', 'read_checkpoint', 'released_state_dict',
    'resolve_model_config', 'resume_checkpoint', 'state_dict_of',
    'sync_device', 'to_classifier_names', 'train_and_test'
]
