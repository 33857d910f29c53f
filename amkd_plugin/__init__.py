# Copyright (c) amkd-mmrazor contributors.
"""Adversarial Metric Knowledge Distillation (AMKD) for MMRazor.

Importing this package (or listing it in a config's ``custom_imports``)
first mends the released stack for torch >= 2 (see :mod:`.compat`), then
registers every part: backbones and datasets into MMPretrain's registries,
distillation parts into MMRazor's.
"""
from . import compat

compat.apply()

# models before bank: its BankedBoundary imports the bank, whose builder
# imports the attack from models.
from . import datasets, models, bank, engine, utils  # noqa: E402,F401,I001

__version__ = '0.1.0'
