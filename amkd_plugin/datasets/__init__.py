# Copyright (c) amkd-mmrazor contributors.
from .cifar import OfflineCIFAR10, OfflineCIFAR100
from .digits import SklearnDigits
from .fashion_mnist import OfflineFashionMNIST
from .stratified_subset import stratified_indices, stratified_subset
from .tiny_imagenet import TinyImageNet

__all__ = [
    'OfflineCIFAR10', 'OfflineCIFAR100', 'OfflineFashionMNIST',
    'SklearnDigits', 'TinyImageNet', 'stratified_indices', 'stratified_subset'
]
