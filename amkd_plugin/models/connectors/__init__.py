# Copyright (c) amkd-mmrazor contributors.
from .logit_standardization import LogitStandardization

__all__ = ['LogitStandardization']
