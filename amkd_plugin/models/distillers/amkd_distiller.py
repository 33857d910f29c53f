# Copyright (c) amkd-mmrazor contributors.
from contextlib import contextmanager
from inspect import signature
from typing import Iterator, Set

import torch
from mmrazor.models.algorithms.base import LossResults
from mmrazor.models.distillers import ConfigurableDistiller
from mmrazor.models.task_modules import RecorderManager
from mmrazor.registry import MODELS

from ..task_modules import BoundarySamples

CLEAN, BOUNDARY = 0, 1  # record_idx of the clean and the boundary pass


@MODELS.register_module()
class AMKDDistiller(ConfigurableDistiller):
    """A ``ConfigurableDistiller`` that also sees the boundary pass.

    It accepts everything ``ConfigurableDistiller`` accepts (recorders,
    connectors, deliveries, any MMRazor loss). Each training step forwards
    teacher and student twice inside the recorders: on the clean batch and
    then on its boundary samples. Every recorder therefore holds two
    records, and a loss reads the boundary pass with ``record_idx=1``::

        loss_forward_mappings=dict(
            loss_boundary_kd=dict(
                preds_S=dict(from_student=True, recorder='logits',
                             record_idx=1),
                preds_T=dict(from_student=False, recorder='logits',
                             record_idx=1)))

    The one place where non-recorded data reaches the losses is
    :meth:`compute_distill_losses`: a loss whose ``forward`` has a
    ``boundary`` argument receives the step's :class:`BoundarySamples`
    (labels of the batch, classes b and k of each boundary sample).

    A loss that reads any ``record_idx >= 1`` is a *boundary loss*: it is
    multiplied by the step's boundary weight (the schedule), and it is zero
    in a step without boundary samples instead of an error or NaN.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.boundary_losses: Set[str] = {
            name
            for name, mapping in self.loss_forward_mappings.items()
            if any(record.get('record_idx', CLEAN) > CLEAN
                   for record in mapping.values())
        }
        self.losses_taking_boundary: Set[str] = {
            name
            for name, loss in self.distill_losses.items()
            if 'boundary' in signature(loss.forward).parameters
        }

    @contextmanager
    def recording(self,
                  from_student: bool,
                  boundary: bool = False) -> Iterator[None]:
        """Record one forward pass of the student or the teacher.

        The clean pass (``boundary=False``) starts fresh records, as
        ``with recorder_manager`` does; the boundary pass appends to them,
        so it lands at ``record_idx=1``.
        """
        manager: RecorderManager = (
            self.student_recorders if from_student else self.teacher_recorders)
        kept = {name: list(recorder.data_buffer)
                for name, recorder in manager.recorders.items()}
        with manager:
            if boundary:
                for name, recorder in manager.recorders.items():
                    recorder.data_buffer.extend(kept[name])
            yield

    def compute_distill_losses(self, boundary: BoundarySamples,
                               boundary_weight: float) -> LossResults:
        """Compute every configured loss of this step.

        Args:
            boundary (BoundarySamples): The step's boundary samples; empty
                when the attack did not run or found no candidate.
            boundary_weight (float): Schedule factor for boundary losses.

        Returns:
            dict: Loss name to loss value.
        """
        skip_boundary = boundary.num == 0 or boundary_weight == 0
        losses = dict()
        for name, mapping in self.loss_forward_mappings.items():
            if name in self.boundary_losses and skip_boundary:
                losses[name] = boundary.labels.new_zeros((), dtype=torch.float)
                continue
            kwargs = {key: self.get_record(**record)
                      for key, record in mapping.items()}
            if name in self.losses_taking_boundary:
                kwargs['boundary'] = boundary
            loss = self.distill_losses[name](**kwargs)
            if name in self.boundary_losses:
                loss = loss * boundary_weight
            losses[name] = loss
        return losses
