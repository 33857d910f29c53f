# Copyright (c) amkd-mmrazor contributors.
"""The boundary bank: every training image attacked once, before training.

:class:`BoundaryBankFile` is the format on disk, :class:`BoundaryBankBuilder`
makes one (coordinating processes and machines), :func:`build_boundary_bank`
runs it for a runner, and :class:`LoadBoundaryBank`, which
:func:`add_bank_loader` puts into a train pipeline, reads it. The bank
knows the attack and the file system, never the algorithm's step:
:class:`BankedBoundary` (``models/boundary``) reads it.
"""
from .bank_file import BoundaryBankFile
from .build import add_bank_loader, build_boundary_bank
from .builder import BoundaryBankBuilder
from .load_boundary_bank import LoadBoundaryBank

__all__ = [
    'BoundaryBankBuilder', 'BoundaryBankFile', 'LoadBoundaryBank',
    'add_bank_loader', 'build_boundary_bank'
]
