# Copyright (c) amkd-mmrazor contributors.
"""Build the two models of a distillation config and check they fit."""
import copy
import os.path as osp
from typing import Dict, Optional

from mmengine.config import Config
from mmengine.runner import CheckpointLoader
from mmengine.runner.checkpoint import load_state_dict
from torch import nn

from amkd_plugin.utils import UserInputError


def resolve_model_config(cfg: Dict) -> Dict:
    """Replace ``dict(cfg_path='local.py', **overrides)`` by its model.

    MMRazor resolves ``cfg_path`` only for installed packages
    (``'mmpretrain::...'``); those, and complete model dicts, pass through.
    """
    path = cfg.get('cfg_path')
    if path is None or '::' in path:
        return cfg
    if not osp.isfile(path):
        raise UserInputError(f'Model config {path} does not exist (from '
                             '`cfg_path`); check the path, which is '
                             'relative to the working directory.')
    overrides = {k: v for k, v in cfg.items() if k != 'cfg_path'}
    model_cfg = Config(dict(model=Config.fromfile(path).model))
    model_cfg.merge_from_dict(dict(model=copy.deepcopy(overrides)))
    return model_cfg.model.to_dict()


def read_checkpoint(checkpoint: str, make: str) -> dict:
    """Load a checkpoint weights-only; explain a missing or bad file.

    Args:
        checkpoint (str): Its path.
        make (str): The command that makes it, for the messages.

    Returns:
        dict: The checkpoint, a bare state dict wrapped as ``state_dict``.
    """
    if not osp.isfile(checkpoint):
        raise UserInputError(
            f'Checkpoint {checkpoint} does not exist. Make it with '
            f'`{make}`, or check the path.')
    try:
        state = CheckpointLoader.load_checkpoint(checkpoint, 'cpu')
    except Exception as error:  # whatever torch.load raises on a bad file
        # Only the first line: torch's weights-only errors go on to suggest
        # weights_only=False, which a corrupt file must never lead to.
        reason = str(error).strip().splitlines()[0] if str(error) else ''
        raise UserInputError(
            f'Checkpoint {checkpoint} cannot be read '
            f'({type(error).__name__}: {reason}); it may be truncated or '
            f'not a checkpoint. Make it again with `{make}`.') from None
    if not isinstance(state, dict):
        raise UserInputError(f'Checkpoint {checkpoint} holds a '
                             f'{type(state).__name__}, not a checkpoint.')
    return state if 'state_dict' in state else dict(state_dict=state)


def load_teacher_checkpoint(teacher: nn.Module, checkpoint: Optional[str],
                            teacher_cfg_path: Optional[str]) -> None:
    """Load the teacher strictly; explain any failure and how to fix it."""
    make = (f'python tools/train.py {teacher_cfg_path}'
            if teacher_cfg_path else 'train the teacher')
    if not checkpoint:
        raise UserInputError(
            f'No teacher checkpoint given (teacher_ckpt). Train one with '
            f'`{make}` and pass --cfg-options model.teacher_ckpt=PATH.')
    state = read_checkpoint(checkpoint, make)['state_dict']
    try:
        load_state_dict(teacher, state, strict=True)
    except RuntimeError as error:
        raise UserInputError(
            f'Teacher checkpoint {checkpoint} does not fit the teacher '
            f'model (different architecture or class count?): {error}\n'
            f'Make a matching one with `{make}`.') from None


def check_class_counts(student: nn.Module, teacher: nn.Module) -> None:
    """Distillation compares logits class by class: the heads must agree."""
    counts = {
        name: getattr(getattr(model, 'head', None), 'num_classes', None)
        for name, model in (('student', student), ('teacher', teacher))
    }
    if None not in counts.values() and len(set(counts.values())) > 1:
        raise UserInputError(
            f'Student and teacher predict different numbers of classes '
            f'({counts["student"]} vs {counts["teacher"]}); set '
            'head.num_classes of both to the dataset\'s class count.')
