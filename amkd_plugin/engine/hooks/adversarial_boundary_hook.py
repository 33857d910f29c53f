# Copyright (c) amkd-mmrazor contributors.
import math
from typing import Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmrazor.registry import HOOKS

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
    boundary, mean steps, mean L2 perturbation). It saves the attack's
    random state in checkpoints, so a resumed run draws the same targets.

    ``scale=0`` turns AMKD into plain KD (no attack, boundary losses 0),
    which is how the KD baseline configs are made.

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
            raise ValueError("schedule must be 'linear', 'cosine' or "
                             f"'constant', got {schedule!r}.")
        if not 0 < end or not 0 <= warmup < 1 or scale < 0:
            raise ValueError(
                f'Need end > 0, 0 <= warmup < 1 and scale >= 0, got '
                f'end={end}, warmup={warmup}, scale={scale}.')
        self.schedule = schedule
        self.end = end
        self.warmup = warmup
        self.scale = scale

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

    @staticmethod
    def _algorithm(runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: Optional[dict] = None) -> None:
        self._algorithm(runner).boundary_weight = self.weight(
            runner.iter / runner.max_iters)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        algorithm = self._algorithm(runner)
        hub = runner.message_hub
        hub.update_scalar('train/boundary_weight', algorithm.boundary_weight)
        for name, value in algorithm.attack_stats.items():
            hub.update_scalar(f'train/boundary_{name}', value)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint[CHECKPOINT_KEY] = dict(
            attack=self._algorithm(runner).attack.state_dict())

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if CHECKPOINT_KEY in checkpoint:
            self._algorithm(runner).attack.load_state_dict(
                checkpoint[CHECKPOINT_KEY]['attack'])
