# Copyright (c) amkd-mmrazor contributors.
import math
from typing import List, Optional

from mmengine.dist import all_gather_object, get_dist_info
from mmengine.hooks import CheckpointHook, Hook
from mmrazor.registry import HOOKS

from amkd_plugin.utils import UserValueError, unwrap

CHECKPOINT_KEY = 'adversarial_boundary'


@HOOKS.register_module()
class AdversarialBoundaryHook(Hook):
    """Schedule the boundary losses of AMKD, log the attack, keep its state.

    Before every training iteration it sets the algorithm's
    ``boundary_weight`` to ``scale * warmup(p) * decay(p)`` at training
    progress ``p = iter / max_iters``:

    - ``warmup(p) = min(1, p / warmup)`` (1 when ``warmup=0``);
    - ``decay`` is ``1 - p / end`` clipped at 0 (``'linear'``, BSS),
      ``(1 + cos(pi * min(p / end, 1))) / 2`` (``'cosine'``) or 1
      (``'constant'``).

    With the default ``end=0.75`` the boundary losses fade out linearly and
    the attack stops for the last quarter of training, as in BSS. After
    each iteration it logs the weight and the algorithm's ``attack_stats``
    (``train/boundary_*``: samples attacked, fraction that reached the
    boundary, mean steps, mean L2 perturbation, the teacher's margin
    ``z_b - z_k`` on clean images and on their boundary samples). After
    each epoch it logs the epoch's boundary margin relative to the clean
    one (``boundary_margin_ratio``): near 0 for samples at the boundary,
    negative past it; and the teacher passes (attack steps) spent per
    boundary sample in training (``boundary_passes``: 0 for a bank used
    as loaded). It saves the attack's random state in checkpoints, every
    rank's under distributed training, so a resumed run draws the same
    targets.

    ``scale=0`` turns AMKD into plain KD (no attack, boundary losses 0),
    which is how the digits KD baseline configs are made (the others are
    stock MMRazor KD).

    Args:
        schedule (str): ``'linear'``, ``'cosine'`` or ``'constant'``.
            Defaults to ``'linear'``.
        end (float): Progress at which the decay reaches 0. Defaults to
            0.75.
        warmup (float): Progress over which the weight ramps up from 0.
            Defaults to 0.
        scale (float): Peak weight. Defaults to 1.
    """

    priority = 'NORMAL'

    def __init__(self,
                 schedule: str = 'linear',
                 end: float = 0.75,
                 warmup: float = 0.,
                 scale: float = 1.) -> None:
        if schedule not in ('linear', 'cosine', 'constant'):
            raise UserValueError("schedule must be 'linear', 'cosine' or "
                                 f"'constant', got {schedule!r}.")
        if not 0 < end or not 0 <= warmup < 1 or scale < 0:
            raise UserValueError(
                f'Need end > 0, 0 <= warmup < 1 and scale >= 0, got '
                f'end={end}, warmup={warmup}, scale={scale}.')
        self.schedule = schedule
        self.end = end
        self.warmup = warmup
        self.scale = scale
        self._sums = dict(attacked=0., clean=0., boundary=0., passes=0.)
        self._rank_states: Optional[List[dict]] = None
        self._by_iteration = False

    def weight(self, progress: float) -> float:
        """The boundary weight at training progress ``progress`` in [0, 1]."""
        ramp = min(1., progress / self.warmup) if self.warmup else 1.
        done = min(progress / self.end, 1.)
        decay = {
            'constant': 1.,
            'linear': 1 - done,
            'cosine': (1 + math.cos(math.pi * done)) / 2,
        }[self.schedule]
        return self.scale * ramp * decay

    def before_train(self, runner) -> None:
        # Checkpoints by iteration need every rank's sampler state after
        # each iteration, not only at the epoch's end.
        self._by_iteration = any(
            isinstance(hook, CheckpointHook) and not hook.by_epoch
            for hook in runner.hooks)

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: Optional[dict] = None) -> None:
        unwrap(runner.model).boundary_weight = self.weight(
            runner.iter / runner.max_iters)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        algorithm = unwrap(runner.model)
        hub = runner.message_hub
        hub.update_scalar('train/boundary_weight', algorithm.boundary_weight)
        stats = algorithm.attack_stats
        for name, value in stats.items():
            hub.update_scalar(f'train/boundary_{name}', value)
        attacked = stats.get('attacked', 0.)
        for key, stat in (('clean', 'margin_clean'), ('boundary', 'margin'),
                          ('passes', 'steps')):
            self._sums[key] += attacked * stats.get(stat, 0.)
        self._sums['attacked'] += attacked
        if self._by_iteration:
            self.gather_rank_states(runner)

    def after_train_epoch(self, runner) -> None:
        self.gather_rank_states(runner)
        sums = self._sums
        self._sums = dict.fromkeys(sums, 0.)
        if sums['attacked'] > 0 and sums['clean'] > 0:
            ratio = sums['boundary'] / sums['clean']
            passes = sums['passes'] / sums['attacked']
            runner.logger.info(
                f'Epoch {runner.epoch + 1}: teacher margin z_b - z_k on the '
                f'boundary samples is {ratio:.3f} x the clean margin; '
                f'{passes:.2f} teacher passes per boundary sample.')
            runner.visualizer.add_scalars(
                dict(boundary_margin_ratio=ratio, boundary_passes=passes),
                step=runner.epoch + 1)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        state = dict(attack=unwrap(runner.model).boundary.state_dict())
        if self._rank_states is not None:
            state['attack_per_rank'] = self._rank_states
        checkpoint[CHECKPOINT_KEY] = state

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if CHECKPOINT_KEY not in checkpoint:
            return
        state = checkpoint[CHECKPOINT_KEY]
        per_rank = state.get('attack_per_rank')
        rank, world_size = get_dist_info()
        unwrap(runner.model).boundary.load_state_dict(
            per_rank[rank] if per_rank and len(per_rank) == world_size else
            state['attack'])

    def gather_rank_states(self, runner) -> None:
        """Every rank's random state, for rank 0 to save.

        Each rank draws the targets of its own boundary samples, as many as
        it selects, so the ranks' sampler states part; a resumed rank must
        get its own. Rank 0 alone saves checkpoints (MMEngine), so all
        ranks gather their states at the end of each step that a checkpoint
        may follow: each epoch, or each iteration when checkpoints are by
        iteration.
        """
        if get_dist_info()[1] > 1:
            self._rank_states = all_gather_object(
                unwrap(runner.model).boundary.state_dict())
