# Copyright (c) amkd-mmrazor contributors.
from typing import Callable, List

from mmpretrain.structures import DataSample
from mmrazor.registry import TASK_UTILS
from torch import Tensor, nn

from amkd_plugin.models.task_modules import BoundarySamples
from amkd_plugin.utils.pixels import pixel_bounds
from .base_boundary import BaseBoundary


@TASK_UTILS.register_module()
class OnlineBoundary(BaseBoundary):
    """Boundary samples made in the step: attack the teacher on the batch.

    :class:`BoundaryAttack` selects the images both models get right
    (``max_ratio`` of the batch at most, largest disagreement first),
    draws each one's target class and moves it to the teacher's boundary,
    from the augmented image the student sees. It costs the attack's
    teacher passes in every step, whose last ones give the teacher's logits
    on the samples (``BoundarySamples.teacher_logits``) for the boundary
    pass; :class:`BankedBoundary` makes the same samples once, before
    training.

    Args:
        attack (dict): ``BoundaryAttack`` config. Defaults to
            ``dict(type='BoundaryAttack')``.
    """

    def __call__(self, teacher: Callable[[Tensor], Tensor], images: Tensor,
                 data_samples: List[DataSample], labels: Tensor,
                 teacher_logits: Tensor, student_logits: Tensor,
                 data_preprocessor: nn.Module) -> BoundarySamples:
        return self.attack(teacher, images, labels, teacher_logits,
                           student_logits, pixel_bounds(data_preprocessor))
