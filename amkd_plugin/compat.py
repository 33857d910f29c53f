# Copyright (c) amkd-mmrazor contributors.
"""Make the released OpenMMLab stack work on PyTorch >= 2 and without GPUs.

Three defects of the released packages are mended here, and nothing else
lives in this module. Each fix checks that its defect is present and does
nothing otherwise, so a fixed upstream release turns this module into a
no-op.

1. MMRazor 1.0.0 cannot be imported on torch >= 2 (open-mmlab/mmrazor#615,
   #632). ``mmrazor.structures.quantization.backend_config`` imports
   ``reverse_sequential_wrapper2`` from torch's quantization fuser, which
   torch 2 removed; the module then falls back to placeholders and builds
   backend tables from them at import time, which raises. Every part of
   MMRazor imports that module indirectly, so distillation, NAS and pruning
   all break. We serve a stand-in for that one module: everything else of
   MMRazor imports unchanged, and building a quantizer (the only user of
   the backend tables) raises :class:`QuantizationUnavailableError` that
   says why.

2. MMEngine 0.10.7 cannot resume on torch >= 2.6, where ``torch.load``
   defaults to ``weights_only=True``: runner checkpoints hold
   ``HistoryBuffer`` objects and numpy arrays and scalars. We allow exactly
   those types for weights-only loading (``torch.serialization
   .add_safe_globals``) and make ``HistoryBuffer`` pickle its data only.
   Its stock ``__getstate__`` also stores the class's statistics functions,
   which only an unpickler trusting ``getattr`` could rebuild; allowing
   ``getattr`` would reopen arbitrary code execution, so instead those
   functions, which every process re-registers on import anyway, are left
   out. Safe loading stays on: any other type in a checkpoint is refused.

3. MMEngine 0.10.7 cannot train or test distributed without a GPU, even
   with ``env_cfg.dist_cfg.backend='gloo'``: ``init_dist`` always calls
   ``torch.cuda.set_device`` and the runner always gives
   ``MMDistributedDataParallel`` CUDA ``device_ids``, which torch refuses
   for a CPU model. We skip ``set_device`` where CUDA is unavailable and
   drop ``device_ids`` for a model on the CPU. Both changes touch only
   calls that would otherwise fail, so they are no-ops on GPU machines.
"""
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType
from typing import NoReturn, Optional, Sequence

import numpy as np
import torch
from mmengine.dist import utils as dist_utils
from mmengine.logging import HistoryBuffer
from mmengine.model import MMDistributedDataParallel

_BACKEND_CONFIG = 'mmrazor.structures.quantization.backend_config'
_BACKEND_CONFIG_FUNCTIONS = [
    f'get_{backend}_backend_config{suffix}'
    for backend in ('academic', 'native', 'openvino', 'tensorrt')
    for suffix in ('', '_dict')
]


class QuantizationUnavailableError(RuntimeError):
    """Raised on any use of MMRazor 1.0.0's quantization on torch >= 2."""


def _quantization_unavailable(*args, **kwargs) -> NoReturn:
    raise QuantizationUnavailableError(
        'MMRazor 1.0.0 quantization needs torch 1.13: its backend configs '
        f'use torch.ao APIs removed in torch {torch.__version__} '
        '(open-mmlab/mmrazor#615, #632). amkd_plugin keeps distillation, '
        'NAS and pruning working; for quantization install torch==1.13.* '
        'or an MMRazor release newer than 1.0.0.')


class _UnavailableBackendConfigs(dict):
    """``BackendConfigs`` stand-in: looking up any backend raises."""

    def __getitem__(self, backend: str) -> NoReturn:
        _quantization_unavailable()


class _BackendConfigStandIn(importlib.abc.MetaPathFinder,
                            importlib.abc.Loader):
    """Serves a stand-in for MMRazor's broken quantization backend module."""

    def find_spec(self,
                  fullname: str,
                  path: Optional[Sequence[str]] = None,
                  target: Optional[ModuleType] = None):
        if fullname == _BACKEND_CONFIG:
            return importlib.machinery.ModuleSpec(fullname, self)
        return None

    def create_module(self, spec) -> None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        module.BackendConfigs = _UnavailableBackendConfigs()
        for name in _BACKEND_CONFIG_FUNCTIONS:
            setattr(module, name, _quantization_unavailable)
        module.__all__ = ['BackendConfigs', *_BACKEND_CONFIG_FUNCTIONS]


def _mmrazor_quantization_is_broken() -> bool:
    if importlib.util.find_spec('mmrazor') is None:
        return False
    from mmrazor import __version__ as mmrazor_version
    if mmrazor_version != '1.0.0':
        return False
    from torch.ao.quantization import fuser_method_mappings
    return not hasattr(fuser_method_mappings, 'reverse_sequential_wrapper2')


def _patch_mmrazor_import() -> None:
    if _BACKEND_CONFIG in sys.modules:
        return  # mmrazor.models already imported, so the stack is sound.
    if any(isinstance(f, _BackendConfigStandIn) for f in sys.meta_path):
        return
    if _mmrazor_quantization_is_broken():
        sys.meta_path.insert(0, _BackendConfigStandIn())


def _history_buffer_getstate(self: HistoryBuffer) -> dict:
    """Pickle a ``HistoryBuffer``'s data, not its statistics functions."""
    state = self.__dict__.copy()
    state.pop('statistics_methods', None)
    return state


def _numpy_checkpoint_globals() -> list:
    """The numpy globals that pickled arrays, dtypes and scalars refer to."""
    multiarray = np._core.multiarray if hasattr(
        np, '_core') else np.core.multiarray
    dtype_classes = [
        type(np.dtype(code)) for code in np.typecodes['All'] if code != 'O'
    ]
    return [
        np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar,
        *dtype_classes
    ]


def _patch_checkpoint_loading() -> None:
    if not hasattr(torch.serialization, 'add_safe_globals'):
        return  # torch < 2.4 has no weights-only default to work around.
    if HistoryBuffer.__getstate__ is not _history_buffer_getstate:
        HistoryBuffer.__getstate__ = _history_buffer_getstate
    torch.serialization.add_safe_globals(
        [HistoryBuffer, *_numpy_checkpoint_globals()])


# getattr: a reloaded module must not wrap its own wrappers.
_stock_init_dist_pytorch = getattr(dist_utils._init_dist_pytorch, 'stock',
                                   dist_utils._init_dist_pytorch)
_stock_ddp_init = getattr(MMDistributedDataParallel.__init__, 'stock',
                          MMDistributedDataParallel.__init__)


def _init_dist_pytorch(backend, init_backend: str = 'torch', **kwargs):
    """MMEngine's ``_init_dist_pytorch``, also without a GPU."""
    other_accelerator = any(
        getattr(dist_utils, f'is_{name}_available', lambda: False)()
        for name in ('mlu', 'npu', 'musa'))
    if (torch.cuda.is_available() or other_accelerator
            or init_backend != 'torch'):
        return _stock_init_dist_pytorch(
            backend, init_backend=init_backend, **kwargs)
    # The stock function differs only by torch.cuda.set_device(LOCAL_RANK).
    torch.distributed.init_process_group(backend=backend, **kwargs)


def _ddp_init(self, module, *args, **kwargs) -> None:
    """``MMDistributedDataParallel.__init__``, also for a model on the CPU."""
    if kwargs.get('device_ids') is not None and all(
            p.device.type == 'cpu' for p in module.parameters()):
        kwargs['device_ids'] = None  # torch's DDP requires it for CPU models
    _stock_ddp_init(self, module, *args, **kwargs)


_init_dist_pytorch.stock = _stock_init_dist_pytorch
_ddp_init.stock = _stock_ddp_init


def _patch_distributed_without_gpu() -> None:
    dist_utils._init_dist_pytorch = _init_dist_pytorch
    MMDistributedDataParallel.__init__ = _ddp_init


def apply() -> None:
    """Apply every fix this stack needs; safe to call more than once."""
    _patch_mmrazor_import()
    _patch_checkpoint_loading()
    _patch_distributed_without_gpu()
