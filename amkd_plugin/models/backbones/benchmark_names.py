# Copyright (c) amkd-mmrazor contributors.
"""Classifier names of the released RepDistiller/CRD CIFAR-100 networks.

A released ``<arch>_vanilla/ckpt_epoch_240.pth`` holds the bare network's
``state_dict`` under ``'model'``. Our classifier built from
``configs/_base_/models/<config>.py`` has the same keys after prefixing the
backbone keys with ``backbone.`` and renaming the released classifier
``CLASSIFIER_PREFIXES[config] + 'weight'/'bias'`` to ``head.fc.weight``/
``head.fc.bias``.
"""
from typing import Dict

CLASSIFIER_PREFIXES: Dict[str, str] = {
    **{
        name: 'fc.'
        for name in ('resnet8', 'resnet14', 'resnet20', 'resnet32',
                     'resnet44', 'resnet56', 'resnet110', 'resnet8x4',
                     'resnet32x4', 'wrn_16_2', 'wrn_40_1', 'wrn_40_2')
    },
    'vgg8': 'classifier.',
    'vgg13': 'classifier.',
    'resnet50': 'linear.',
    # The reference wraps its Linear in an nn.Sequential.
    'mobilenetv2': 'classifier.0.',
    'shufflenetv1': 'linear.',
    'shufflenetv2': 'linear.',
}
