# Copyright (c) amkd-mmrazor contributors.
"""Run models in eval mode and give every submodule its own mode back."""
from contextlib import contextmanager
from typing import Iterator

from torch import nn


@contextmanager
def eval_mode(*models: nn.Module) -> Iterator[None]:
    """Put ``models`` in eval mode; restore each submodule's mode after.

    ``model.train(previous)`` would not do: a distillation algorithm in
    training mode keeps its teacher's BatchNorm in eval mode, and
    ``teacher.train(True)`` would switch it back to training.
    """
    modes = [(module, module.training) for model in models
             for module in model.modules()]
    try:
        for model in models:
            model.eval()
        yield
    finally:
        for module, training in modes:
            module.training = training
