# Copyright (c) amkd-mmrazor contributors.
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmrazor.registry import MODELS
from torch import Tensor

from amkd_plugin.utils import UserValueError
from ..task_modules import BoundarySamples


@MODELS.register_module()
class TripletMetricLoss(nn.Module):
    """Keep the student near the teacher and away from negative classes.

    For anchor ``a_i`` (student embedding of sample i), positive ``p_i``
    (teacher embedding of the same sample) and negative ``n_i`` (teacher
    embedding of a clean image of the batch whose class is excluded for i):

        L = loss_weight * mean_i max(0, d(a_i, p_i) - d(a_i, n_i) + margin)

    With ``apply_to='boundary'`` the samples are boundary samples made from
    class b toward class k, and negatives come from the "other" classes,
    neither b nor k: the boundary sample legitimately sits between b and k,
    but must stay a margin farther from every other class than from the
    teacher. With ``apply_to='clean'`` (Oki et al., IJCNN 2020) the samples
    are the clean images and negatives are any class but their own.

    The mean runs over samples that have a valid negative; a batch with
    none gives zero. Teacher sides are detached, so only the anchor (the
    student) receives gradients.

    Args:
        margin (float): Required gap between the negative and the positive
            distance. Defaults to 0.5 (chosen by the sweep in
            ``docs/method.md``).
        distance (str): ``'euclidean'`` or ``'cosine'`` (1 - cosine
            similarity). Defaults to ``'euclidean'``.
        normalize (bool): L2-normalise embeddings first, so the margin means
            the same for 10, 100 or 200 classes. Defaults to True.
        negative (str): Which valid negative to use: ``'hardest'`` (closest
            to the anchor), ``'random'`` or ``'target'`` (the hardest image
            of target class k; boundary samples only). Defaults to
            ``'hardest'``.
        apply_to (str): ``'boundary'`` or ``'clean'``. Defaults to
            ``'boundary'``.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        seed (int): Seed for ``negative='random'``. Defaults to 0.
    """

    def __init__(self,
                 margin: float = 0.5,
                 distance: str = 'euclidean',
                 normalize: bool = True,
                 negative: str = 'hardest',
                 apply_to: str = 'boundary',
                 loss_weight: float = 1.0,
                 seed: int = 0) -> None:
        super().__init__()
        _check_choice('distance', distance, ('euclidean', 'cosine'))
        _check_choice('negative', negative, ('hardest', 'random', 'target'))
        _check_choice('apply_to', apply_to, ('boundary', 'clean'))
        if negative == 'target' and apply_to == 'clean':
            raise UserValueError("negative='target' needs boundary samples (a "
                                 "target class k); use apply_to='boundary'.")
        self.margin = margin
        self.distance = distance
        self.normalize = normalize
        self.negative = negative
        self.apply_to = apply_to
        self.loss_weight = loss_weight
        self.seed = seed
        self._generator: Optional[torch.Generator] = None

    def pairwise_distance(self, x: Tensor, y: Tensor) -> Tensor:
        """Distances between every row of ``x`` and every row of ``y``."""
        if self.distance == 'cosine':
            return 1 - F.normalize(x, dim=1) @ F.normalize(y, dim=1).T
        return torch.cdist(x, y)

    def negative_mask(self, boundary: BoundarySamples) -> Tensor:
        """Which clean rows may serve as negative for each sample, (M, N)."""
        labels = boundary.labels[None, :]
        if self.apply_to == 'clean':
            return labels != boundary.labels[:, None]
        if self.negative == 'target':
            return labels == boundary.target[:, None]
        return ((labels != boundary.source[:, None])
                & (labels != boundary.target[:, None]))

    def choose_negatives(self, dist: Tensor, valid: Tensor) -> Tensor:
        """Index of the negative of each sample among the clean rows."""
        if self.negative == 'random':
            if self._generator is None or (self._generator.device !=
                                           dist.device):
                self._generator = torch.Generator(dist.device).manual_seed(
                    self.seed)
            # Rows without a valid negative draw uniformly; they are masked
            # out of the loss anyway.
            weights = valid.float() + (~valid.any(1, keepdim=True)).float()
            return torch.multinomial(
                weights, 1, generator=self._generator).squeeze(1)
        return dist.detach().masked_fill(~valid, float('inf')).argmin(1)

    def forward(self, anchor: Tensor, positive: Tensor, negatives: Tensor,
                boundary: BoundarySamples) -> Tensor:
        """Compute the triplet loss.

        Args:
            anchor (Tensor): Student embeddings of the samples, (M, ...).
            positive (Tensor): Teacher embeddings of the same samples.
            negatives (Tensor): Teacher embeddings of the clean batch,
                (N, ...), whose labels are ``boundary.labels``.
            boundary (BoundarySamples): Classes of samples and batch.

        Returns:
            Tensor: The weighted loss, a scalar.
        """
        anchor = anchor.flatten(1).float()
        positive = positive.detach().flatten(1).float()
        negatives = negatives.detach().flatten(1).float()
        if self.normalize:
            anchor, positive, negatives = (
                F.normalize(e, dim=1) for e in (anchor, positive, negatives))
        valid = self.negative_mask(boundary)
        dist_an = self.pairwise_distance(anchor, negatives)
        chosen = self.choose_negatives(dist_an, valid)
        d_an = dist_an.gather(1, chosen[:, None]).squeeze(1)
        if self.distance == 'cosine':
            d_ap = 1 - F.cosine_similarity(anchor, positive, dim=1)
        else:
            d_ap = (anchor - positive).norm(dim=1)
        hinge = F.relu(d_ap - d_an + self.margin)
        has_negative = valid.any(1)
        loss = (hinge * has_negative).sum() / has_negative.sum().clamp_min(1)
        return self.loss_weight * loss


def _check_choice(name: str, value: str, choices: tuple) -> None:
    if value not in choices:
        raise UserValueError(
            f'{name} must be one of {choices}, got {value!r}.')
