# Copyright (c) amkd-mmrazor contributors.
from typing import Optional, Sequence

from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.utils import ProgressBar


@HOOKS.register_module()
class ProgressBarHook(Hook):
    """Show a progress bar with speed and ETA while a model is tested.

    Registered in MMEngine's root registry so that configs of every scope
    (MMPretrain teachers, MMRazor distillers) find it. Only rank 0 draws.
    """

    # Before LoggerHook, so the metrics line starts on a fresh line.
    priority = 'NORMAL'

    def __init__(self) -> None:
        self._bar: Optional[ProgressBar] = None

    def before_test_epoch(self, runner) -> None:
        if runner.rank == 0:
            self._bar = ProgressBar(len(runner.test_dataloader))

    def after_test_iter(self,
                        runner,
                        batch_idx: int,
                        data_batch: Optional[dict] = None,
                        outputs: Optional[Sequence] = None) -> None:
        if self._bar is not None:
            self._bar.update()

    def after_test_epoch(self, runner, metrics=None) -> None:
        if self._bar is not None:
            self._bar.file.write('\n')
            self._bar = None
