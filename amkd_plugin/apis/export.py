# Copyright (c) amkd-mmrazor contributors.
"""Plain MMPretrain checkpoints, for evaluation and deployment.

:func:`export_student` writes the student of a distillation checkpoint as
a classifier (what it keeps, and why, is in the docstring of
``tools/export_student.py``, the tool's help); :func:`convert_teacher` a
teacher released with the CIFAR-100 KD benchmark.
"""
import copy
import os
import os.path as osp
from collections import Counter, OrderedDict
from typing import Any, Dict, NamedTuple, Optional, Sequence

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

import amkd_plugin
from amkd_plugin.utils import UserInputError, save_atomically, sha256
from amkd_plugin.utils.fragments import merge_fragments
from ..checkpoints import (check_state_dict, describe, is_released_checkpoint,
                           load_teacher_checkpoint, read_checkpoint,
                           resolve_model_config, state_dict_of)

STUDENT_PREFIX = 'architecture.'
PREPROCESSOR_PREFIX = 'data_preprocessor.'
# Keys of a distillation config that student.py must not carry: the model
# and custom hooks of the distillation, the training recipe (see the
# docstring of tools/export_student.py), keys set anew below, and per-run
# keys the tools set. Besides these, every key with the word `train` goes
# (train_dataloader, train_cfg, train_pipeline, ...),
# so a training-only variable added to a config later stays out without
# touching this list.
DROPPED_KEYS = ('model', 'custom_hooks', 'data_preprocessor', 'optim_wrapper',
                'param_scheduler', 'auto_scale_lr', 'default_scope',
                'custom_imports', 'load_from', 'resume', 'work_dir',
                'launcher')


def is_exported_key(key: str) -> bool:
    """Whether student.py keeps this top-level key of the source config."""
    return key not in DROPPED_KEYS and 'train' not in key.split('_')


def load_distill_config(config: str,
                        cfg_options: Optional[Dict] = None,
                        fragments: Sequence[str] = ()) -> Config:
    """Read a distillation config and check it names a student.

    Args:
        config (str): Path of the distillation config.
        cfg_options (dict, optional): Overrides, as ``--cfg-options``.
        fragments (Sequence[str]): Config fragments merged onto it first,
            as ``--fragments``.

    Returns:
        Config: The config with the fragments and overrides merged.
    """
    cfg = merge_fragments(config, fragments)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    model = cfg.get('model') or {}
    if model.get('architecture') is None:
        raise UserInputError(
            f'{config} is not a distillation config: its model '
            f'({model.get("type", "none")}) has no `architecture` (the '
            'student). Give the config the checkpoint was trained with, '
            'e.g. configs/amkd/resnet56_resnet20_cifar100.py; a plain '
            'classifier needs no export.')
    return cfg


def resolve_student_config(architecture: Dict) -> Dict:
    """The student's complete model dict, as the algorithm built it.

    Args:
        architecture (dict): ``model.architecture`` of the distillation
            config: a model dict or ``dict(cfg_path='local.py',
            **overrides)``.

    Returns:
        dict: A model dict that builds without the distillation config.
    """
    path = architecture.get('cfg_path')
    if path is not None and '::' in path:
        # MMRazor builds these through mmengine.hub, which MMEngine 0.10.7
        # cannot run without pkg_resources (gone from recent setuptools),
        # and whose default-argument merging would have to be mirrored.
        raise UserInputError(
            f'The student is given as the package config {path}; the export '
            'takes students given as model dicts or local cfg_path configs. '
            'Copy that config into configs/ and name it by its path.')
    model = dict(resolve_model_config(copy.deepcopy(architecture)))
    # The distillation config's scope is mmrazor's; student.py's is
    # mmpretrain's, so an unprefixed type resolves there either way.
    model.setdefault('_scope_', 'mmpretrain')
    return model


def student_config(cfg: Config) -> Config:
    """The MMPretrain config of the student alone.

    Args:
        cfg (Config): The distillation config (overrides merged).

    Returns:
        Config: ``model`` (the student with the training preprocessor), the
        evaluation loaders and evaluators, and the runtime.
    """
    model = resolve_student_config(cfg.model.architecture.to_dict())
    # The algorithm normalised the student's inputs with its own
    # preprocessor: model.data_preprocessor, else the top-level one (the
    # Runner puts it into the model), else the student's (BaseAlgorithm's
    # fallback). The student's own one never ran when either is set.
    preprocessor = (cfg.model.get('data_preprocessor')
                    or cfg.get('data_preprocessor')
                    or model.get('data_preprocessor'))
    if preprocessor is not None:
        model['data_preprocessor'] = copy.deepcopy(dict(preprocessor))
    imports = cfg.get('custom_imports', {}).get('imports', [])
    if isinstance(imports, str):
        imports = [imports]
    exported = {
        key: copy.deepcopy(value)
        for key, value in cfg.to_dict().items() if is_exported_key(key)
    }
    exported.update(
        model=model,
        default_scope='mmpretrain',
        # amkd_plugin registers the CIFAR backbones and datasets.
        custom_imports=dict(
            imports=list(dict.fromkeys([*imports, 'amkd_plugin'])),
            allow_failed_imports=False),
        load_from=None,
        resume=False)
    return Config(exported)


def student_state_dict(state_dict: Dict[str, Any],
                       checkpoint: str) -> 'OrderedDict[str, torch.Tensor]':
    """The student's tensors, named as in the plain classifier.

    ``architecture.*`` lose their prefix. The preprocessor's buffers come
    from the algorithm's ``data_preprocessor.*``, the module that ran in
    training and that student.py configures; the student's own
    ``architecture.data_preprocessor.*`` is left out.

    Args:
        state_dict (dict): The algorithm's state dict.
        checkpoint (str): Its path, for messages.

    Returns:
        OrderedDict: The student's state dict, with torch's ``_metadata``
        (module versions) renamed alike.
    """

    def rename(key: str) -> Optional[str]:
        if key.startswith(STUDENT_PREFIX + PREPROCESSOR_PREFIX):
            return None
        if key.startswith(STUDENT_PREFIX):
            return key[len(STUDENT_PREFIX):]
        if key.startswith(PREPROCESSOR_PREFIX):
            return key
        return None

    if not any(key.startswith(STUDENT_PREFIX) for key in state_dict):
        prefixes = sorted({key.split('.')[0] for key in state_dict})
        raise UserInputError(
            f'Checkpoint {checkpoint} holds no student weights (no '
            f'`architecture.*` keys; its keys start with '
            f'{", ".join(prefixes) or "nothing"}): it is not a checkpoint of '
            'a distillation run. A plain classifier\'s checkpoint needs no '
            'export: evaluate it with `python tools/test.py CONFIG CKPT`.')
    student = OrderedDict()
    for key, value in state_dict.items():
        name = rename(key)
        if name is not None:
            if not isinstance(value, torch.Tensor):
                raise UserInputError(
                    f'Checkpoint {checkpoint}: {key} is a '
                    f'{type(value).__name__}, not a tensor.')
            student[name] = value
    metadata = getattr(state_dict, '_metadata', None)
    if metadata is not None:
        student._metadata = OrderedDict(
            ('' if key == STUDENT_PREFIX[:-1] else rename(key), value)
            for key, value in metadata.items()
            if key == STUDENT_PREFIX[:-1] or rename(key) is not None)
    return student


def left_out_summary(state_dict: Dict[str, Any]) -> str:
    """``teacher.* (128), distiller.* (3)``: what the export dropped."""
    counts = Counter(
        key.split('.')[0] + '.*' for key in state_dict
        if not key.startswith((STUDENT_PREFIX, PREPROCESSOR_PREFIX)))
    return ', '.join(f'{name} ({count})' for name, count in counts.items())


class Exported(NamedTuple):
    """What :func:`export_student` wrote."""
    config: str  # path of student.py
    checkpoint: str  # path of student.pth
    meta: Dict[str, Any]  # the meta saved in student.pth
    num_tensors: int  # tensors in its state dict
    left_out: str  # what was dropped, e.g. 'teacher.* (128)'


def export_student(config: str,
                   checkpoint: str,
                   out_dir: str,
                   cfg_options: Optional[Dict] = None,
                   fragments: Sequence[str] = ()) -> Exported:
    """Write ``student.py`` and ``student.pth`` into ``out_dir``.

    Args:
        config (str): The distillation config.
        checkpoint (str): A checkpoint of its training.
        out_dir (str): Output folder; created if needed, files overwritten.
        cfg_options (dict, optional): Overrides, as ``--cfg-options``.
        fragments (Sequence[str]): Config fragments of the training, as
            ``--fragments``.

    Returns:
        Exported: The paths written and a summary.
    """
    cfg = load_distill_config(config, cfg_options, fragments)
    make = f'python tools/train.py {config}'
    source = read_checkpoint(checkpoint, make)
    weights = student_state_dict(state_dict_of(source, checkpoint, make),
                                 checkpoint)
    exported_cfg = student_config(cfg)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        student = MODELS.build(exported_cfg.model.to_dict())
    check_state_dict(
        student, weights, checkpoint, f'the student of {config}',
        'Different architecture or class count? The config and '
        '--cfg-options must be those of training.')
    # The check covers what strict loading checks; this is the proof.
    student.load_state_dict(weights, strict=True)

    source_meta = source.get('meta') or {}
    meta = dict(
        source_config=config,
        source_fragments=list(fragments),
        source_checkpoint=checkpoint,
        source_checkpoint_sha256=sha256(checkpoint),
        cfg_options=dict(cfg_options or {}),
        exported_by='tools/export_student.py',
        amkd_plugin_version=amkd_plugin.__version__)
    for key in ('epoch', 'iter', 'seed', 'experiment_name', 'dataset_meta'):
        if key in source_meta:
            meta[key] = source_meta[key]

    os.makedirs(out_dir, exist_ok=True)
    cfg_path = osp.join(out_dir, 'student.py')
    ckpt_path = osp.join(out_dir, 'student.pth')
    exported_cfg.dump(cfg_path)
    save_atomically(dict(meta=meta, state_dict=weights), ckpt_path)
    return Exported(cfg_path, ckpt_path, meta, len(weights),
                    left_out_summary(source['state_dict']))


def convert_teacher(src: str, dst: str, config: str) -> None:
    """Load ``src`` into the classifier of ``config`` and save it to ``dst``.

    Args:
        src (str): A teacher checkpoint, released (RepDistiller's format)
            or of this toolbox.
        dst (str): Where to write ``{'meta': ..., 'state_dict': ...}``.
        config (str): The teacher config whose classifier ``src`` fits.
    """
    if not osp.isfile(config):
        raise UserInputError(f'Config {config} does not exist.')
    if osp.abspath(src) == osp.abspath(dst):
        raise UserInputError('DST must differ from SRC: the source stays '
                             'as it is.')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(Config.fromfile(config).model)
    load_teacher_checkpoint(model, src, config)
    raw = read_checkpoint(src, f'python tools/train.py {config}')
    meta = dict(
        source_checkpoint=src,
        source_checkpoint_sha256=sha256(src),
        source_format=describe(raw) if is_released_checkpoint(raw) else
        'MMPretrain',
        config=config,
        converted_by='tools/convert_teacher.py')
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    save_atomically(dict(meta=meta, state_dict=model.state_dict()), dst)
