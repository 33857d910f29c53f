# Copyright (c) amkd-mmrazor contributors.
"""What the timing tools share: :mod:`.step_cost` (one step, for
``tools/analysis/benchmark_step.py``) and
``tools/analysis/benchmark_bank.py`` (an epoch and the bank)."""
import os
import os.path as osp
from typing import Dict, Optional

import torch
from mmpretrain.registry import MODELS
from torch import Tensor

from amkd_plugin.checkpoints import resolve_model_config
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


def random_teacher(teacher: Dict, root: str) -> str:
    """A checkpoint, in ``root``, of a teacher with seeded random weights.

    Args:
        teacher (dict): The teacher's model config (``cfg_path`` or whole).
        root (str): The folder of the checkpoint.
    """
    torch.manual_seed(0)
    model = MODELS.build(resolve_model_config(teacher))
    ckpt = osp.join(root, 'teacher.pth')
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    return ckpt


def load_average() -> str:
    """The machine's load averages over 1, 5 and 15 minutes, for reports."""
    return ', '.join(f'{x:.2f}' for x in os.getloadavg())
