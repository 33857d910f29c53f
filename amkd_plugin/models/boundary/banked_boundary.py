# Copyright (c) amkd-mmrazor contributors.
import dataclasses
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
from mmpretrain.structures import DataSample
from mmrazor.registry import TASK_UTILS
from torch import Tensor, nn

from amkd_plugin.bank import BoundaryBankBuilder
from amkd_plugin.models.task_modules import BoundaryAttack, BoundarySamples
from amkd_plugin.utils import UserInputError, build_in_mmrazor
from amkd_plugin.utils.pixels import from_pixels, pixel_bounds
from .base_boundary import BaseBoundary


@TASK_UTILS.register_module()
class BankedBoundary(BaseBoundary):
    """Boundary samples read from a bank built once, before training.

    The teacher is frozen, so an image's boundary sample toward a class
    depends on the image and the class only: :class:`BoundaryBankBuilder`
    attacks every (un-augmented) training image once with ``attack``
    (``BoundaryBankHook`` runs it before the first epoch, or
    ``tools/build_boundary_bank.py`` ahead) and puts ``LoadBoundaryBank``
    into the train pipeline, which loads each image's banked sample next
    to it.

    In the step the selection is the online one (``attack.max_ratio``,
    both models right, largest disagreement first), among the images whose
    clean version the teacher got right when banked; the selected images'
    banked samples, with their banked targets, are the boundary samples.
    The pipeline's augmentation moves ``img`` only, so they stay exactly
    as banked, with the teacher's banked logits on them, which then stand
    in for the teacher's boundary pass. ``refine`` attacks each
    banked sample again in the step, from where the pipeline left it.

    Args:
        attack (dict): ``BoundaryAttack`` config: its selection
            (``max_ratio``) in the step, the rest in the build. Defaults to
            ``dict(type='BoundaryAttack')``.
        top_k (int, optional): Bank the K runner-up classes of each image
            instead of one sampled class; ``LoadBoundaryBank`` draws one per
            image and epoch. Defaults to None.
        refine (dict, optional): ``BoundaryAttack`` config of the attack
            that continues from each banked sample in the step, e.g.
            ``dict(step='newton', max_steps=1)``. Defaults to None (the
            banked samples are used as loaded).
        batch_size (int): Images attacked at once while building. Defaults
            to 256.
        num_workers (int): Dataloader workers while building. Defaults to 0.
    """

    def __init__(self,
                 attack: Dict = dict(type='BoundaryAttack'),
                 top_k: Optional[int] = None,
                 refine: Optional[Dict] = None,
                 batch_size: int = 256,
                 num_workers: int = 0) -> None:
        super().__init__(attack)
        self.builder = BoundaryBankBuilder(self.attack, top_k, batch_size,
                                           num_workers)
        self.refine_attack: Optional[BoundaryAttack] = (
            build_in_mmrazor(TASK_UTILS, {'type': 'BoundaryAttack', **refine})
            if refine else None)

    def __call__(self, teacher: Callable[[Tensor], Tensor], images: Tensor,
                 data_samples: List[DataSample], labels: Tensor,
                 teacher_logits: Tensor, student_logits: Tensor,
                 data_preprocessor: nn.Module) -> BoundarySamples:
        """The boundary samples of one batch (arguments as
        :meth:`BaseBoundary.__call__`; ``data_samples`` carry the
        ``boundary_*`` fields of ``LoadBoundaryBank``)."""
        if 'boundary_correct' not in data_samples[0]:
            raise UserInputError(
                'BankedBoundary found no banked sample in the batch: list '
                "dict(type='BoundaryBankHook') in custom_hooks, as "
                'configs/_base_/distill/amkd.py does.')

        def field(name: str) -> Tensor:
            return torch.tensor([s.get(name) for s in data_samples],
                                device=labels.device)

        index = self.attack.select(labels, teacher_logits.detach().float(),
                                   student_logits.detach().float(),
                                   eligible=field('boundary_correct'))
        if index.numel() == 0:
            return BoundarySamples.empty(images, labels)
        chosen = [data_samples[i] for i in index.tolist()]
        pixels = torch.stack([
            torch.from_numpy(
                np.ascontiguousarray(s.boundary_img.transpose(2, 0, 1)))
            for s in chosen
        ]).to(labels.device)
        # The pipeline packs the banked logits only where it leaves the
        # banked image as it is.
        logits = (torch.from_numpy(np.stack(
            [s.boundary_logits for s in chosen])).to(labels.device)
                  if 'boundary_logits' in chosen[0] else None)
        # No teacher pass in this step: 0 steps, whatever building took.
        samples = BoundarySamples(
            from_pixels(pixels, data_preprocessor), index, labels[index],
            field('boundary_target')[index], field('boundary_reached')[index],
            torch.zeros_like(index), labels, logits)
        if self.refine_attack is None:
            return samples
        inputs, reached, steps = self.refine_attack.attack(
            teacher, samples.inputs, samples.source, samples.target,
            pixel_bounds(data_preprocessor))
        # The banked logits were the teacher's on the images it moved.
        return dataclasses.replace(
            samples, inputs=inputs, reached=reached, steps=steps,
            teacher_logits=None)
