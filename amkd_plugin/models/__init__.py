# Copyright (c) amkd-mmrazor contributors.
from .algorithms import *  # noqa: F401,F403
from .backbones import *  # noqa: F401,F403
from .boundary import *  # noqa: F401,F403
from .connectors import *  # noqa: F401,F403
from .distillers import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .task_modules import *  # noqa: F401,F403
