# Copyright (c) amkd-mmrazor contributors.
"""What the timing tools share: :mod:`.step_cost` (one step, for
``tools/analysis/benchmark_step.py``) and
``tools/analysis/benchmark_bank.py`` (an epoch and the bank)."""
from typing import Optional

import torch
from torch import Tensor

from amkd_plugin.models.task_modules import BoundaryAttack


class SteadyStateAttack(BoundaryAttack):
    """``BoundaryAttack`` whose selection skips the correctness filter.

    It takes the ``m`` samples of largest teacher-student disagreement,
    whether or not they are classified correctly: the steady state of
    training, where more than ``m`` candidates exist. A banked step's
    ``eligible`` (the teacher got the clean image right when the bank was
    built) still applies.
    """

    def select(self,
               labels: Tensor,
               teacher_logits: Tensor,
               student_logits: Tensor,
               eligible: Optional[Tensor] = None) -> Tensor:
        gap = self.disagreement(labels, teacher_logits, student_logits)
        num = self.max_samples(len(labels))
        if eligible is None:
            return gap.topk(num).indices
        num = min(int(eligible.sum()), num)
        return gap.masked_fill(~eligible, -1).topk(num).indices


def sync_device(device: str) -> None:
    """Wait for the work queued on ``device``, so a timer reads all of it.

    Args:
        device (str): ``'cpu'`` (nothing to wait for) or a CUDA device.
    """
    if device.startswith('cuda'):
        torch.cuda.synchronize()
