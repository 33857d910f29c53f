# Copyright (c) amkd-mmrazor contributors.
"""Adversarial Metric Knowledge Distillation (AMKD) for MMRazor.

Importing this package (or listing it in a config's ``custom_imports``)
first mends the released stack for torch >= 2 (see :mod:`.compat`), then
registers every part: backbones and datasets into MMPretrain's registries,
distillation parts into MMRazor's.
"""
from . import compat

compat.apply()

# models, then bank, then engine: BankedBoundary (models) imports the bank,
# whose builder imports the attack from models, and the algorithm imports
# amkd_plugin.apis.checkpoint, which imports models.backbones; entered from
# a hook or the bank first, these would import a module before its names
# exist.
from . import datasets, models  # noqa: E402,F401
from . import bank, engine, utils  # noqa: E402,F401

__version__ = '0.1.0'
