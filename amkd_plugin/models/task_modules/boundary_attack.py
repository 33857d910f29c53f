# Copyright (c) amkd-mmrazor contributors.
import math
from dataclasses import dataclass
from typing import Callable, Optional, Tuple, Union

import torch
from mmrazor.registry import TASK_UTILS
from torch import Tensor

from amkd_plugin.utils import UserValueError

Bound = Union[float, Tensor]


@dataclass
class BoundarySamples:
    """Boundary samples of one batch and how the attack made them.

    Row ``i`` of every per-sample field describes the boundary sample made
    from clean image ``index[i]`` of the batch.

    Args:
        inputs (Tensor): Boundary images, shape (M, C, H, W).
        index (Tensor): Batch rows they were made from, shape (M,).
        source (Tensor): Base class b (the true label), shape (M,).
        target (Tensor): Target class k, shape (M,).
        reached (Tensor): Whether the teacher's prediction left b, (M,).
        steps (Tensor): Attack steps (teacher forward and input-gradient
            passes) spent on each sample in this training step: 0 for a
            banked sample used as loaded. Shape (M,).
        labels (Tensor): Labels of the whole clean batch, shape (N,).
        teacher_logits (Tensor, optional): The teacher's logits on
            ``inputs``, where known without another teacher pass (banked
            samples used as banked; the online attack's last pass on each
            sample), shape (M, classes). Defaults to None.
    """
    inputs: Tensor
    index: Tensor
    source: Tensor
    target: Tensor
    reached: Tensor
    steps: Tensor
    labels: Tensor
    teacher_logits: Optional[Tensor] = None

    @property
    def num(self) -> int:
        return self.index.numel()

    @classmethod
    def empty(cls, images: Tensor, labels: Tensor) -> 'BoundarySamples':
        """No boundary samples for this batch of ``images``."""
        none = labels.new_zeros(0)
        return cls(images[:0], none, none, none, none.bool(), none, labels)


# The update rules of BoundaryAttack.
STEPS = ('bss', 'newton', 'newton_box')


@TASK_UTILS.register_module()
class BoundaryAttack:
    """Move images to the teacher's decision boundary, after BSS.

    Follows Heo et al., "Knowledge Distillation with Adversarial Samples
    Supporting Decision Boundary" (AAAI 2019), vectorised over the batch.

    1. Selection: only images that teacher and student both classify
       correctly are candidates. If more than ``m = ceil(max_ratio * N)``
       qualify, the ``m`` with the largest teacher-student disagreement on
       the non-true classes, ``sum_{c != y} (p_T,c - p_S,c)^2``, are kept:
       there the student has most to learn about the boundary.
    2. Target class ``k``: drawn from the teacher's softmax restricted to
       the classes ``c != y`` (likely runner-up classes most often).
    3. Attack with base class ``b = y`` and ``g(x) = z_b(x) - z_k(x)``,
       each step along the unit gradient ``u = grad_x g / ||grad_x g||_2``::

           x <- x - length * u
           length = step_size * (g + 1e-4)                   step='bss'
           length = (1 + overshoot) * (g + 1e-4) / ||grad_x g||_2
                                                             step='newton'

       or, ``step='newton_box'``, ``x <- clip(x - t * grad_x g)`` with the
       ``t`` at which the clipped, linearised ``g`` falls by
       ``(1 + overshoot) (g + 1e-4)``::

           sum_i |G_i| min(t |G_i|, room_i) = (1 + overshoot) (g + 1e-4)

       (``G = grad_x g``; ``room_i`` how far value ``i`` may move that way
       before its bound; solved exactly over the sorted ``room_i / |G_i|``),

       for at most ``max_steps`` steps, ``length`` capped at
       ``max_step_rms * sqrt(D)`` for images of ``D`` values. BSS's step
       shrinks with ``g`` but ignores how steep ``g`` is: each step removes
       about a fixed fraction of the margin, so samples settle next to the
       boundary over many steps.
       The first-order (Newton, DeepFool-style) step goes to where the
       linearised ``g`` is zero, plus ``overshoot`` of that distance: on a
       linear teacher it crosses in one step, on a ReLU network in about
       one to three. Its clipped part is lost, so where many values sit at
       a bound (a black background) it lands short: ``'newton_box'``
       solves the same step within the bounds, so that the values still
       free to move make up for those pinned, and crosses in fewer steps
       (on the Fashion-MNIST teacher 25% of the samples in one step, 77%
       in three, against 10% and 33%; docs/cost.md). A sample stops as
       soon as the teacher's prediction leaves ``b``; only samples still
       moving are fed to the teacher, so late steps cost little. Images
       are clamped to the valid (normalised) pixel range. Each sample's
       last pass saw it where it stopped: its logits come with the
       samples, so that the training step needs no teacher pass on them.

    Gradients are taken with respect to the images only: the teacher needs
    ``requires_grad=False`` parameters (a frozen teacher) and receives no
    ``.grad``.

    Args:
        max_steps (int): Attack steps N. Defaults to 10 (BSS).
        step_size (float): eta of the ``'bss'`` step. Defaults to 0.3 (BSS).
        max_ratio (float): At most this fraction of the batch is attacked.
            Defaults to 0.25 (BSS: a quarter of the batch).
        step (str): The update rule, ``'bss'``, ``'newton'`` or
            ``'newton_box'``. Defaults to ``'bss'``.
        overshoot (float): How far past the linearised boundary a
            ``'newton'`` or ``'newton_box'`` step goes, as a fraction of the
            distance to it. Defaults to 0.02.
        max_step_rms (float, optional): Cap on one step's root mean square
            change per image value, in the data preprocessor's normalised
            units (about standard deviations of a pixel), so that a nearly
            flat ``g`` cannot throw a sample far out of the image; per
            value, so the same cap fits any image size. Defaults to None
            (no cap).
        seed (int): Seed of the target-class sampler. Defaults to 0.
    """

    def __init__(self,
                 max_steps: int = 10,
                 step_size: float = 0.3,
                 max_ratio: float = 0.25,
                 step: str = 'bss',
                 overshoot: float = 0.02,
                 max_step_rms: Optional[float] = None,
                 seed: int = 0) -> None:
        if max_steps < 1 or step_size <= 0 or not 0 < max_ratio <= 1:
            raise UserValueError(
                'BoundaryAttack needs max_steps >= 1, step_size > 0 and '
                f'0 < max_ratio <= 1; got max_steps={max_steps}, '
                f'step_size={step_size}, max_ratio={max_ratio}.')
        if step not in STEPS:
            raise UserValueError(
                f'BoundaryAttack step must be one of {", ".join(STEPS)}, got '
                f'{step!r}.')
        if overshoot < 0 or (max_step_rms is not None and max_step_rms <= 0):
            raise UserValueError(
                'BoundaryAttack needs overshoot >= 0 and max_step_rms None '
                f'or > 0; got overshoot={overshoot}, '
                f'max_step_rms={max_step_rms}.')
        self.max_steps = max_steps
        self.step_size = step_size
        self.max_ratio = max_ratio
        self.step = step
        self.overshoot = overshoot
        self.max_step_rms = max_step_rms
        self.seed = seed
        self._generator: Optional[torch.Generator] = None
        self._pending_state: Optional[Tensor] = None

    def settings(self) -> dict:
        """What shapes the boundary samples, besides images and targets."""
        return dict(max_steps=self.max_steps, step_size=self.step_size,
                    step=self.step, overshoot=self.overshoot,
                    max_step_rms=self.max_step_rms, seed=self.seed)

    def generator(self, device: torch.device) -> torch.Generator:
        """The target sampler's generator, created on first use."""
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device).manual_seed(self.seed)
            if self._pending_state is not None:
                self._generator.set_state(self._pending_state)
                self._pending_state = None
        return self._generator

    def state_dict(self) -> dict:
        """The sampler's random state, so a resumed run draws the same."""
        if self._generator is None:
            # A loaded state not yet applied (resumed, then saved before the
            # next draw) must survive into the new checkpoint.
            if self._pending_state is not None:
                return dict(generator=self._pending_state)
            return {}
        return dict(generator=self._generator.get_state())

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`; applied at the sampler's next use."""
        self._generator = None
        self._pending_state = state.get('generator')

    @staticmethod
    def disagreement(labels: Tensor, teacher_logits: Tensor,
                     student_logits: Tensor) -> Tensor:
        """``sum_{c != y} (p_T,c - p_S,c)^2`` per sample."""
        gap = (teacher_logits.softmax(1) - student_logits.softmax(1))**2
        return gap.sum(1) - gap.gather(1, labels[:, None]).squeeze(1)

    def max_samples(self, batch_size: int) -> int:
        """m = ceil(max_ratio * batch_size)."""
        # The tolerance keeps float error from rounding e.g. 100 * 0.07 up.
        return math.ceil(batch_size * self.max_ratio - 1e-9)

    def select(self,
               labels: Tensor,
               teacher_logits: Tensor,
               student_logits: Tensor,
               eligible: Optional[Tensor] = None) -> Tensor:
        """Rows to attack: both models right, largest disagreement first.

        ``eligible`` (bool, (N,)) restricts the candidates further.
        """
        correct = ((teacher_logits.argmax(1) == labels)
                   & (student_logits.argmax(1) == labels))
        if eligible is not None:
            correct &= eligible
        gap = self.disagreement(labels, teacher_logits, student_logits)
        num = min(int(correct.sum()), self.max_samples(len(labels)))
        return gap.masked_fill(~correct, -1).topk(num).indices

    def sample_targets(self, labels: Tensor, teacher_logits: Tensor) -> Tensor:
        """Draw k from the teacher's softmax over the classes other than y."""
        logits = teacher_logits.float().scatter(1, labels[:, None],
                                                float('-inf'))
        return torch.multinomial(
            logits.softmax(1), 1,
            generator=self.generator(logits.device)).squeeze(1)

    def attack(self, teacher: Callable[[Tensor], Tensor], images: Tensor,
               source: Tensor, target: Tensor,
               bounds: Tuple[Bound, Bound]) -> Tuple[Tensor, Tensor, Tensor]:
        """Run the boundary attack on ``images`` from class b toward k.

        Takes the arguments of :meth:`attack_with_logits`.

        Returns:
            tuple: Moved images, whether each reached the boundary, and
            the number of steps each took.
        """
        adv, reached, steps, _ = self.attack_with_logits(
            teacher, images, source, target, bounds)
        return adv, reached, steps

    def attack_with_logits(
            self, teacher: Callable[[Tensor], Tensor], images: Tensor,
            source: Tensor, target: Tensor, bounds: Tuple[Bound, Bound]
    ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Run the attack; also return the teacher's logits on the results.

        Every sample's last pass sees it where it stopped, so its logits
        come with the attack: a later teacher pass on the moved images
        would only compute them again.

        Args:
            teacher (Callable): Maps images to logits.
            images (Tensor): Images to move, shape (M, C, H, W).
            source (Tensor): Base classes b, shape (M,).
            target (Tensor): Target classes k, shape (M,).
            bounds (tuple): Lowest and highest valid pixel values, floats
                or tensors broadcastable to the images (per channel).

        Returns:
            tuple: Moved images, whether each reached the boundary, the
            number of steps each took, and the teacher's logits on the
            moved images (float32, detached), shape (M, classes); (0, 0)
            without images, as no pass ran.
        """
        adv = images.detach().clone()
        steps = source.new_zeros(len(source))
        reached = torch.zeros_like(source, dtype=torch.bool)
        if len(source) == 0:  # a network may not take an empty batch
            return adv, reached, steps, adv.new_zeros(0, 0)
        final = None
        active = torch.arange(len(source), device=source.device)
        lower, upper = (_as_bound(bound, adv) for bound in bounds)
        for step in range(self.max_steps + 1):
            # The last pass only checks where the final step landed.
            with torch.set_grad_enabled(step < self.max_steps):
                x = adv[active].requires_grad_(step < self.max_steps)
                logits = teacher(x).float()
                if final is None:
                    final = logits.new_empty(len(source), logits.size(1))
                # Samples that move on are overwritten by a later pass.
                final[active] = logits.detach()
                moving = logits.argmax(1) == source[active]
                reached[active[~moving]] = True
                active = active[moving]
                if step == self.max_steps or active.numel() == 0:
                    break
                pair = logits[moving].gather(
                    1, torch.stack((source[active], target[active]), 1))
                g = pair[:, 0] - pair[:, 1]
                grad, = torch.autograd.grad(g.sum(), x)
            grad = grad[moving].float()
            x = x.detach()[moving]
            scale = self.step_scale(x, grad, g.detach(), lower, upper)
            moved = x - scale.view(-1, *[1] * (grad.dim() - 1)) * grad
            adv[active] = torch.max(torch.min(moved, upper),
                                    lower).to(adv.dtype)
            steps[active] += 1
        return adv, reached, steps, final

    def step_scale(self, x: Tensor, grad: Tensor, g: Tensor, lower: Tensor,
                   upper: Tensor) -> Tensor:
        """The multiple ``t`` of ``grad_x g`` the next step subtracts.

        Args:
            x (Tensor): The samples, shape (M, C, H, W).
            grad (Tensor): ``grad_x g`` there, float32, shape of ``x``.
            g (Tensor): Margins ``z_b - z_k``, shape (M,).
            lower (Tensor): Lowest valid value, broadcastable to ``x``.
            upper (Tensor): Highest valid value, broadcastable to ``x``.

        Returns:
            Tensor: ``t``, shape (M,), capped by ``max_step_rms``.
        """
        norm = grad.flatten(1).norm(dim=1).clamp_min(1e-12)
        goal = (g + 1e-4).float()
        if self.step == 'bss':
            scale = self.step_size * goal / norm
        elif self.step == 'newton':
            scale = (1 + self.overshoot) * goal / norm / norm
        else:
            scale = _boxed_scale(x.float(), grad, (1 + self.overshoot) * goal,
                                 lower, upper)
        if self.max_step_rms is not None:
            # At most max_step_rms * sqrt(D) long, in L2, before clipping.
            scale = torch.minimum(
                scale, self.max_step_rms * grad[0].numel()**0.5 / norm)
        return scale

    def __call__(self,
                 teacher: Callable[[Tensor], Tensor],
                 images: Tensor,
                 labels: Tensor,
                 teacher_logits: Tensor,
                 student_logits: Tensor,
                 bounds: Tuple[Bound, Bound] = (float('-inf'),
                                                float('inf'))
                 ) -> BoundarySamples:
        """Select images, draw targets and attack.

        Args:
            teacher (Callable): Maps images to logits (frozen teacher).
            images (Tensor): Clean batch, shape (N, C, H, W).
            labels (Tensor): True labels, shape (N,).
            teacher_logits (Tensor): Teacher logits on the clean batch.
            student_logits (Tensor): Student logits on the clean batch.
            bounds (tuple): Valid pixel range of ``images``.

        Returns:
            BoundarySamples: The boundary samples (possibly none), with the
            teacher's logits on them from the attack's last passes.
        """
        teacher_logits = teacher_logits.detach().float()
        index = self.select(labels, teacher_logits,
                            student_logits.detach().float())
        if index.numel() == 0:
            return BoundarySamples.empty(images, labels)
        source = labels[index]
        target = self.sample_targets(source, teacher_logits[index])
        inputs, reached, steps, logits = self.attack_with_logits(
            teacher, images[index], source, target, bounds)
        return BoundarySamples(inputs, index, source, target, reached, steps,
                               labels, logits)


def _boxed_scale(x: Tensor, grad: Tensor, goal: Tensor, lower: Tensor,
                 upper: Tensor) -> Tensor:
    """The ``t`` at which ``clip(x - t * grad)`` lowers the linearised
    margin by ``goal``: ``sum_i a_i min(t a_i, r_i) = goal`` with
    ``a = |grad|`` and ``r`` the room to the bound each value moves toward.

    The left side is piecewise linear and increasing in ``t``, with a
    corner where a value reaches its bound, ``t = r_i / a_i``; sorted by
    those, the piece that holds ``goal`` gives ``t`` in closed form. A goal
    beyond every bound gives the last corner (every value at its bound)
    or, if that is not finite, infinity, which the step's cap then limits.
    """
    a = grad.abs().flatten(1)
    room = torch.where(grad > 0, x - lower, upper - x).flatten(1).clamp_min(0)
    corner = torch.where(a > 0, room / a.clamp_min(1e-30),
                         torch.full_like(a, float('inf')))
    corner, order = corner.sort(1)
    a, room = a.gather(1, order), room.gather(1, order)
    # Below corner j the values before it are pinned, the rest still move;
    # a value without a bound that way (infinite corner) never pins.
    pins = torch.where(corner.isinf(), torch.zeros_like(a), a * room)
    pinned = pins.cumsum(1) - pins
    moving = a.square().flip(1).cumsum(1).flip(1)
    drop = torch.where(corner.isinf(), torch.full_like(corner, float('inf')),
                       pinned + corner * moving)
    piece = (drop < goal[:, None]).sum(1, keepdim=True).clamp_max(
        a.size(1) - 1)
    scale = (goal[:, None] - pinned.gather(1, piece)) / moving.gather(
        1, piece)
    return scale.squeeze(1).clamp_min(0)


def _as_bound(bound: Bound, like: Tensor) -> Tensor:
    return torch.as_tensor(bound, dtype=torch.float32, device=like.device)
