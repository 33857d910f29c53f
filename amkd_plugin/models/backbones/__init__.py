# Copyright (c) amkd-mmrazor contributors.
from .bottleneck_resnet import CIFARBottleneckResNet
from .cifar_resnet import CIFARResNet
from .mobilenet_v2 import CIFARMobileNetV2
from .shufflenet_v1 import CIFARShuffleNetV1
from .shufflenet_v2 import CIFARShuffleNetV2
from .vgg import CIFARVGG
from .wide_resnet import CIFARWideResNet

__all__ = [
    'CIFARBottleneckResNet', 'CIFARMobileNetV2', 'CIFARResNet',
    'CIFARShuffleNetV1', 'CIFARShuffleNetV2', 'CIFARVGG', 'CIFARWideResNet'
]
