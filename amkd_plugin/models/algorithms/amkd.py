# Copyright (c) amkd-mmrazor contributors.
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.structures import BaseDataElement
from mmpretrain.models.heads import LinearClsHead
from mmrazor.models.algorithms import SingleTeacherDistill
from mmrazor.models.algorithms.base import LossResults
from mmrazor.models.task_modules import ModuleOutputsRecorder
from mmrazor.models.utils import add_prefix
from mmrazor.registry import MODELS, TASK_UTILS
from torch import Tensor

from amkd_plugin.checkpoints import (check_class_counts,
                                     load_teacher_checkpoint,
                                     resolve_model_config)
from amkd_plugin.utils import UserValueError
from ..task_modules import BoundarySamples
from .fold_batch_norms import fold_batch_norms


@MODELS.register_module()
class AMKDDistill(SingleTeacherDistill):
    """Adversarial Metric Knowledge Distillation.

    One training step, top to bottom (see ``docs/method.md``):

    1. clean pass: teacher (no grad) and student on the batch, recorded at
       ``record_idx=0``; the student's task loss;
    2. the boundary source gives boundary samples of the images both
       models get right: ``OnlineBoundary`` attacks the teacher now
       (outside the recorders, gradients w.r.t. the images only),
       ``BankedBoundary`` reads the images banked before training;
    3. boundary pass: teacher (no grad) and student on the boundary
       samples, recorded at ``record_idx=1``; online samples carry the
       teacher's logits of the attack's last pass, banked samples used as
       banked those of the bank, and these stand in for the teacher's pass
       when every boundary loss reads only the teacher's logits;
    4. the distiller computes every configured loss; boundary losses are
       scaled by :attr:`boundary_weight`.

    :attr:`boundary_weight` is the schedule factor, set each iteration by
    ``AdversarialBoundaryHook``; while it is 0 no boundary sample is made.
    :attr:`attack_stats` describes the last step's boundary samples.

    Online or banked is the one switch ``boundary.type``: the pair configs
    bank (``BankedBoundary``; ``BoundaryBankHook`` builds the bank and
    binds it to the train pipeline's ``LoadBoundaryBank``), and
    ``--cfg-options model.boundary.type=OnlineBoundary`` makes the same
    attack's samples online instead, with the same pipeline.

    Student (``architecture``) and teacher may be given as model configs
    or, beyond MMRazor's ``package::path`` form, as
    ``dict(cfg_path='local/config.py', **overrides)``: the ``model`` of that
    config file with ``overrides`` merged in. The teacher checkpoint must
    fit the teacher exactly (strict loading); otherwise training stops
    before it starts, naming the file and the command that makes it.
    Loaded, the frozen teacher's BatchNorms are folded into its
    convolutions (:func:`fold_batch_norms`, the same logits for a cheaper
    forward), and it stays ``teacher_ckpt``'s: a checkpoint loaded later
    (resuming, ``tools/test.py``) gets its student and state, not its copy
    of the teacher.

    Args:
        architecture (dict): The student.
        teacher (dict): The frozen teacher.
        teacher_ckpt (str): The teacher's checkpoint. Required.
        boundary (dict): The boundary source in MMRazor's ``TASK_UTILS``,
            ``OnlineBoundary`` or ``BankedBoundary``, with its
            ``BoundaryAttack``. Defaults to ``dict(type='OnlineBoundary')``.
        **kwargs: Other arguments of ``SingleTeacherDistill``; the distiller
            must be an ``AMKDDistiller``.
    """

    def __init__(self,
                 architecture: Dict,
                 teacher: Dict,
                 teacher_ckpt: str,
                 boundary: Dict = dict(type='OnlineBoundary'),
                 **kwargs) -> None:
        if 'attack' in kwargs or 'bank' in kwargs:
            raise UserValueError(
                'AMKDDistill takes the boundary source as model.boundary: '
                "write boundary=dict(type='BankedBoundary', "
                'attack=<your bank.attack, with max_ratio>) for a bank, or '
                "boundary=dict(type='OnlineBoundary', attack=<your attack>) "
                'instead of model.attack and model.bank.')
        if kwargs.get('teacher_trainable'):
            raise UserValueError('AMKD attacks a frozen teacher: its boundary '
                                 'must not move. Set teacher_trainable=False.')
        super().__init__(
            architecture=resolve_model_config(architecture),
            teacher=resolve_model_config(teacher),
            **kwargs)
        load_teacher_checkpoint(self.teacher, teacher_ckpt,
                                teacher.get('cfg_path'))
        self.teacher._is_init = True  # keep its weights at init_weights()
        check_class_counts(self.student, self.teacher)
        self.boundary = TASK_UTILS.build(boundary)
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
        self._boundary_teacher_logits = self._boundary_teacher_logit_records()
        if self.teacher_norm_eval:
            fold_batch_norms(self.teacher, [
                *self.distiller.teacher_recorders.recorders.values(),
                self._logits['teacher']
            ])
        self._register_load_state_dict_pre_hook(self._keep_teacher)

    def loss(self,
             batch_inputs: Tensor,
             data_samples: Optional[List[BaseDataElement]] = None
             ) -> LossResults:
        """Calculate the student, distillation and boundary losses."""
        labels = torch.cat([sample.gt_label for sample in data_samples])
        losses, teacher_logits, student_logits = self._clean_pass(
            batch_inputs, data_samples)
        boundary = (self.boundary(self._teacher_logits, batch_inputs,
                                  data_samples, labels, teacher_logits,
                                  student_logits, self.data_preprocessor)
                    if self.boundary_weight > 0 else
                    BoundarySamples.empty(batch_inputs, labels))
        boundary_logits = self._boundary_pass(boundary, teacher_logits[:0])
        self.attack_stats = self._stats(boundary, batch_inputs,
                                        teacher_logits, boundary_logits)

        if not self.distillation_stopped:
            losses.update(
                add_prefix(
                    self.distiller.compute_distill_losses(
                        boundary, self.boundary_weight), 'distill'))
        return losses

    def _clean_pass(self, batch_inputs: Tensor,
                    data_samples: List[BaseDataElement]
                    ) -> Tuple[LossResults, Tensor, Tensor]:
        """Record both models on the batch (``record_idx=0``); the
        student's task losses and both models' logits."""
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
        return (losses, self._logits['teacher'].get_record_data(),
                self._logits['student'].get_record_data())

    def _boundary_pass(self, boundary: BoundarySamples,
                       no_logits: Tensor) -> Tensor:
        """Record both models on the boundary samples (``record_idx=1``);
        the teacher's logits on them (``no_logits`` without samples)."""
        if boundary.num == 0:
            return no_logits
        with self.distiller.recording(from_student=False,
                                      boundary=True), torch.no_grad():
            if (boundary.teacher_logits is not None
                    and self._boundary_teacher_logits is not None):
                logits = boundary.teacher_logits
                for recorder in self._boundary_teacher_logits:
                    recorder.data_buffer.append(logits)
            else:
                logits = self.teacher(boundary.inputs, mode='tensor')
        with self.distiller.recording(from_student=True, boundary=True):
            self.student(boundary.inputs, mode='tensor')
        return logits

    def _boundary_teacher_logit_records(self) -> Optional[List]:
        """The teacher recorders the boundary losses read, if all of them
        record the teacher's logits (the output of ``LinearClsHead``, or of
        its ``fc``); None if any loss reads something else of the teacher's
        boundary pass, which then has to run."""
        recorders = self.distiller.teacher_recorders.recorders
        names = {
            record['recorder']
            for mapping in self.distiller.loss_forward_mappings.values()
            for record in mapping.values()
            if not record.get('from_student', True)
            and record.get('record_idx', 0) > 0
        }
        logits = isinstance(getattr(self.teacher, 'head', None),
                            LinearClsHead)
        if not logits or not all(
                isinstance(recorders[name], ModuleOutputsRecorder)
                and recorders[name].source in ('head', 'head.fc')
                for name in names):
            return None
        return [recorders[name] for name in sorted(names)]

    def _keep_teacher(self, state_dict: Dict, prefix: str, *args) -> None:
        """Load any checkpoint with this teacher, ``teacher_ckpt``'s as
        folded here, in place of the one it saved: an unfolded copy's
        convolution weights would not fit the folded teacher."""
        prefix += 'teacher.'
        for key in [key for key in state_dict if key.startswith(prefix)]:
            del state_dict[key]
        for key, value in self.teacher.state_dict().items():
            state_dict[prefix + key] = value

    def _teacher_logits(self, images: Tensor) -> Tensor:
        return self.teacher(images, mode='tensor')

    @staticmethod
    def _stats(boundary: BoundarySamples, images: Tensor,
               teacher_logits: Tensor,
               boundary_logits: Tensor) -> Dict[str, float]:
        """Statistics of the boundary samples; zeros in a step without.

        ``margin_clean`` and ``margin`` are the teacher's mean margin
        ``z_b - z_k`` on the clean images and on their boundary samples;
        the hook logs their ratio per epoch.
        """
        if boundary.num == 0:
            return dict(attacked=0., reached=0., steps=0., l2=0.,
                        margin_clean=0., margin=0.)
        delta = boundary.inputs - images[boundary.index]
        pair = torch.stack((boundary.source, boundary.target), 1)

        def margin(logits: Tensor) -> float:
            b_and_k = logits.detach().float().gather(1, pair)
            return (b_and_k[:, 0] - b_and_k[:, 1]).mean().item()

        return dict(
            attacked=float(boundary.num),
            reached=boundary.reached.float().mean().item(),
            steps=boundary.steps.float().mean().item(),
            l2=delta.flatten(1).norm(dim=1).mean().item(),
            margin_clean=margin(teacher_logits[boundary.index]),
            margin=margin(boundary_logits))
