# Copyright (c) amkd-mmrazor contributors.
"""Function-matching KD (configs/kd/*_fm.py): stock MMRazor KD where the
teacher and the student see the same mixed batch."""
import copy

import torch
from helpers import REPO
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample
from mmrazor.registry import MODELS


FM = REPO / 'configs/kd/resnet20_resnet8_fashion_mnist_lowdata_fm.py'
TEACHER = REPO / 'results/fashion_mnist/teacher/resnet20_fashion_mnist.pth'


def build(cfg: Config):
    model = copy.deepcopy(cfg.model)
    model.teacher_ckpt = str(TEACHER)
    model.data_preprocessor = copy.deepcopy(cfg.data_preprocessor)
    with DefaultScope.overwrite_default_scope('mmrazor'):
        return MODELS.build(model)


def batch(n: int = 8) -> dict:
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 1, 28, 28), generator=gen,
                           dtype=torch.uint8)
    samples = [DataSample().set_gt_label(i % 10) for i in range(n)]
    return dict(inputs=list(images), data_samples=samples)


def test_teacher_and_student_see_the_same_mixed_batch():
    torch.manual_seed(0)
    algorithm = build(Config.fromfile(str(FM)))
    seen = {}

    def keep(role):
        def hook(module, args):
            seen[role] = args[0].detach().clone()
        return hook

    algorithm.teacher.backbone.register_forward_pre_hook(keep('teacher'))
    algorithm.student.backbone.register_forward_pre_hook(keep('student'))
    algorithm.data_preprocessor.register_forward_hook(
        lambda module, args, out: seen.setdefault('mixed', out))
    data = batch()
    plain = algorithm.data_preprocessor(copy.deepcopy(data), False)
    seen.clear()
    algorithm.train()
    wrapper = OptimWrapper(torch.optim.SGD(algorithm.parameters(), lr=0.01))
    losses = algorithm.train_step(copy.deepcopy(data), wrapper)
    mixed = seen['mixed']

    assert torch.equal(seen['teacher'], seen['student'])
    assert torch.equal(seen['student'], mixed['inputs'])
    # Mixed: neither the plain batch nor a one-hot label.
    assert not torch.equal(mixed['inputs'], plain['inputs'])
    scores = torch.stack([s.gt_score for s in mixed['data_samples']])
    torch.testing.assert_close(scores.sum(1), torch.ones(8))
    assert (scores.max(1).values < 1).any()
    assert set(losses) == {'loss', 'student.loss', 'distill.loss_kd'}
    assert all(torch.isfinite(v) for v in losses.values())


def test_without_the_augments_it_is_the_kd_pair():
    fm = Config.fromfile(str(FM))
    kd = Config.fromfile(str(FM).replace('_fm.py', '.py'))
    del fm.data_preprocessor['batch_augments']
    fm.model.architecture.head.loss.pop('use_soft')
    fm.pop('batch_augments')  # the mixin's own key
    assert fm.to_dict() == kd.to_dict()
