# Copyright (c) amkd-mmrazor contributors.
"""Tests for the KD-benchmark CIFAR backbones and their model configs."""
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from mmengine import Config
from mmpretrain.registry import MODELS
from torch.nn.modules.batchnorm import _BatchNorm

# Importing the package also registers the backbones in MODELS.
from amkd_plugin.models.backbones import (CIFARBottleneckResNet,
                                          CIFARMobileNetV2, CIFARResNet,
                                          CIFARShuffleNetV1,
                                          CIFARShuffleNetV2, CIFARVGG,
                                          CIFARWideResNet)
from amkd_plugin.models.backbones.benchmark_names import CLASSIFIER_PREFIXES

MODEL_CFG_DIR = Path(__file__).resolve().parents[1] / 'configs/_base_/models'
ALL_CONFIGS = [
    'resnet8', 'resnet14', 'resnet20', 'resnet32', 'resnet44', 'resnet56',
    'resnet110', 'resnet8x4', 'resnet32x4', 'wrn_16_2', 'wrn_40_1',
    'wrn_40_2', 'vgg8', 'vgg13', 'resnet50', 'mobilenetv2', 'shufflenetv1',
    'shufflenetv2'
]
# Millions of parameters of the 100-class networks as commonly reported in
# CIFAR-100 KD papers, given to two decimals.
PUBLISHED_PARAMS_M = {
    'resnet8': 0.08,
    'resnet20': 0.28,
    'resnet32': 0.47,
    'resnet56': 0.86,
    'resnet110': 1.74,
    'resnet8x4': 1.23,
    'resnet32x4': 7.43,
    'wrn_16_2': 0.70,
    'wrn_40_2': 2.26,
    # MMPretrain model zoo, configs/resnet/metafile.yml,
    # resnet50_8xb16_cifar100: the same CIFAR-stem bottleneck ResNet-50.
    'resnet50': 23.71,
}
# Exact parameter counts of RepDistiller's 100-class networks, obtained by
# instantiating `model_dict[arch](num_classes=100)` from its models/.
REPDISTILLER_PARAMS = {
    'vgg8': 3965028,
    'vgg13': 9462180,
    'resnet50': 23705252,
    'mobilenetv2': 812836,
    'shufflenetv1': 949258,
    'shufflenetv2': 1355528,
    'wrn_40_1': 569780,
}
# Per config: the number of entries (buffers, num_batches_tracked too) of the
# released state_dict and some of its keys with their shapes, as defined by
# RepDistiller's models/ (vgg.py, resnetv2.py, mobilenetv2.py,
# ShuffleNetv1.py, ShuffleNetv2.py, wrn.py).
RELEASED_KEYS = {
    'vgg8': (37, {
        'block0.0.weight': (64, 3, 3, 3),
        'block0.0.bias': (64, ),
        'block0.1.running_var': (64, ),
        'block4.0.weight': (512, 512, 3, 3),
        'classifier.weight': (100, 512),
    }),
    'vgg13': (72, {
        'block0.3.weight': (64, 64, 3, 3),
        'block1.4.running_mean': (128, ),
        'block4.3.weight': (512, 512, 3, 3),
        'classifier.bias': (100, ),
    }),
    'resnet50': (320, {
        'conv1.weight': (64, 3, 3, 3),
        'layer1.0.shortcut.0.weight': (256, 64, 1, 1),
        'layer2.0.conv2.weight': (128, 128, 3, 3),
        'layer3.0.shortcut.1.num_batches_tracked': (),
        'layer4.2.bn3.weight': (2048, ),
        'linear.weight': (100, 2048),
    }),
    'mobilenetv2': (320, {
        'conv1.0.weight': (16, 3, 3, 3),
        'blocks.0.0.conv.0.weight': (16, 16, 1, 1),
        'blocks.1.0.conv.3.weight': (48, 1, 3, 3),
        'blocks.6.0.conv.6.weight': (160, 480, 1, 1),
        'conv2.0.weight': (1280, 160, 1, 1),
        'conv2.1.running_mean': (1280, ),
        'classifier.0.weight': (100, 1280),
    }),
    'shufflenetv1': (296, {
        'conv1.weight': (24, 3, 1, 1),
        'layer1.0.conv1.weight': (54, 24, 1, 1),
        'layer1.0.conv3.weight': (216, 18, 1, 1),
        'layer1.1.conv1.weight': (60, 80, 1, 1),
        'layer2.0.conv1.weight': (60, 80, 1, 1),
        'layer3.3.conv2.weight': (240, 1, 3, 3),
        'linear.weight': (100, 960),
    }),
    'shufflenetv2': (338, {
        'conv1.weight': (24, 3, 1, 1),
        'layer1.0.conv1.weight': (24, 1, 3, 3),
        'layer1.0.conv5.weight': (58, 58, 1, 1),
        'layer1.1.conv1.weight': (58, 58, 1, 1),
        'layer3.3.bn3.running_var': (232, ),
        'conv2.weight': (1024, 464, 1, 1),
        'linear.weight': (100, 1024),
    }),
    'wrn_40_1': (226, {
        'conv1.weight': (16, 3, 3, 3),
        'block1.layer.0.conv1.weight': (16, 16, 3, 3),
        'block2.layer.0.convShortcut.weight': (32, 16, 1, 1),
        'block3.layer.5.conv2.weight': (64, 64, 3, 3),
        'bn1.running_mean': (64, ),
        'fc.weight': (100, 64),
    }),
}
# (config, backbone channels at the last stage)
LAST_STAGE_CHANNELS = [('resnet20', 64), ('resnet8x4', 256),
                       ('wrn_16_2', 128)]


def build_classifier(name: str) -> torch.nn.Module:
    cfg = Config.fromfile(str(MODEL_CFG_DIR / f'{name}.py'))
    return MODELS.build(cfg.model)


def bn_layers(module: torch.nn.Module) -> list:
    return [m for m in module.modules() if isinstance(m, _BatchNorm)]


def to_released(state_dict: dict, name: str) -> dict:
    """Rename our classifier's keys to those of the released network."""
    prefix = CLASSIFIER_PREFIXES[name]
    released = {}
    for key, value in state_dict.items():
        if key.startswith('head.fc.'):
            released[prefix + key[len('head.fc.'):]] = value
        else:
            assert key.startswith('backbone.'), key
            released[key[len('backbone.'):]] = value
    return released


def from_released(released: dict, name: str) -> dict:
    """Rename a released network's keys to those of our classifier."""
    prefix = CLASSIFIER_PREFIXES[name]
    return {('head.fc.' + key[len(prefix):]) if key.startswith(prefix) else
            'backbone.' + key: value
            for key, value in released.items()}


@pytest.mark.parametrize('name', sorted(PUBLISHED_PARAMS_M))
def test_param_count_matches_published(name):
    model = build_classifier(name)
    count_m = sum(p.numel() for p in model.parameters()) / 1e6
    # Published numbers are rounded to 0.01M.
    assert abs(count_m - PUBLISHED_PARAMS_M[name]) <= 0.005, count_m


@pytest.mark.parametrize('name', sorted(REPDISTILLER_PARAMS))
def test_param_count_matches_repdistiller(name):
    model = build_classifier(name)
    assert sum(p.numel() for p in model.parameters()) == \
        REPDISTILLER_PARAMS[name]


def test_every_config_has_a_classifier_prefix():
    assert set(CLASSIFIER_PREFIXES) == set(ALL_CONFIGS)


@pytest.mark.parametrize('name', sorted(RELEASED_KEYS))
def test_released_state_dict_round_trip(name):
    model = build_classifier(name).eval()
    released = to_released(model.state_dict(), name)
    num_keys, samples = RELEASED_KEYS[name]
    assert len(released) == num_keys
    assert {
        key: tuple(released[key].shape)
        for key in samples if key in released
    } == samples
    restored = build_classifier(name).eval()
    restored.load_state_dict(from_released(released, name), strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(
            restored(x, mode='tensor'), model(x, mode='tensor'))


@pytest.mark.parametrize('name', ALL_CONFIGS)
def test_config_builds_classifier_with_100_logits(name):
    model = build_classifier(name).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 3, 32, 32), mode='tensor')
    assert logits.shape == (2, 100)


@pytest.mark.parametrize('name,channels', LAST_STAGE_CHANNELS)
@pytest.mark.parametrize('size', [32, 64])
def test_last_stage_shape(name, channels, size):
    model = build_classifier(name).eval()
    with torch.no_grad():
        feats = model.backbone(torch.randn(2, 3, size, size))
        logits = model(torch.randn(2, 3, size, size), mode='tensor')
    assert len(feats) == 1
    assert feats[0].shape == (2, channels, size // 4, size // 4)
    assert logits.shape == (2, 100)


@pytest.mark.parametrize('cls,kwargs,channels', [
    (CIFARResNet,
     dict(depth=8, widths=(32, 64, 128, 256), out_indices=(0, 1, -1)),
     (64, 128, 256)),
    (CIFARWideResNet, dict(depth=10, widen_factor=2, out_indices=(0, 1, 2)),
     (32, 64, 128)),
])
def test_all_stage_outputs(cls, kwargs, channels):
    backbone = cls(**kwargs).eval()
    feats = backbone(torch.randn(1, 3, 32, 32))
    assert [f.shape for f in feats] == [(1, c, 32 // 2**i, 32 // 2**i)
                                        for i, c in enumerate(channels)]
    assert backbone.out_channels == channels


@pytest.mark.parametrize('cls,kwargs,shapes', [
    (CIFARVGG, dict(depth=8, out_indices=(0, 1, 2, 3)),
     [(128, 16), (256, 8), (512, 4), (512, 4)]),
    (CIFARBottleneckResNet, dict(depth=50, out_indices=(0, 1, 2, 3)),
     [(256, 32), (512, 16), (1024, 8), (2048, 4)]),
    (CIFARMobileNetV2, dict(out_indices=(1, 2, 4, 7)),
     [(12, 16), (16, 8), (48, 4), (1280, 2)]),
    (CIFARShuffleNetV1, dict(out_indices=(0, 1, 2)),
     [(240, 16), (480, 8), (960, 4)]),
    (CIFARShuffleNetV2, dict(out_indices=(0, 1, 2, 3)),
     [(116, 16), (232, 8), (464, 4), (1024, 4)]),
])
def test_benchmark_stage_outputs(cls, kwargs, shapes):
    backbone = cls(**kwargs).eval()
    with torch.no_grad():
        feats = backbone(torch.randn(1, 3, 32, 32))
    assert [tuple(f.shape) for f in feats] == [(1, c, size, size)
                                               for c, size in shapes]
    assert backbone.out_channels == tuple(c for c, _ in shapes)


def test_vgg_pools_before_last_block_only_for_64px_inputs():
    backbone = CIFARVGG(depth=8, out_indices=(2, 3)).eval()
    with torch.no_grad():
        small = backbone(torch.randn(1, 3, 32, 32))
        large = backbone(torch.randn(1, 3, 64, 64))
    assert [f.shape[-1] for f in small] == [4, 4]
    assert [f.shape[-1] for f in large] == [8, 4]


def test_wrn_output_ends_with_bn_relu():
    backbone = CIFARWideResNet(depth=10).eval()
    captured = {}
    backbone.block3.register_forward_hook(
        lambda module, inputs, output: captured.update(raw=output.clone()))
    out = backbone(torch.randn(2, 3, 32, 32))[0]
    assert torch.allclose(out, F.relu(backbone.bn1(captured['raw'])))


@pytest.mark.parametrize('cls,depth,match', [
    (CIFARResNet, 21, r'6n\+2.*8, 14, 20'),
    (CIFARResNet, 2, r'6n\+2'),
    (CIFARWideResNet, 20, r'6n\+4.*16, 22, 28, 40'),
    (CIFARVGG, 10, r'8, 11, 13, 16, 19'),
    (CIFARBottleneckResNet, 34, r'50, 101, 152'),
])
def test_invalid_depth_raises(cls, depth, match):
    with pytest.raises(ValueError, match=match):
        cls(depth=depth)


def test_invalid_out_indices_raises():
    with pytest.raises(ValueError, match='out_indices'):
        CIFARResNet(depth=8, out_indices=(3, ))


def test_frozen_stages():
    backbone = CIFARResNet(depth=8, frozen_stages=1).train()
    frozen = [backbone.conv1, backbone.bn1, backbone.layer1]
    trainable = [backbone.layer2, backbone.layer3]
    for module in frozen:
        assert all(not p.requires_grad for p in module.parameters())
        assert all(not m.training for m in module.modules())
    for module in trainable:
        assert all(p.requires_grad for p in module.parameters())
        assert all(m.training for m in module.modules())
    stats = backbone.layer1[0].bn1.running_mean.clone()
    backbone(torch.randn(2, 3, 32, 32))
    assert torch.equal(backbone.layer1[0].bn1.running_mean, stats)


@pytest.mark.parametrize('cls,kwargs,frozen,trainable', [
    (CIFARVGG, dict(depth=8, frozen_stages=1), ['block0', 'block1'],
     ['block2', 'block4']),
    (CIFARBottleneckResNet, dict(depth=50, frozen_stages=1),
     ['conv1', 'bn1', 'layer1'], ['layer2', 'layer4']),
    (CIFARMobileNetV2, dict(frozen_stages=1), ['conv1', 'blocks.0'],
     ['blocks.1', 'conv2']),
    (CIFARShuffleNetV1, dict(frozen_stages=1), ['conv1', 'bn1', 'layer1'],
     ['layer2', 'layer3']),
    (CIFARShuffleNetV2, dict(frozen_stages=3), ['conv1', 'bn1', 'layer3'],
     ['conv2', 'bn2']),
    (CIFARShuffleNetV2, dict(frozen_stages=4), ['layer3', 'conv2', 'bn2'],
     []),
])
def test_frozen_stages_of_benchmark_backbones(cls, kwargs, frozen,
                                              trainable):
    backbone = cls(**kwargs).train()
    for name in frozen:
        module = backbone.get_submodule(name)
        assert all(not p.requires_grad for p in module.parameters()), name
        assert all(not m.training for m in module.modules()), name
    for name in trainable:
        module = backbone.get_submodule(name)
        assert all(p.requires_grad for p in module.parameters()), name
        assert all(m.training for m in module.modules()), name


@pytest.mark.parametrize('cls,kwargs', [
    (CIFARResNet, dict(depth=8)),
    (CIFARWideResNet, dict(depth=10)),
    (CIFARVGG, dict(depth=8)),
    (CIFARBottleneckResNet, dict(depth=50)),
    (CIFARMobileNetV2, dict()),
    (CIFARShuffleNetV1, dict()),
    (CIFARShuffleNetV2, dict()),
])
def test_norm_eval(cls, kwargs):
    backbone = cls(norm_eval=True, **kwargs).train()
    assert backbone.training
    bns = bn_layers(backbone)
    assert bns and all(not bn.training for bn in bns)
    stats = [bn.running_mean.clone() for bn in bns]
    backbone(torch.randn(2, 3, 32, 32))
    assert all(
        torch.equal(bn.running_mean, s) for bn, s in zip(bns, stats))
    # norm_eval freezes statistics only, not the affine parameters.
    assert all(p.requires_grad for p in backbone.parameters())


@pytest.mark.parametrize('name', [
    'resnet8', 'resnet8x4', 'wrn_16_2', 'vgg8', 'mobilenetv2',
    'shufflenetv1', 'shufflenetv2'
])
def test_backward_reaches_every_parameter(name):
    model = build_classifier(name)
    model.init_weights()
    model.train()
    logits = model(torch.randn(4, 3, 32, 32), mode='tensor')
    F.cross_entropy(logits, torch.tensor([0, 1, 2, 3])).backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None, param_name  # on the graph
        assert torch.isfinite(param.grad).all(), param_name
        # A bias followed by a train-mode BatchNorm (VGG's conv biases,
        # some ShuffleNet BN biases) has a zero gradient in exact math and
        # float noise here; weights have real ones.
        if param.dim() > 1:
            assert param.grad.abs().sum() > 0, param_name


def test_init_weights_kaiming_fan_out_and_unit_bn():
    backbone = CIFARResNet(depth=8, widths=(32, 64, 128, 256))
    backbone.init_weights()
    conv = backbone.layer3[0].conv2
    expected_std = math.sqrt(2 / (conv.out_channels * 9))
    assert conv.weight.std().item() == pytest.approx(expected_std, rel=0.05)
    for bn in bn_layers(backbone):
        assert torch.equal(bn.weight, torch.ones_like(bn.weight))
        assert torch.equal(bn.bias, torch.zeros_like(bn.bias))


def test_state_dict_keys_follow_repdistiller():
    resnet_keys = CIFARResNet(depth=8).state_dict().keys()
    assert {'conv1.weight', 'bn1.running_var', 'layer1.0.conv2.weight',
            'layer2.0.downsample.0.weight',
            'layer3.0.downsample.1.bias'} <= resnet_keys
    assert 'layer1.0.downsample.0.weight' not in resnet_keys
    wrn_keys = CIFARWideResNet(depth=16, widen_factor=2).state_dict().keys()
    assert {'conv1.weight', 'block1.layer.0.convShortcut.weight',
            'block3.layer.1.bn2.weight', 'bn1.running_mean'} <= wrn_keys
    assert 'block1.layer.1.convShortcut.weight' not in wrn_keys


def test_wrn_dropout_only_in_train_mode():
    backbone = CIFARWideResNet(depth=10, drop_rate=0.5, norm_eval=True)
    x = torch.randn(2, 3, 32, 32)
    backbone.train()
    assert not torch.equal(backbone(x)[0], backbone(x)[0])
    backbone.eval()
    assert torch.equal(backbone(x)[0], backbone(x)[0])
