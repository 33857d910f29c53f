# Copyright (c) amkd-mmrazor contributors.
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.structures import BaseDataElement
from mmrazor.models.algorithms import SingleTeacherDistill
from mmrazor.models.algorithms.base import LossResults
from mmrazor.models.task_modules import ModuleOutputsRecorder
from mmrazor.models.utils import add_prefix
from mmrazor.registry import MODELS, TASK_UTILS
from torch import Tensor

from ..task_modules import BoundarySamples
from .model_loading import (check_class_counts, load_teacher_checkpoint,
                            resolve_model_config)


@MODELS.register_module()
class AMKDDistill(SingleTeacherDistill):
    """Adversarial Metric Knowledge Distillation.

    One training step, top to bottom (see ``docs/method.md``):

    1. clean pass: teacher (no grad) and student on the batch, recorded at
       ``record_idx=0``; the student's task loss;
    2. :class:`BoundaryAttack` moves the images both models get right
       toward the teacher's boundary with a sampled class k (outside the
       recorders, gradients w.r.t. the images only);
    3. boundary pass: teacher (no grad) and student on the boundary
       samples, recorded at ``record_idx=1``;
    4. the distiller computes every configured loss; boundary losses are
       scaled by :attr:`boundary_weight`.

    :attr:`boundary_weight` is the schedule factor, set each iteration by
    ``AdversarialBoundaryHook``; while it is 0 the attack does not run.
    :attr:`attack_stats` describes the last step's attack.

    Student (``architecture``) and teacher may be given as model configs
    or, beyond MMRazor's ``package::path`` form, as
    ``dict(cfg_path='local/config.py', **overrides)``: the ``model`` of that
    config file with ``overrides`` merged in. The teacher checkpoint must
    fit the teacher exactly (strict loading); otherwise training stops
    before it starts, naming the file and the command that makes it.

    Args:
        architecture (dict): The student.
        teacher (dict): The frozen teacher.
        teacher_ckpt (str): The teacher's checkpoint. Required.
        attack (dict): Config of the attack in MMRazor's ``TASK_UTILS``.
            Defaults to ``dict(type='BoundaryAttack')``.
        **kwargs: Other arguments of ``SingleTeacherDistill``; the distiller
            must be an ``AMKDDistiller``.
    """

    def __init__(self,
                 architecture: Dict,
                 teacher: Dict,
                 teacher_ckpt: str,
                 attack: Dict = dict(type='BoundaryAttack'),
                 **kwargs) -> None:
        if kwargs.get('teacher_trainable'):
            raise ValueError('AMKD attacks a frozen teacher: its boundary '
                             'must not move. Set teacher_trainable=False.')
        super().__init__(
            architecture=resolve_model_config(architecture),
            teacher=resolve_model_config(teacher),
            **kwargs)
        load_teacher_checkpoint(self.teacher, teacher_ckpt,
                                teacher.get('cfg_path'))
        self.teacher._is_init = True  # keep its weights at init_weights()
        check_class_counts(self.student, self.teacher)
        self.attack = TASK_UTILS.build(attack)
        self.boundary_weight = 1.0
        self.attack_stats: Dict[str, float] = {}
        # The attack needs both models' logits; these recorders read them
        # whatever the distiller's own recorders are.
        self._logits = {
            role: ModuleOutputsRecorder('head')
            for role in ('student', 'teacher')
        }
        self._logits['student'].initialize(self.student)
        self._logits['teacher'].initialize(self.teacher)

    def loss(self,
             batch_inputs: Tensor,
             data_samples: Optional[List[BaseDataElement]] = None
             ) -> LossResults:
        """Calculate the student, distillation and boundary losses."""
        labels = torch.cat([sample.gt_label for sample in data_samples])

        with self._logits['teacher'], self._logits['student']:
            with self.distiller.recording(from_student=False), \
                    self.distiller.deliveries, torch.no_grad():
                self.distiller.set_deliveries_override(False)
                self.teacher(batch_inputs, mode='tensor')
            with self.distiller.recording(from_student=True), \
                    self.distiller.deliveries:
                self.distiller.set_deliveries_override(True)
                student_losses = self.student(
                    batch_inputs, data_samples, mode='loss')
        # As in SingleTeacherDistill: the pass is still needed (records,
        # logits for the attack), only its task loss may be left out.
        losses = (add_prefix(student_losses, 'student')
                  if self.calculate_student_loss else dict())
        teacher_logits = self._logits['teacher'].get_record_data()
        student_logits = self._logits['student'].get_record_data()

        boundary = BoundarySamples.empty(batch_inputs, labels)
        if self.boundary_weight > 0:
            boundary = self.attack(self._teacher_logits, batch_inputs, labels,
                                   teacher_logits, student_logits,
                                   self._pixel_bounds())
        if boundary.num > 0:
            with self.distiller.recording(from_student=False,
                                          boundary=True), torch.no_grad():
                self.teacher(boundary.inputs, mode='tensor')
            with self.distiller.recording(from_student=True, boundary=True):
                self.student(boundary.inputs, mode='tensor')
        self.attack_stats = self._stats(boundary, batch_inputs)

        if not self.distillation_stopped:
            losses.update(
                add_prefix(
                    self.distiller.compute_distill_losses(
                        boundary, self.boundary_weight), 'distill'))
        return losses

    def _teacher_logits(self, images: Tensor) -> Tensor:
        return self.teacher(images, mode='tensor')

    def _pixel_bounds(self) -> Tuple[Tensor, Tensor]:
        """Normalised values of pixels 0 and 255, per channel."""
        mean = getattr(self.data_preprocessor, 'mean', None)
        if mean is None:  # the preprocessor does not normalise
            return torch.tensor(0.), torch.tensor(255.)
        std = self.data_preprocessor.std
        return (0 - mean) / std, (255 - mean) / std

    @staticmethod
    def _stats(boundary: BoundarySamples, images: Tensor) -> Dict[str, float]:
        """Attack statistics; zeros in a step without boundary samples."""
        if boundary.num == 0:
            return dict(attacked=0., reached=0., steps=0., l2=0.)
        delta = boundary.inputs - images[boundary.index]
        return dict(
            attacked=float(boundary.num),
            reached=boundary.reached.float().mean().item(),
            steps=boundary.steps.float().mean().item(),
            l2=delta.flatten(1).norm(dim=1).mean().item())
