# Copyright (c) amkd-mmrazor contributors.
from typing import Callable, Dict, List

from mmpretrain.structures import DataSample
from mmrazor.registry import TASK_UTILS
from torch import Tensor, nn

from amkd_plugin.models.task_modules import BoundaryAttack, BoundarySamples
from amkd_plugin.utils import build_in_mmrazor
from amkd_plugin.utils.pixels import pixel_bounds


@TASK_UTILS.register_module()
class OnlineBoundary:
    """Boundary samples made in the step: attack the teacher on the batch.

    :class:`BoundaryAttack` selects the images both models get right
    (``max_ratio`` of the batch at most, largest disagreement first),
    draws each one's target class and moves it to the teacher's boundary,
    from the augmented image the student sees. It costs the attack's
    teacher passes in every step; :class:`BankedBoundary` makes the same
    samples once, before training.

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
            data_preprocessor (nn.Module): Gives the valid pixel range.

        Returns:
            BoundarySamples: The boundary samples (possibly none).
        """
        return self.attack(teacher, images, labels, teacher_logits,
                           student_logits, pixel_bounds(data_preprocessor))
