# Copyright (c) amkd-mmrazor contributors.
from .hooks import *  # noqa: F401,F403
