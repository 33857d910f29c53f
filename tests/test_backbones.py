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
from amkd_plugin.models.backbones import CIFARResNet, CIFARWideResNet

MODEL_CFG_DIR = Path(__file__).resolve().parents[1] / 'configs/_base_/models'
ALL_CONFIGS = [
    'resnet8', 'resnet14', 'resnet20', 'resnet32', 'resnet44', 'resnet56',
    'resnet110', 'resnet8x4', 'resnet32x4', 'wrn_16_2', 'wrn_40_2'
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
}
# (config, backbone channels at the last stage)
LAST_STAGE_CHANNELS = [('resnet20', 64), ('resnet8x4', 256),
                       ('wrn_16_2', 128)]


def build_classifier(name: str) -> torch.nn.Module:
    cfg = Config.fromfile(str(MODEL_CFG_DIR / f'{name}.py'))
    return MODELS.build(cfg.model)


def bn_layers(module: torch.nn.Module) -> list:
    return [m for m in module.modules() if isinstance(m, _BatchNorm)]


@pytest.mark.parametrize('name', sorted(PUBLISHED_PARAMS_M))
def test_param_count_matches_published(name):
    model = build_classifier(name)
    count_m = sum(p.numel() for p in model.parameters()) / 1e6
    # Published numbers are rounded to 0.01M.
    assert abs(count_m - PUBLISHED_PARAMS_M[name]) <= 0.005, count_m


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


@pytest.mark.parametrize('cls,depth', [(CIFARResNet, 8),
                                       (CIFARWideResNet, 10)])
def test_norm_eval(cls, depth):
    backbone = cls(depth=depth, norm_eval=True).train()
    assert backbone.training
    bns = bn_layers(backbone)
    assert bns and all(not bn.training for bn in bns)
    stats = [bn.running_mean.clone() for bn in bns]
    backbone(torch.randn(2, 3, 32, 32))
    assert all(
        torch.equal(bn.running_mean, s) for bn, s in zip(bns, stats))
    # norm_eval freezes statistics only, not the affine parameters.
    assert all(p.requires_grad for p in backbone.parameters())


@pytest.mark.parametrize('name', ['resnet8', 'resnet8x4', 'wrn_16_2'])
def test_backward_reaches_every_parameter(name):
    model = build_classifier(name)
    model.init_weights()
    model.train()
    logits = model(torch.randn(4, 3, 32, 32), mode='tensor')
    F.cross_entropy(logits, torch.tensor([0, 1, 2, 3])).backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None, param_name
        assert torch.isfinite(param.grad).all(), param_name
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
