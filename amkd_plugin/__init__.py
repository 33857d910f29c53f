# Copyright (c) amkd-mmrazor contributors.
"""Adversarial Metric Knowledge Distillation (AMKD) for MMRazor.

Importing this package (or listing it in a config's ``custom_imports``)
first mends the released stack for torch >= 2 (see :mod:`.compat`), then
registers every part: backbones and datasets into MMPretrain's registries,
distillation parts into MMRazor's.
"""
from . import compat

compat.apply()

# models before bank: importing the bank's attack (models.task_modules)
# runs models/__init__.py, which imports BankedBoundary, which imports the
# bank; entered from the bank first, that would find it half imported.
from . import datasets, models  # noqa: E402,F401
from . import bank, checkpoints, engine, utils  # noqa: E402,F401


__version__ = '0.1.0'
