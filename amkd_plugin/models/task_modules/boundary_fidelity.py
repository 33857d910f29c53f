# Copyright (c) amkd-mmrazor contributors.
import math
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmrazor.registry import TASK_UTILS
from torch import Tensor

from amkd_plugin.utils import build_in_mmrazor
from .boundary_attack import Bound, BoundaryAttack, BoundarySamples

Logits = Callable[[Tensor], Tensor]


@TASK_UTILS.register_module()
class BoundaryFidelity:
    """How closely a student follows the teacher across its decision boundary.

    For every held-out image ``x`` the teacher classifies correctly (base
    class ``b = y``), the teacher's runner-up class
    ``k = argmax_{c != b} z_T,c(x)`` is the target, and the boundary attack
    of training (its own settings here, more steps by default) moves ``x`` to
    ``x_adv``, just past the teacher's boundary between ``b`` and ``k``.
    Images whose attack does not reach the boundary are left out. Along the
    path ``x_t = clip(x + t (x_adv - x))``, ``t = 1`` is at the boundary,
    ``t < 1`` on the side of ``b`` and ``t > 1`` beyond it:

    - ``agree_t{t}``: ``100 * mean[argmax S(x_t) == argmax T(x_t)]``;
    - ``agree_mean``: the mean of those over ``ts``;
    - ``kl_t1.0``: ``mean KL(softmax T(x_1) || softmax S(x_1))``;
    - ``reached``: % of teacher-correct images whose attack reached the
      boundary; ``images``: how many were measured.

    And on the clean held-out images themselves (:meth:`measure_clean`):

    - ``agree_clean``: ``100 * mean[argmax S(x) == argmax T(x)]``;
    - ``missed``: % of the images the teacher gets right and the student
      wrong: the errors that following the teacher more closely could
      remove. The student's other errors are on images the teacher gets
      wrong too.

    The runner-up target and the attack are deterministic, so the figures
    depend on the models and the images only, not on a random draw.

    Args:
        attack (dict): ``BoundaryAttack`` config; only its ``max_steps`` and
            ``step_size`` are used. Defaults to 30 steps of 0.3: more than
            in training, so that almost every image reaches the boundary.
        ts (Sequence[float]): Points of the path to compare the models at.
            Defaults to (0.5, 1.0, 1.5).
    """

    def __init__(self,
                 attack: Dict = dict(
                     type='BoundaryAttack', max_steps=30, step_size=0.3),
                 ts: Sequence[float] = (0.5, 1.0, 1.5)) -> None:
        self.attack: BoundaryAttack = build_in_mmrazor(TASK_UTILS, attack)
        self.ts = tuple(float(t) for t in ts)

    def boundary_samples(self,
                         teacher: Logits,
                         images: Tensor,
                         labels: Tensor,
                         bounds: Tuple[Bound, Bound],
                         teacher_logits: Optional[Tensor] = None
                         ) -> BoundarySamples:
        """Attack the teacher-correct ``images`` toward the runner-up class
        (``teacher_logits``: the teacher's on ``images``, if at hand)."""
        if teacher_logits is None:
            with torch.no_grad():
                teacher_logits = teacher(images)
        logits = teacher_logits.float()
        index = (logits.argmax(1) == labels).nonzero().squeeze(1)
        source = labels[index]
        target = logits[index].scatter(1, source[:, None],
                                       float('-inf')).argmax(1)
        inputs, reached, steps = self.attack.attack(teacher, images[index],
                                                    source, target, bounds)
        return BoundarySamples(inputs, index, source, target, reached, steps,
                               labels)

    @staticmethod
    def path_point(clean: Tensor, adv: Tensor, t: float,
                   bounds: Tuple[Bound, Bound]) -> Tensor:
        """``clip(x + t (x_adv - x))``: ``t = 1`` is the boundary sample."""
        point = clean + t * (adv - clean)
        lower, upper = (torch.as_tensor(b, dtype=point.dtype,
                                        device=point.device) for b in bounds)
        return torch.max(torch.min(point, upper), lower)

    @torch.no_grad()
    def _compare(self, teacher: Logits, student: Logits,
                 points: Tensor) -> Tuple[Tensor, Tensor]:
        teacher_logits = teacher(points).float()
        student_logits = student(points).float()
        agree = teacher_logits.argmax(1) == student_logits.argmax(1)
        kl = F.kl_div(
            student_logits.log_softmax(1),
            teacher_logits.log_softmax(1),
            reduction='none',
            log_target=True).sum(1)
        return agree, kl

    def measure(self,
                teacher: Logits,
                student: Logits,
                images: Tensor,
                labels: Tensor,
                bounds: Tuple[Bound, Bound],
                teacher_logits: Optional[Tensor] = None
                ) -> Dict[str, Tensor]:
        """Sums over one batch, to be added up and passed to :meth:`summarize`.

        Args:
            teacher (Callable): Maps images to the teacher's logits.
            student (Callable): Maps images to the student's logits.
            images (Tensor): Preprocessed held-out images (N, C, H, W).
            labels (Tensor): Their labels, shape (N,).
            bounds (tuple): Valid range of preprocessed pixel values.
            teacher_logits (Tensor, optional): The teacher's logits on
                ``images``, where the caller has them (the hook's clean
                pass); otherwise computed here.

        Returns:
            dict: 0-dim float64 tensors: ``correct`` (teacher-correct
            images), ``reached``, ``agree_t{t}`` per t and ``kl`` (summed
            over the images that reached the boundary).
        """
        boundary = self.boundary_samples(teacher, images, labels, bounds,
                                         teacher_logits)
        keep = boundary.reached
        clean, adv = images[boundary.index[keep]], boundary.inputs[keep]
        sums = dict(correct=boundary.num, reached=int(keep.sum()))
        for t in sorted({*self.ts, 1.0}) if len(adv) else ():
            agree, kl = self._compare(teacher, student,
                                      self.path_point(clean, adv, t, bounds))
            if t in self.ts:
                sums[f'agree_t{t:.1f}'] = agree.sum()
            if t == 1.0:
                sums['kl'] = kl.sum()
        for name in ('kl', *(f'agree_t{t:.1f}' for t in self.ts)):
            sums.setdefault(name, 0)
        return _as_sums(sums, images.device)

    @staticmethod
    @torch.no_grad()
    def measure_clean(teacher_logits: Tensor, student_logits: Tensor,
                      labels: Tensor) -> Dict[str, Tensor]:
        """Sums over one batch of clean held-out images, for
        :meth:`summarize`: ``clean`` (images), ``agree_clean`` and
        ``missed`` (counts)."""
        teacher, student = teacher_logits.argmax(1), student_logits.argmax(1)
        return _as_sums(
            dict(
                clean=len(labels),
                agree_clean=(teacher == student).sum(),
                missed=((teacher == labels) & (student != labels)).sum()),
            labels.device)

    def summarize(self, sums: Dict[str, Tensor]) -> Dict[str, float]:
        """Turn summed :meth:`measure` (and :meth:`measure_clean`) results
        into the reported figures.

        Figures without any image to average over are NaN, not 0: a
        student cannot disagree with a teacher on no images.
        """
        clean = {}
        if 'clean' in sums:
            images = sums['clean'].item()
            clean = {
                name: 100 * sums[name].item() / images if images else math.nan
                for name in ('agree_clean', 'missed')
            }
        reached = sums['reached'].item()
        correct = sums['correct'].item()
        scale = 1 / reached if reached else math.nan
        agree = {
            f'agree_t{t:.1f}': 100 * scale * sums[f'agree_t{t:.1f}'].item()
            for t in self.ts
        }
        return dict(
            **agree,
            agree_mean=sum(agree.values()) / len(agree),
            **{'kl_t1.0': scale * sums['kl'].item()},
            reached=100 * reached / correct if correct else math.nan,
            images=int(reached),
            **clean)


def _as_sums(sums: Dict, device: torch.device) -> Dict[str, Tensor]:
    """Counts and sums as 0-dim float64 tensors, ready to all-reduce."""
    return {
        name: torch.as_tensor(value, dtype=torch.float64, device=device)
        for name, value in sums.items()
    }
