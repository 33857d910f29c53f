# Copyright (c) amkd-mmrazor contributors.
import functools
import math
from typing import Dict, Iterable, Optional

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook
from mmrazor.registry import HOOKS, MODELS, TASK_UTILS
from torch import nn

from amkd_plugin.checkpoints import (check_class_counts,
                                     load_teacher_checkpoint,
                                     resolve_model_config)
from amkd_plugin.utils.pixels import pixel_bounds
from amkd_plugin.utils import (UserInputError, UserValueError,
                               build_in_mmrazor, eval_mode, unwrap)


@HOOKS.register_module()
class BoundaryFidelityHook(Hook):
    """Report boundary fidelity next to the accuracy of validation and test.

    After a test, and after every ``interval``-th validation round, it runs
    :class:`BoundaryFidelity` on the same held-out dataloader and adds its
    figures to the round's metrics as ``fidelity/*``. They then go wherever
    MMEngine sends metrics: the log, the visualisation backends
    (TensorBoard, ...), ``tools/test.py``'s table and ``--out`` file.

    The student and teacher are those of a distillation algorithm (its
    ``student`` and ``teacher``). For a lone student classifier, name the
    teacher: ``teacher=dict(config=..., checkpoint=...)``, which
    ``tools/test.py --teacher CONFIG CKPT`` does. Both models keep their
    parameters and training mode; the teacher gets no parameter gradient.

    Args:
        fidelity (dict): ``BoundaryFidelity`` config. Defaults to its
            defaults.
        interval (int): Measure every ``interval`` validation rounds.
            Tests are always measured. Defaults to 1.
        max_images (int, optional): Attack at most this many held-out
            images per round (the first in the dataloader's order), to
            bound the cost; ``agree_clean`` and ``missed`` take every
            image (two forward passes). Defaults to None: all.
        teacher (dict, optional): ``dict(config=PATH, checkpoint=PATH)`` of
            a teacher for models that have none. Defaults to None.
    """

    # Before RuntimeInfoHook (VERY_HIGH) copies the metrics to the message
    # hub, from where the logger and the visualiser read them.
    priority = 'HIGHEST'

    def __init__(self,
                 fidelity: Dict = dict(type='BoundaryFidelity'),
                 interval: int = 1,
                 max_images: Optional[int] = None,
                 teacher: Optional[Dict] = None) -> None:
        if interval < 1 or (max_images is not None and max_images < 1):
            raise UserValueError(
                'BoundaryFidelityHook needs interval >= 1 and '
                f'max_images >= 1 or None; got interval={interval}, '
                f'max_images={max_images}.')
        self.fidelity = build_in_mmrazor(TASK_UTILS, fidelity)
        self.interval = interval
        self.max_images = max_images
        self.teacher_cfg = teacher
        self._teacher: Optional[nn.Module] = None
        self._val_rounds = 0

    def after_val_epoch(self, runner, metrics: Optional[Dict] = None) -> None:
        self._val_rounds += 1
        if metrics is not None and self._val_rounds % self.interval == 0:
            metrics.update(self.evaluate(runner, runner.val_dataloader))

    def after_test_epoch(self, runner, metrics: Optional[Dict] = None) -> None:
        if metrics is not None:
            metrics.update(self.evaluate(runner, runner.test_dataloader))

    def evaluate(self, runner, dataloader: Iterable) -> Dict[str, float]:
        """Boundary fidelity of the runner's model on ``dataloader``."""
        model = unwrap(runner.model)
        student, teacher = self._models(model)
        with eval_mode(student, teacher):
            sums = self._measure(model, student, teacher, dataloader)
        names = sorted(sums)
        total = torch.stack([sums[name] for name in names])
        all_reduce(total, op='sum')
        summary = self.fidelity.summarize(dict(zip(names, total)))
        return {f'fidelity/{name}': value for name, value in summary.items()}

    def _measure(self, model: nn.Module, student: nn.Module,
                 teacher: nn.Module, dataloader: Iterable) -> Dict:
        bounds = pixel_bounds(model.data_preprocessor)
        limit = (math.ceil(self.max_images / get_world_size())
                 if self.max_images else None)
        sums: Dict[str, torch.Tensor] = {}
        seen = 0
        for data_batch in dataloader:
            data = model.data_preprocessor(data_batch, False)
            labels = torch.cat(
                [sample.gt_label for sample in data['data_samples']])
            # The clean comparison is two forward passes: every image.
            with torch.no_grad():
                teacher_logits = teacher(data['inputs'], mode='tensor')
                batches = [
                    self.fidelity.measure_clean(
                        teacher_logits, student(data['inputs'], mode='tensor'),
                        labels)
                ]
            images = data['inputs'][:None if limit is None else limit - seen]
            if len(images):
                batches.append(
                    self.fidelity.measure(
                        functools.partial(teacher, mode='tensor'),
                        functools.partial(student, mode='tensor'), images,
                        labels[:len(images)], bounds,
                        teacher_logits[:len(images)]))
            for batch in batches:
                for name, value in batch.items():
                    sums[name] = sums.get(name, 0) + value
            seen += len(images)
        return sums

    def _models(self, model: nn.Module):
        """(student, teacher) of a distillation algorithm or a classifier."""
        if self.teacher_cfg is None:
            if not hasattr(model, 'teacher'):
                raise UserInputError(
                    'BoundaryFidelityHook: the model has no teacher. Give '
                    'one: teacher=dict(config=..., checkpoint=...) '
                    '(tools/test.py: --teacher CONFIG CKPT).')
            return model.student, model.teacher
        student = getattr(model, 'student', model)
        if self._teacher is None:
            config = self.teacher_cfg['config']
            teacher = MODELS.build(resolve_model_config(dict(cfg_path=config)))
            load_teacher_checkpoint(teacher, self.teacher_cfg['checkpoint'],
                                    config)
            teacher.requires_grad_(False)
            check_class_counts(student, teacher)
            device = next(student.parameters()).device
            self._teacher = teacher.to(device)
        return student, self._teacher
