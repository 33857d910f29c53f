# Copyright (c) amkd-mmrazor contributors.
from .banked_boundary import BankedBoundary
from .online_boundary import OnlineBoundary

__all__ = ['BankedBoundary', 'OnlineBoundary']
