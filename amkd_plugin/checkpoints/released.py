# Copyright (c) amkd-mmrazor contributors.
"""Teacher checkpoints released with the CIFAR-100 KD benchmark.

RepDistiller (Tian et al., CRD, ICLR 2020) released its teachers as
``<arch>_vanilla/ckpt_epoch_240.pth``; mdistiller's ``cifar_teachers.tar``
and most later code reuse them. Each holds ``{'model': the bare network's
state dict, 'epoch', 'accuracy' or 'best_acc', 'optimizer'}``, with the
network's own parameter names (``conv1.weight``, ``fc.weight``) where an
MMPretrain classifier has ``backbone.conv1.weight`` and ``head.fc.weight``.
The backbones of this plugin keep the benchmark's names
(:mod:`amkd_plugin.models.backbones.benchmark_names`), so the mapping is
a prefix for the backbone and a rename of the classifier.
"""
import copy
import os.path as osp
import re
from typing import Dict, Optional

import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS
from torch import Tensor, nn

from amkd_plugin.models.backbones.benchmark_names import CLASSIFIER_PREFIXES

MODEL_CONFIGS = osp.join(
    osp.dirname(__file__), '..', '..', 'configs', '_base_', 'models')
_CLASSIFIERS = frozenset(CLASSIFIER_PREFIXES.values())


def is_released_checkpoint(checkpoint: dict) -> bool:
    """Whether a loaded checkpoint is in the benchmark's format."""
    return ('state_dict' not in checkpoint
            and isinstance(checkpoint.get('model'), dict))


def to_classifier_names(network: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """The benchmark network's weights under the classifier's names."""
    renamed = {}
    for key, value in network.items():
        key = re.sub(r'^module\.', '', key)  # saved from DataParallel
        prefix, _, param = key.rpartition('.')
        if f'{prefix}.' in _CLASSIFIERS and param in ('weight', 'bias'):
            renamed[f'head.fc.{param}'] = value
        else:
            renamed[f'backbone.{key}'] = value
    return renamed


def released_state_dict(network: Dict[str, Tensor],
                        model: nn.Module) -> Dict[str, Tensor]:
    """:func:`to_classifier_names`, with the BatchNorm step counters that
    checkpoints of torch < 0.4.1 lack set to 0, as torch itself does."""
    state = to_classifier_names(network)
    for key in model.state_dict():
        if key.endswith('num_batches_tracked') and key not in state:
            state[key] = torch.tensor(0)
    return state


def describe(checkpoint: dict) -> str:
    """How a benchmark checkpoint is described in the log."""
    facts = [f'{name} {_plain(checkpoint[name])}'
             for name in ('epoch', 'accuracy', 'best_acc')
             if name in checkpoint]
    return ("the CIFAR KD benchmark's format (RepDistiller"
            f"{'; ' + ', '.join(facts) if facts else ''}), mapped to the "
            'classifier\'s parameter names')


def guess_architecture(network: Dict[str, Tensor]) -> Optional[str]:
    """The benchmark network whose parameter names and shapes these are."""
    shapes = _shapes(to_classifier_names(network))
    classes = shapes.get('head.fc.bias')
    if classes is None:
        return None
    for name in CLASSIFIER_PREFIXES:
        path = osp.join(MODEL_CONFIGS, f'{name}.py')
        if not osp.isfile(path):  # installed without the configs
            continue
        cfg = copy.deepcopy(Config.fromfile(path).model)
        cfg.head.num_classes = classes[0]
        if _shapes(MODELS.build(cfg).state_dict()) == shapes:
            return name
    return None


def _shapes(state: Dict[str, Tensor]) -> Dict[str, tuple]:
    return {key: tuple(value.shape) for key, value in state.items()
            if not key.endswith('num_batches_tracked')}


def _plain(value) -> str:
    if isinstance(value, Tensor) and value.numel() == 1:
        value = value.item()
    return f'{value:.2f}' if isinstance(value, float) else str(value)
