# Copyright (c) amkd-mmrazor contributors.
import dataclasses
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
from mmpretrain.structures import DataSample
from mmrazor.registry import TASK_UTILS
from torch import Tensor, nn

from amkd_plugin.bank import BoundaryBankBuilder
from amkd_plugin.bank.bank_file import BankReader
from amkd_plugin.models.task_modules import BoundaryAttack, BoundarySamples
from amkd_plugin.utils import UserInputError, build_in_mmrazor
from amkd_plugin.utils.pixels import from_pixels, pixel_bounds
from .base_boundary import BaseBoundary


@TASK_UTILS.register_module()
class BankedBoundary(BaseBoundary, BankReader):
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
    clean version the teacher got right when banked; only then are the
    selected images' banked rows read (:meth:`BoundaryBankFile.read`: a
    quarter of the batch's bank bytes by default), their stored change
    added to the clean images the pipeline kept, with their banked targets
    (one of the K, drawn from the attack's generator, which checkpoints
    keep). The pipeline's augmentation moves ``img`` only, so they stay
    exactly as banked, with the teacher's banked logits on them, which
    then stand in for the teacher's boundary pass. A pipeline may load the
    banked samples itself instead (``LoadBoundaryBank(decode=True)``, to
    augment them with the image); their fields are then used as loaded.
    ``refine`` attacks each banked sample again in the step, from where
    the pipeline left it; the refining attack's last pass then gives the
    teacher's logits on the samples.

    Args:
        attack (dict): ``BoundaryAttack`` config: its selection
            (``max_ratio``) in the step, the rest in the build. Defaults to
            ``dict(type='BoundaryAttack')``.
        top_k (int, optional): Bank the K runner-up classes of each image
            instead of one sampled class; the step draws one per selected
            image. Defaults to None.
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
        :meth:`BaseBoundary.__call__`; ``data_samples`` carry the clean
        image ``boundary_clean`` or the decoded ``boundary_*`` fields of
        ``LoadBoundaryBank``)."""
        first = data_samples[0]
        decoded = 'boundary_correct' in first
        if not decoded and ('boundary_clean' not in first
                            or self.bank_path is None):
            raise UserInputError(
                'BankedBoundary found no banked sample in the batch: list '
                "dict(type='BoundaryBankHook') in custom_hooks, as "
                'configs/_base_/distill/amkd.py does.')
        device = labels.device
        if decoded:
            eligible = np.array([s.boundary_correct for s in data_samples],
                                bool)
        else:
            rows = np.array([s.sample_idx for s in data_samples], np.int64)
            eligible = self.bank['correct'][rows]
        eligible = torch.from_numpy(eligible).to(device)
        index = self.attack.select(labels, teacher_logits.detach().float(),
                                   student_logits.detach().float(),
                                   eligible=eligible)
        if index.numel() == 0:
            return BoundarySamples.empty(images, labels)
        chosen = [data_samples[i] for i in index.tolist()]
        banked = (self._decoded(chosen) if decoded else self._read(
            chosen, rows[index.cpu().numpy()], device))
        pixels = torch.from_numpy(
            np.ascontiguousarray(banked['images'].transpose(0, 3, 1, 2)))
        logits = banked.get('logits')
        # No teacher pass in this step: 0 steps, whatever building took.
        samples = BoundarySamples(
            from_pixels(pixels.to(device), data_preprocessor), index,
            labels[index],
            torch.from_numpy(banked['targets']).to(device),
            torch.from_numpy(banked['reached']).to(device),
            torch.zeros_like(index), labels,
            None if logits is None else torch.from_numpy(logits).to(device))
        if self.refine_attack is None:
            return samples
        # The refining attack's last pass on each sample gives the
        # teacher's logits where it ended, in place of the banked ones.
        inputs, reached, steps, logits = (
            self.refine_attack.attack_with_logits(
                teacher, samples.inputs, samples.source, samples.target,
                pixel_bounds(data_preprocessor)))
        return dataclasses.replace(
            samples, inputs=inputs, reached=reached, steps=steps,
            teacher_logits=logits)

    def _read(self, chosen: List[DataSample], rows: np.ndarray,
              device: torch.device) -> Dict[str, np.ndarray]:
        """The banked samples of the selected rows, read now."""
        bank = self.bank
        draws = torch.rand(len(rows), generator=self.attack.generator(device),
                           device=device) if bank.num_targets > 1 else None
        columns = bank.draw(rows, None if draws is None else
                            draws.cpu().numpy())
        return bank.read(rows, columns,
                         np.stack([s.boundary_clean for s in chosen]))

    @staticmethod
    def _decoded(chosen: List[DataSample]) -> Dict[str, np.ndarray]:
        """The banked samples the pipeline loaded; their logits only where
        it packed them (where it leaves the banked image as it is)."""
        return dict(
            images=np.stack([s.boundary_img for s in chosen]),
            targets=np.array([s.boundary_target for s in chosen], np.int64),
            reached=np.array([s.boundary_reached for s in chosen], bool),
            **({'logits': np.stack([s.boundary_logits for s in chosen])}
               if 'boundary_logits' in chosen[0] else {}))
