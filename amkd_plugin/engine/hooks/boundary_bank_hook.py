# Copyright (c) amkd-mmrazor contributors.
from mmengine.hooks import Hook
from mmrazor.registry import HOOKS

from amkd_plugin.bank import build_boundary_bank


@HOOKS.register_module()
class BoundaryBankHook(Hook):
    """Build (or reuse) the boundary bank before training and bind it.

    With a ``BankedBoundary`` source, the bank lands under
    ``<work_dir>/boundary_bank/<key>`` (see ``BoundaryBankBuilder``) and the
    train pipeline's ``LoadBoundaryBank`` loads from it. With an
    ``OnlineBoundary`` source it does nothing, so the configs list it
    whichever source a run uses.
    """

    def before_train(self, runner) -> None:
        build_boundary_bank(runner)
