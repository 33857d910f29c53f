# Copyright (c) amkd-mmrazor contributors.
from .boundary_bank_file import BoundaryBankFile
from .cifar import OfflineCIFAR10, OfflineCIFAR100
from .digits import SklearnDigits
from .tiny_imagenet import TinyImageNet
from .transforms import LoadBoundaryBank

__all__ = [
    'BoundaryBankFile', 'LoadBoundaryBank', 'OfflineCIFAR10',
    'OfflineCIFAR100', 'SklearnDigits', 'TinyImageNet'
]
