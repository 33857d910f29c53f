# Copyright (c) amkd-mmrazor contributors.
from .banked_boundary import BankedBoundary
from .base_boundary import BaseBoundary
from .online_boundary import OnlineBoundary

__all__ = ['BankedBoundary', 'BaseBoundary', 'OnlineBoundary']
