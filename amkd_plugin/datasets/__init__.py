# Copyright (c) amkd-mmrazor contributors.
from .cifar import OfflineCIFAR10, OfflineCIFAR100
from .digits import SklearnDigits
from .tiny_imagenet import TinyImageNet

__all__ = [
    'OfflineCIFAR10', 'OfflineCIFAR100', 'SklearnDigits', 'TinyImageNet'
]
