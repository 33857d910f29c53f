# Copyright (c) amkd-mmrazor contributors.
"""What the tools call: checkpoints, exports, experiments, benchmarks."""
from .benchmark import SteadyStateAttack, sync_device
from .checkpoint import (check_class_counts, check_model_checkpoint,
                         check_state_dict, load_model_checkpoint,
                         load_teacher_checkpoint, read_checkpoint,
                         resolve_model_config, resume_checkpoint,
                         state_dict_of)
from .experiments import train_and_test
from .export import Exported, convert_teacher, export_student
from .released import (describe, guess_architecture, is_released_checkpoint,
                       released_state_dict, to_classifier_names)

__all__ = [
    'Exported', 'SteadyStateAttack', 'check_class_counts',
    'check_model_checkpoint', 'check_state_dict', 'convert_teacher',
    'describe', 'export_student', 'guess_architecture',
    'is_released_checkpoint', 'load_model_checkpoint',
    'load_teacher_checkpoint', 'read_checkpoint', 'released_state_dict',
    'resolve_model_config', 'resume_checkpoint', 'state_dict_of',
    'sync_device', 'to_classifier_names', 'train_and_test'
]
