# Copyright (c) amkd-mmrazor contributors.
"""The fixes of :mod:`amkd_plugin.compat` for the released stack.

MMRazor 1.0.0 imports on torch >= 2 with its quantization disabled,
MMEngine checkpoints load with ``torch.load(weights_only=True)`` while
arbitrary pickled objects stay refused, and distributed runs work without
a GPU.
"""
import builtins
import collections
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.registry import DefaultScope

import amkd_plugin  # noqa: F401  (applies the fixes)
from amkd_plugin import compat

REPO_ROOT = Path(__file__).resolve().parents[1]

# A minimal MMRazor quantization config: enough to reach the backend tables.
GLOBAL_QCONFIG = dict(
    w_observer=dict(type='mmrazor.PerChannelMinMaxObserver'),
    a_observer=dict(type='mmrazor.MovingAverageMinMaxObserver'),
    w_fake_quant=dict(type='mmrazor.FakeQuantize'),
    a_fake_quant=dict(type='mmrazor.FakeQuantize'),
    w_qscheme=dict(
        qdtype='qint8', bit=8, is_symmetry=True, is_symmetric_range=True),
    a_qscheme=dict(
        qdtype='quint8', bit=8, is_symmetry=True, averaging_constant=0.1),
)

CLASSIFIER = dict(
    _scope_='mmpretrain',
    type='ImageClassifier',
    backbone=dict(type='CIFARResNet', depth=8),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=64))


def _safe_globals() -> list:
    """Every object allowed for weights-only loading, names unwrapped."""
    return [
        entry[0] if isinstance(entry, tuple) else entry
        for entry in torch.serialization.get_safe_globals()
    ]


# --------------------------------------------------------------- imports


@pytest.mark.slow  # a subprocess
def test_mmrazor_imports_in_a_fresh_process():
    """``import amkd_plugin`` first, then all of MMRazor imports."""
    code = ('import amkd_plugin\n'
            'import mmrazor.models\n'
            'from mmrazor.utils import register_all_modules\n'
            'register_all_modules()\n'
            'from mmrazor.registry import MODELS\n'
            "assert MODELS.get('SingleTeacherDistill') is not None\n"
            "print('ok')\n")
    result = subprocess.run([sys.executable, '-c', code],
                            cwd=REPO_ROOT,
                            capture_output=True,
                            text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith('ok')


@pytest.mark.slow  # two trainings in subprocesses
def test_mmrazors_own_train_tool_runs_through_the_plugin(
        tmp_path, trained_digits_teacher):
    """MMRazor's own tools/train.py (what ``mim train mmrazor`` runs) stops
    at MMRazor's import on torch >= 2, before the config's custom_imports;
    ``python -m amkd_plugin.mmrazor_tool`` runs it unchanged, here for one
    epoch of the digits AMKD config (boundary bank built)."""
    import mmrazor
    tool = Path(mmrazor.__file__).parent / '.mim/tools/train.py'
    args = [
        'configs/amkd/resnet20_resnet8_digits.py', '--work-dir', tmp_path,
        '--cfg-options', 'train_cfg.max_epochs=1',
        'train_dataloader.dataset.indices=256',
        f'model.teacher_ckpt={trained_digits_teacher}'
    ]
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}

    def run(*command) -> subprocess.CompletedProcess:
        return subprocess.run([str(arg) for arg in command], cwd=REPO_ROOT,
                              env=env, capture_output=True, text=True,
                              timeout=600)

    if compat._mmrazor_quantization_is_broken():
        stock = run(sys.executable, tool, *args)
        assert stock.returncode != 0
        assert '`torch>=1.13` is not installed properly' in stock.stderr
    result = run(sys.executable, '-m', 'amkd_plugin.mmrazor_tool', 'train',
                 *args)
    assert result.returncode == 0, result.stderr[-4000:]
    assert 'Boundary bank: building' in result.stdout + result.stderr
    torch.load(tmp_path / 'epoch_1.pth', weights_only=True)


@pytest.mark.parametrize('name', [
    'SingleTeacherDistill', 'ConfigurableDistiller', 'KLDivergence',
    'DKDLoss', 'L2Loss', 'ConvModuleConnector', 'AMKDDistill',
    'AMKDDistiller', 'TripletMetricLoss'
])
def test_distillation_parts_registered(name):
    import mmrazor.models  # noqa: F401
    from mmrazor.registry import MODELS
    assert MODELS.get(name) is not None


def test_amkd_task_modules_and_hooks_registered():
    from mmrazor.registry import HOOKS, TASK_UTILS
    assert TASK_UTILS.get('BoundaryAttack') is not None
    assert HOOKS.get('AdversarialBoundaryHook') is not None


# ----------------------------------------------------------- quantization


def _assert_explains(error: compat.QuantizationUnavailableError) -> None:
    message = str(error)
    assert 'torch 1.13' in message
    assert '#615' in message and '#632' in message
    assert torch.__version__ in message


@pytest.mark.parametrize('quantizer', [
    'TorchNativeQuantizer', 'OpenVINOQuantizer', 'TensorRTQuantizer'
])
def test_building_a_quantizer_explains_why_not(quantizer):
    import mmrazor.models  # noqa: F401
    from mmrazor.registry import MODELS
    with pytest.raises(compat.QuantizationUnavailableError) as info, \
            DefaultScope.overwrite_default_scope('mmrazor'):
        MODELS.build(dict(type=quantizer, global_qconfig=GLOBAL_QCONFIG))
    _assert_explains(info.value)


def test_building_a_quantization_algorithm_explains_why_not():
    import mmrazor.models  # noqa: F401
    from mmrazor.registry import MODELS
    with pytest.raises(compat.QuantizationUnavailableError) as info, \
            DefaultScope.overwrite_default_scope('mmrazor'):
        MODELS.build(
            dict(
                type='MMArchitectureQuant',
                architecture=CLASSIFIER,
                quantizer=dict(
                    type='mmrazor.TorchNativeQuantizer',
                    global_qconfig=GLOBAL_QCONFIG)))
    _assert_explains(info.value)


def test_backend_config_lookups_raise():
    from mmrazor.structures.quantization import backend_config
    with pytest.raises(compat.QuantizationUnavailableError):
        backend_config.BackendConfigs['native']
    with pytest.raises(compat.QuantizationUnavailableError):
        backend_config.get_native_backend_config()


# ------------------------------------------------------------ idempotence


def test_apply_is_idempotent():
    from mmrazor.registry import MODELS
    compat.apply()
    registered = dict(MODELS.module_dict)
    finders = [
        f for f in sys.meta_path
        if isinstance(f, compat._BackendConfigStandIn)
    ]
    safe = collections.Counter(map(id, _safe_globals()))
    getstate = HistoryBuffer.__getstate__
    compat.apply()
    compat.apply()
    assert [
        f for f in sys.meta_path
        if isinstance(f, compat._BackendConfigStandIn)
    ] == finders
    assert len(finders) == int(compat._mmrazor_quantization_is_broken())
    assert collections.Counter(map(id, _safe_globals())) == safe
    assert max(safe.values()) == 1
    assert HistoryBuffer.__getstate__ is getstate
    assert getstate is compat._history_buffer_getstate
    assert dict(MODELS.module_dict) == registered


def test_apply_does_not_wrap_its_own_distributed_patches():
    from mmengine.dist import utils as dist_utils
    from mmengine.model import MMDistributedDataParallel
    compat.apply()
    compat.apply()
    assert dist_utils._init_dist_pytorch is compat._init_dist_pytorch
    assert MMDistributedDataParallel.__init__ is compat._ddp_init
    # The wrapped functions are MMEngine's own, not an earlier wrapper.
    assert not hasattr(compat._init_dist_pytorch.stock, 'stock')
    assert not hasattr(compat._ddp_init.stock, 'stock')


# ------------------------------------------------------- without a GPU


@pytest.mark.slow  # a subprocess
def test_distributed_init_and_ddp_on_cpu(tmp_path):
    """MMEngine's init_dist and its DDP wrapper work on a CPU model.

    Stock MMEngine 0.10.7 calls ``torch.cuda.set_device`` (fails without a
    GPU) and passes CUDA ``device_ids`` (refused for CPU models). A fresh
    process, so that no process group leaks into other tests.
    """
    code = (
        'import os, socket, torch\n'
        'import amkd_plugin\n'
        'from mmengine.dist import init_dist, get_dist_info\n'
        'from mmengine.model import MMDistributedDataParallel\n'
        's = socket.socket(); s.bind(("127.0.0.1", 0))\n'
        'os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1",\n'
        '                  MASTER_ADDR="127.0.0.1",\n'
        '                  MASTER_PORT=str(s.getsockname()[1]))\n'
        's.close()\n'
        'init_dist("pytorch", backend="gloo", timeout=60)\n'
        'assert get_dist_info() == (0, 1)\n'
        'model = MMDistributedDataParallel(\n'
        '    module=torch.nn.Linear(2, 1), device_ids=[0],\n'
        '    broadcast_buffers=False)\n'
        'assert model.device_ids is None\n'
        'model(torch.ones(3, 2)).sum().backward()\n'
        'torch.distributed.destroy_process_group()\n'
        'print("ok")\n')
    result = subprocess.run([sys.executable, '-c', code],
                            cwd=tmp_path,
                            capture_output=True,
                            text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith('ok')


# ------------------------------------------------------------ checkpoints


def test_history_buffer_pickles_without_statistics_methods():
    buffer = HistoryBuffer()
    for value in (1., 2., 6.):
        buffer.update(value)
    assert 'statistics_methods' not in buffer.__getstate__()
    data = pickle.dumps(buffer)
    assert b'statistics_methods' not in data
    assert 'statistics_methods' not in buffer.__dict__  # state not mutated
    restored = pickle.loads(data)
    assert restored.mean() == pytest.approx(3.)
    assert restored.statistics('max') == 6.
    assert restored.current() == 6.


def test_runner_checkpoint_types_load_weights_only(tmp_path):
    loss = HistoryBuffer()
    for value in (0.5, 0.25):
        loss.update(value)
    checkpoint = dict(
        meta=dict(epoch=3, iter=12, seed=np.int64(7), lr=np.float64(0.05)),
        message_hub=dict(
            log_scalars={'train/loss': loss},
            runtime_info=dict(
                best_score=np.float64(0.875),
                counts=np.array([1, 2, 3], dtype=np.int64),
                mask=np.array([True, False]),
                scores=np.arange(6, dtype=np.float32).reshape(2, 3),
                half=np.float16(1.5),
                small=np.uint8(200))),
        state_dict={'fc.weight': torch.ones(2, 3)})
    path = tmp_path / 'epoch_3.pth'
    torch.save(checkpoint, path)

    loaded = torch.load(path, weights_only=True)

    meta = loaded['meta']
    assert meta['seed'] == 7 and isinstance(meta['seed'], np.int64)
    assert meta['lr'] == 0.05 and isinstance(meta['lr'], np.float64)
    info = loaded['message_hub']['runtime_info']
    assert info['best_score'] == 0.875
    assert isinstance(info['best_score'], np.float64)
    np.testing.assert_array_equal(info['counts'], [1, 2, 3])
    assert info['counts'].dtype == np.int64
    np.testing.assert_array_equal(info['mask'], [True, False])
    np.testing.assert_array_equal(
        info['scores'], np.arange(6, dtype=np.float32).reshape(2, 3))
    assert info['half'] == np.float16(1.5) and info['small'] == 200
    restored = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(restored, HistoryBuffer)
    assert restored.mean() == pytest.approx(0.375)
    assert restored.current() == 0.25
    assert torch.equal(loaded['state_dict']['fc.weight'], torch.ones(2, 3))


class ArbitraryObject:
    """A class no checkpoint should be able to instantiate."""

    def __init__(self):
        self.value = 1


class SneakyOrderedDict(collections.OrderedDict):
    """A subclass of an allowed container type."""


class MarkerPayload:
    """Unpickling this runs ``os.system('touch MARKER')``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


@pytest.mark.parametrize('make', [
    lambda tmp: ArbitraryObject(),
    lambda tmp: SneakyOrderedDict(a=torch.zeros(1)),
    lambda tmp: builtins.getattr,
    lambda tmp: MarkerPayload(tmp / 'marker'),
],
                         ids=['instance', 'ordereddict-subclass', 'getattr',
                              'os-system'])
def test_weights_only_refuses_other_objects(tmp_path, make):
    path = tmp_path / 'evil.pth'
    torch.save(dict(state_dict={}, meta=dict(payload=make(tmp_path))), path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    assert not (tmp_path / 'marker').exists()


def test_marker_payload_is_live(tmp_path):
    """The refusal above matters: unpickled freely, the payload runs."""
    data = pickle.dumps(MarkerPayload(tmp_path / 'marker'))
    assert not (tmp_path / 'marker').exists()
    pickle.loads(data)
    assert (tmp_path / 'marker').exists()


def test_getattr_and_code_execution_are_not_allowed():
    safe = _safe_globals()
    for dangerous in (getattr, eval, exec, os.system, setattr, __import__):
        assert all(entry is not dangerous for entry in safe), dangerous
    assert HistoryBuffer in safe
