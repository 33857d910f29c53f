# Copyright (c) amkd-mmrazor contributors.
"""Tests for fold_batch_norms on small classifiers with trained-looking
BatchNorm statistics: what it folds, what it keeps and why."""
import copy

import pytest
import torch
from torch import nn

import amkd_plugin  # noqa: F401  (mends mmrazor's import first)
from amkd_plugin.models.algorithms.fold_batch_norms import fold_batch_norms
from mmrazor.models.task_modules import (FunctionOutputsRecorder,
                                         ModuleOutputsRecorder)

pytestmark = pytest.mark.usefixtures('single_torch_thread')


class Shared(nn.Module):
    """A convolution whose output goes to its BatchNorm and around it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.bn(y) + y


class Untraceable(nn.Sequential):
    """Control flow on the input: ``torch.fx`` cannot trace it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x if x.sum() > 0 else -x)


class Classifier(nn.Module):
    """A backbone, pooled, and a linear head, called as MMPretrain's."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor, mode: str = 'tensor') -> torch.Tensor:
        return self.head(self.backbone(x).mean((2, 3)))


def make_teacher(backbone_type: type = nn.Sequential) -> Classifier:
    """Conv -> BN -> ReLU, then ``Shared``; random BatchNorm statistics."""
    torch.manual_seed(0)
    teacher = Classifier(
        backbone_type(
            nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
            Shared()))
    for bn in teacher.modules():
        if isinstance(bn, nn.BatchNorm2d):
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
            bn.weight.data.uniform_(0.5, 2)
            bn.bias.data.uniform_(-1, 1)
    return teacher.eval().requires_grad_(False)


def batch_norms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_folds_where_the_convolution_feeds_the_batch_norm_alone():
    teacher = make_teacher()
    unfolded = copy.deepcopy(teacher)
    images = torch.randn(5, 1, 8, 8)

    assert fold_batch_norms(teacher, [])

    # The first BatchNorm is folded; Shared's stays: its convolution's
    # output is also added unnormalised.
    assert batch_norms(teacher) == 1
    assert not any(p.requires_grad for p in teacher.parameters())
    torch.testing.assert_close(
        teacher(images), unfolded(images), rtol=1e-5, atol=1e-5)


def test_keeps_the_batch_norms_a_recorder_reads_inside():
    teacher = make_teacher()
    reads_logits = ModuleOutputsRecorder('head')
    reads_features = ModuleOutputsRecorder('backbone.1')
    reads_a_function = FunctionOutputsRecorder('torch.nn.functional.relu')

    assert not fold_batch_norms(teacher, [reads_logits, reads_features])
    assert not fold_batch_norms(teacher, [reads_a_function])
    assert batch_norms(teacher) == 2
    assert fold_batch_norms(teacher, [reads_logits])


def test_keeps_an_untraceable_backbone():
    teacher = make_teacher(Untraceable)

    assert not fold_batch_norms(teacher, [])
    assert batch_norms(teacher) == 2
