# Copyright (c) amkd-mmrazor contributors.
"""Reading checkpoints and the model configs they belong to.

The one place that loads, checks and explains checkpoints for the tools,
the hooks and the algorithm: missing, unreadable, unsafe and mismatched
files stop with one line naming the file and the command that makes it.
"""
import copy
import logging
import os
import os.path as osp
import re
from typing import Dict, List, Optional

import torch
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.runner import CheckpointLoader, find_latest_checkpoint
from mmengine.runner.checkpoint import load_state_dict
from torch import nn

from amkd_plugin.utils import UserInputError
from .released import (describe, guess_architecture, is_released_checkpoint,
                       released_state_dict)


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
        dict: The checkpoint; a bare state dict (tensors only) wrapped as
        ``state_dict``.
    """
    if not osp.isfile(checkpoint):
        raise UserInputError(
            f'Checkpoint {checkpoint} does not exist. Make it with '
            f'`{make}`, or check the path.')
    try:
        state = CheckpointLoader.load_checkpoint(checkpoint, 'cpu',
                                                 logger='silent')
    except Exception as error:  # whatever torch.load raises on a bad file
        # torch's own text for weights-only failures suggests
        # weights_only=False: never the advice for a file that may run
        # code, so only the refused object or the unpickler's reason is
        # passed on.
        text = str(error)
        refused = re.search(r'GLOBAL ([\w.]+)', text)
        if refused:
            raise UserInputError(
                f'Checkpoint {checkpoint} holds Python objects that safe '
                f'(weights-only) loading refuses ({refused.group(1)}): '
                'loading it could run code, so it was not loaded. Use a '
                f'checkpoint made with `{make}`.') from None
        reason = re.search(r'WeightsUnpickler error:\s*(\S[^\n]*)', text)
        reason = reason.group(1) if reason else (
            text.strip().splitlines()[0] if text.strip() else '')
        raise UserInputError(
            f'Checkpoint {checkpoint} cannot be read '
            f'({type(error).__name__}: {reason}); it may be truncated or not '
            f'a checkpoint. Make it again with `{make}`.') from None
    if not isinstance(state, dict):
        raise UserInputError(f'Checkpoint {checkpoint} holds a '
                             f'{type(state).__name__}, not a checkpoint.')
    if 'state_dict' not in state and state and all(
            isinstance(value, torch.Tensor) for value in state.values()):
        return dict(state_dict=state)
    return state


def resume_checkpoint(work_dir: str, make: str) -> Optional[str]:
    """The checkpoint ``--resume`` (auto) takes in ``work_dir``.

    MMEngine's choice, the file named in ``last_checkpoint``, if it can be
    read; otherwise the newest ``epoch_N.pth``/``iter_N.pth`` there that
    can, with one warning naming the unreadable file(s). A kill can leave
    the newest file truncated (written before this plugin's atomic saves,
    or damaged since), and its older neighbour loses one interval at most.
    Each candidate is read once here, before MMEngine reads the chosen one.

    Args:
        work_dir (str): The run's work dir.
        make (str): The command that makes the checkpoints, for messages.

    Returns:
        str, optional: The checkpoint; None if the work dir holds none.
    """
    names = os.listdir(work_dir) if osp.isdir(work_dir) else []
    numbered = sorted(
        (name for name in names
         if re.fullmatch(r'(epoch|iter)_\d+\.pth', name)),
        key=lambda name: int(re.search(r'\d+', name).group()),
        reverse=True)
    latest = find_latest_checkpoint(work_dir)
    candidates = dict.fromkeys(
        osp.abspath(path)
        for path in [latest, *(osp.join(work_dir, n) for n in numbered)]
        if path)
    unreadable: List[str] = []
    for path in candidates:
        try:
            read_checkpoint(path, make)
        except UserInputError:
            unreadable.append(path)
            continue
        if unreadable:
            print_log(
                f'Resume: {", ".join(unreadable)} cannot be read; resuming '
                f'from {path}, the newest readable checkpoint.', 'current',
                level=logging.WARNING)
        return path
    if unreadable:
        raise UserInputError(
            f'No checkpoint in {work_dir} can be read ({", ".join(unreadable)}'
            f'); train again without --resume: `{make}`.')
    return None


def state_dict_of(checkpoint: dict, path: str, make: str) -> dict:
    """The model weights of a checkpoint from :func:`read_checkpoint`."""
    if not isinstance(checkpoint.get('state_dict'), dict):
        raise UserInputError(
            f'Checkpoint {path} holds no model weights (no state_dict; '
            f'keys: {", ".join(map(str, list(checkpoint)[:5]))}). Make one '
            f'with `{make}`.')
    return checkpoint['state_dict']


def check_state_dict(model: nn.Module, state_dict: dict, checkpoint: str,
                     name: str, fix: str) -> None:
    """Stop with one line unless ``state_dict`` fits ``model`` exactly.

    Args:
        model (nn.Module): The model.
        state_dict (dict): Its weights, e.g. from :func:`read_checkpoint`.
        checkpoint (str): Their file, for the message.
        name (str): The model, for the message (``'the teacher model'``).
        fix (str): What the user should do about a mismatch.
    """
    expected = model.state_dict()
    problems = [
        f'{what} ({len(keys)}): {", ".join(keys[:3])}'
        f'{" and more" if len(keys) > 3 else ""}'
        for what, keys in (
            ('missing', sorted(set(expected) - set(state_dict))),
            ('unexpected', sorted(set(state_dict) - set(expected))),
            ('other shape', sorted(
                key for key, value in expected.items()
                if key in state_dict
                and state_dict[key].shape != value.shape)))
        if keys
    ]
    if problems:
        raise UserInputError(
            f'Checkpoint {checkpoint} does not fit {name}: '
            f'{"; ".join(problems)}. {fix}')


def check_model_checkpoint(model: nn.Module, checkpoint: str,
                           config: str) -> dict:
    """The state dict of a checkpoint of ``config``'s model, checked.

    Missing, unreadable, unsafe and mismatched files stop with one line
    naming the file; DDP's ``module.`` prefixes are dropped.
    """
    make = f'python tools/train.py {config}'
    state = state_dict_of(read_checkpoint(checkpoint, make), checkpoint, make)
    state = {re.sub(r'^module\.', '', key): value
             for key, value in state.items()}
    check_state_dict(model, state, checkpoint, f'the model of {config}',
                     f'Was it made by `{make}` with the same --cfg-options?')
    return state


def load_model_checkpoint(model: nn.Module, checkpoint: str,
                          config: str) -> None:
    """Load a checkpoint of ``config``'s model strictly (see
    :func:`check_model_checkpoint`)."""
    load_state_dict(model, check_model_checkpoint(model, checkpoint, config),
                    strict=True)


def load_teacher_checkpoint(teacher: nn.Module, checkpoint: Optional[str],
                            teacher_cfg_path: Optional[str]) -> None:
    """Load the teacher strictly; explain any failure and how to fix it.

    Besides checkpoints of this toolbox, takes the teacher checkpoints
    released with the CIFAR-100 KD benchmark (RepDistiller, mdistiller:
    ``{'model': network state dict, 'epoch', ...}``), mapped to the
    classifier's names (:mod:`.released`); the log says which
    format it read.
    """
    make = (f'python tools/train.py {teacher_cfg_path}'
            if teacher_cfg_path else 'train the teacher')
    if not checkpoint:
        raise UserInputError(
            f'No teacher checkpoint given (teacher_ckpt). Train one with '
            f'`{make}` and pass --cfg-options model.teacher_ckpt=PATH.')
    raw = read_checkpoint(checkpoint, make)
    released = is_released_checkpoint(raw)
    if released:
        state = released_state_dict(raw['model'], teacher)
        print_log(f'Teacher checkpoint {checkpoint}: {describe(raw)}.',
                  'current')
    else:
        state = state_dict_of(raw, checkpoint, make)
    try:
        check_state_dict(
            teacher, state, checkpoint, 'the teacher model',
            'It is not a checkpoint of this teacher (different architecture '
            f'or class count?). Make a matching one with `{make}`.')
    except UserInputError as error:
        looks_like = guess_architecture(raw['model']) if released else None
        if looks_like is None:
            raise
        raise UserInputError(
            f'{error} It looks like the benchmark\'s {looks_like}: its '
            f'model config is configs/_base_/models/{looks_like}.py.'
        ) from None
    load_state_dict(teacher, state, strict=True)


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
