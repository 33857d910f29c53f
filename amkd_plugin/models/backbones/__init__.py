# Copyright (c) amkd-mmrazor contributors.
from .cifar_resnet import CIFARResNet
from .wide_resnet import CIFARWideResNet

__all__ = ['CIFARResNet', 'CIFARWideResNet']
