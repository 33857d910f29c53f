# Copyright (c) amkd-mmrazor contributors.
from abc import ABCMeta, abstractmethod
from typing import Callable, Dict, List

from mmpretrain.structures import DataSample
from mmrazor.registry import TASK_UTILS
from torch import Tensor, nn

from amkd_plugin.models.task_modules import BoundaryAttack, BoundarySamples
from amkd_plugin.utils import build_in_mmrazor


class BaseBoundary(metaclass=ABCMeta):
    """Where a training step's boundary samples come from.

    A source holds its :class:`BoundaryAttack` (whose ``max_ratio`` selects
    the images of a batch that get boundary samples) and, called with the
    clean pass of a step, returns that step's boundary samples.

    Args:
        attack (dict): ``BoundaryAttack`` config. Defaults to
            ``dict(type='BoundaryAttack')``.
    """

    def __init__(self, attack: Dict = dict(type='BoundaryAttack')) -> None:
        self.attack: BoundaryAttack = build_in_mmrazor(TASK_UTILS, attack)

    def state_dict(self) -> dict:
        """The attack's random state (its target sampler), for checkpoints."""
        return self.attack.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`."""
        self.attack.load_state_dict(state)

    @abstractmethod
    def __call__(self, teacher: Callable[[Tensor], Tensor], images: Tensor,
                 data_samples: List[DataSample], labels: Tensor,
                 teacher_logits: Tensor, student_logits: Tensor,
                 data_preprocessor: nn.Module) -> BoundarySamples:
        """The boundary samples of one batch.

        Args:
            teacher (Callable): Maps images to the frozen teacher's logits.
            images (Tensor): The clean (preprocessed) batch, (N, C, H, W).
            data_samples (list[DataSample]): The batch's data samples.
            labels (Tensor): Labels of the batch, shape (N,).
            teacher_logits (Tensor): Teacher logits on the clean batch.
            student_logits (Tensor): Student logits on the clean batch.
            data_preprocessor (nn.Module): Normalises pixels as the batch
                was; gives the valid pixel range.

        Returns:
            BoundarySamples: The boundary samples (possibly none).
        """
