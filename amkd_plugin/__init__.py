# Copyright (c) amkd-mmrazor contributors.
"""Adversarial Metric Knowledge Distillation (AMKD) for MMRazor.

Importing this package (or listing it in a config's ``custom_imports``)
first mends the released stack for torch >= 2 (see :mod:`.compat`), then
registers every part: backbones and datasets into MMPretrain's registries,
distillation parts into MMRazor's.
"""
from . import compat

compat.apply()

# models before engine: the algorithm imports amkd_plugin.apis.checkpoint,
# which imports models.backbones; entered from a hook first, apis would
# import the algorithm before checkpoint's names exist.
from . import datasets, models  # noqa: E402,F401
from . import engine, utils  # noqa: E402,F401

__version__ = '0.1.0'
