# Copyright (c) amkd-mmrazor contributors.
import functools
import logging
import math
from typing import Dict, Optional

import torch
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.optim import OptimWrapperDict
from mmengine.registry import HOOKS

from amkd_plugin.utils import UserInputError

FIXES = ('Usual fixes: a lower optim_wrapper.optimizer.lr, '
         'optim_wrapper.clip_grad=dict(max_norm=5), or with --amp a smaller '
         'initial loss_scale.')


class NonFiniteLossError(UserInputError):
    """A training loss became NaN or infinite; the run stopped."""


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Stop training at the first NaN or infinite loss, or skip such steps.

    A NaN loss makes NaN weights at the next optimizer step, and every
    step after it is wasted: MMEngine logs ``nan`` and carries on to the
    end of the schedule. After each iteration this hook reads the loss
    terms the model returned (the ``loss*`` entries of ``outputs``, which
    MMEngine sums into the loss and logs); at the first non-finite one it
    stops the run with one line naming the terms, the iteration and epoch,
    the last checkpoint and the usual fixes.

    With ``max_skips > 0`` the update of an iteration whose total loss is
    not finite on any rank is skipped instead (no backward pass, no
    optimizer step; the bad values are not logged), until more than
    ``max_skips`` steps have been skipped in the run; then it stops as
    above.

    Cost: one ``.item()`` per loss term, which MMEngine's ``RuntimeInfoHook``
    does right after in every iteration anyway, so no extra wait for the
    device. Skipping adds an ``isfinite`` check of the total loss before
    each update (waiting for the forward pass) and, distributed, an
    all-reduce of one number so that the ranks skip together.

    Registered in MMEngine's root registry so configs of every scope find
    it; ``configs/_base_/default_runtime.py`` enables it.

    Args:
        max_skips (int): Steps with a non-finite total loss to skip before
            stopping. Defaults to 0: stop at the first.
    """

    # Before RuntimeInfoHook (VERY_HIGH) puts the values into the log.
    priority = 'HIGHEST'

    def __init__(self, max_skips: int = 0) -> None:
        if max_skips < 0:
            raise ValueError(f'max_skips must be >= 0, not {max_skips}')
        self.max_skips = max_skips
        self.skipped = 0
        self._update_skipped = False

    def before_train(self, runner) -> None:
        if self.max_skips == 0:
            return
        wrappers = runner.optim_wrapper
        for wrapper in (wrappers.values() if isinstance(
                wrappers, OptimWrapperDict) else [wrappers]):
            wrapper.update_params = functools.partial(
                self._update_if_finite, wrapper.update_params)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs: Optional[Dict] = None) -> None:
        values = {
            name: value.item() if isinstance(value, torch.Tensor) else value
            for name, value in (outputs or {}).items() if 'loss' in name
        }
        bad = {
            name: value
            for name, value in values.items() if not math.isfinite(value)
        }
        skipped, self._update_skipped = self._update_skipped, False
        if not (bad or skipped):
            return
        where = f'iteration {runner.iter + 1} (epoch {runner.epoch + 1})'
        terms = ', '.join(f'{name} = {value}' for name, value in bad.items()
                          ) or 'the loss of another rank'
        if skipped:
            self.skipped += 1
        if skipped and self.skipped <= self.max_skips:
            for name in bad:  # a NaN would spoil the logged window means
                del outputs[name]
            print_log(
                f'NonFiniteLossHook: skipped the update of {where}, '
                f'{terms} ({self.skipped} of at most {self.max_skips} '
                'skips).', 'current', level=logging.WARNING)
            return
        last = runner.message_hub.get_info('last_ckpt')
        skips = (f' after {self.max_skips} skipped steps' if self.max_skips
                 else '')
        hint = ('' if self.max_skips else ' To skip a few such steps '
                'instead: --cfg-options default_hooks.non_finite_loss.'
                'max_skips=N.')
        raise NonFiniteLossError(
            f'Non-finite loss at {where}: {terms}; training stopped{skips} '
            f'(last checkpoint: {last or "none yet"}). {FIXES}{hint}')

    def _update_if_finite(self, update_params, loss: torch.Tensor, *args,
                          **kwargs) -> None:
        """``OptimWrapper.update_params`` that leaves out a non-finite loss.

        The ranks agree first: one rank skipping its backward pass while
        the others enter DDP's gradient all-reduce would hang them all, and
        all count the skip, so all stop at the same step.
        """
        finite = torch.isfinite(loss.detach()).all().to(torch.int32)
        all_reduce(finite, op='min')
        self._update_skipped = not finite.item()
        if not self._update_skipped:
            update_params(loss, *args, **kwargs)
