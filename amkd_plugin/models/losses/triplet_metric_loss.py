# Copyright (c) amkd-mmrazor contributors.
from typing import Optional, Tuple

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
    (teacher embedding of the same sample) and negative ``n_i`` (a teacher
    embedding of a class excluded for i):

        L = loss_weight * mean_i max(0, d(a_i, p_i) - d(a_i, n_i) + m_i)

    with ``m_i = margin`` or, with ``relative_margin``, ``m_i = margin *
    d(p_i, n_i)``: the student must keep (a fraction of) the gap the
    teacher itself has between the sample and the negative, whatever the
    scale of the embedding.

    With ``apply_to='boundary'`` the samples are boundary samples made from
    class b toward class k, and negatives come from the "other" classes,
    neither b nor k: the boundary sample legitimately sits between b and k,
    but must stay a margin farther from every other class than from the
    teacher. With ``apply_to='clean'`` (Oki et al., IJCNN 2020) the samples
    are the clean images and negatives are any class but their own.

    Where negatives come from (``negatives_from``, the ``negatives`` input
    mapped to match):

    - ``'clean'``: the teacher's embeddings of the clean batch (labels of
      the batch);
    - ``'boundary'``: the teacher's embeddings of the other boundary
      samples, valid when their classes (b', k') share none with (b, k);
    - ``'centroids'``: the mean teacher embedding of each class in the
      clean batch.

    The mean runs over samples that have a valid negative; a batch with
    none gives zero. Teacher sides are detached, so only the anchor (the
    student) receives gradients.

    Args:
        margin (float): Required gap between the negative and the positive
            distance. Defaults to 0.5 (chosen by the sweep in
            ``docs/results.md``, how the metric defaults were chosen).
        distance (str): ``'euclidean'`` or ``'cosine'`` (1 - cosine
            similarity). Defaults to ``'euclidean'``.
        normalize (bool): L2-normalise embeddings first, so the margin means
            the same for 10, 100 or 200 classes. Defaults to True.
        negative (str): Which valid negative to use: ``'hardest'`` (closest
            to the anchor), ``'random'`` or ``'target'`` (the hardest image
            of target class k; boundary samples from clean negatives only).
            Defaults to ``'hardest'``.
        apply_to (str): ``'boundary'`` or ``'clean'``. Defaults to
            ``'boundary'``.
        negatives_from (str): ``'clean'``, ``'boundary'`` or
            ``'centroids'``. Defaults to ``'clean'``.
        relative_margin (bool): Scale the margin by the teacher's own
            distance ``d(p_i, n_i)``. Defaults to False.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        seed (int): Seed for ``negative='random'``. Defaults to 0.
    """

    def __init__(self,
                 margin: float = 0.5,
                 distance: str = 'euclidean',
                 normalize: bool = True,
                 negative: str = 'hardest',
                 apply_to: str = 'boundary',
                 negatives_from: str = 'clean',
                 relative_margin: bool = False,
                 loss_weight: float = 1.0,
                 seed: int = 0) -> None:
        super().__init__()
        _check_choice('distance', distance, ('euclidean', 'cosine'))
        _check_choice('negative', negative, ('hardest', 'random', 'target'))
        _check_choice('apply_to', apply_to, ('boundary', 'clean'))
        _check_choice('negatives_from', negatives_from,
                      ('clean', 'boundary', 'centroids'))
        if negative == 'target' and (apply_to == 'clean'
                                     or negatives_from != 'clean'):
            raise UserValueError(
                "negative='target' picks a clean image of the target class "
                "k: use apply_to='boundary' and negatives_from='clean'.")
        if negatives_from == 'boundary' and apply_to == 'clean':
            raise UserValueError(
                "negatives_from='boundary' needs boundary samples; use "
                "apply_to='boundary'.")
        self.margin = margin
        self.distance = distance
        self.normalize = normalize
        self.negative = negative
        self.apply_to = apply_to
        self.negatives_from = negatives_from
        self.relative_margin = relative_margin
        self.loss_weight = loss_weight
        self.seed = seed
        self._generator: Optional[torch.Generator] = None

    def pairwise_distance(self, x: Tensor, y: Tensor) -> Tensor:
        """Distances between every row of ``x`` and every row of ``y``."""
        if self.distance == 'cosine':
            return 1 - F.normalize(x, dim=1) @ F.normalize(y, dim=1).T
        return torch.cdist(x, y)

    def paired_distance(self, x: Tensor, y: Tensor) -> Tensor:
        """Distances between the rows of ``x`` and ``y`` pairwise, (M,)."""
        if self.distance == 'cosine':
            return 1 - F.cosine_similarity(x, y, dim=1)
        return (x - y).norm(dim=1)

    def negative_mask(self,
                      boundary: BoundarySamples,
                      classes: Optional[Tensor] = None) -> Tensor:
        """Which negatives may serve for each sample, (M, len(classes)).

        Args:
            boundary (BoundarySamples): Classes of the samples and batch.
            classes (Tensor, optional): Class of each negative, (N,); for
                boundary negatives their (b, k) pairs, (N, 2). Defaults to
                the labels of the clean batch.
        """
        if classes is None:
            classes = boundary.labels
        if self.negatives_from == 'boundary':
            pairs = torch.stack((boundary.source, boundary.target), 1)
            shared = (pairs[:, None, :, None] == classes[None, :, None, :])
            return ~shared.flatten(2).any(2)
        negatives = classes[None, :]
        if self.apply_to == 'clean':
            return negatives != boundary.labels[:, None]
        if self.negative == 'target':
            return negatives == boundary.target[:, None]
        return ((negatives != boundary.source[:, None])
                & (negatives != boundary.target[:, None]))

    def negatives_with_classes(self, negatives: Tensor,
                               boundary: BoundarySamples
                               ) -> Tuple[Tensor, Tensor]:
        """The negative embeddings and their classes, per ``negatives_from``.
        """
        if self.negatives_from == 'boundary':
            return negatives, torch.stack((boundary.source, boundary.target),
                                          1)
        if self.negatives_from == 'centroids':
            classes = boundary.labels.unique()
            members = (boundary.labels[None, :] == classes[:, None]).float()
            centroids = members @ negatives / members.sum(1, keepdim=True)
            return centroids, classes
        return negatives, boundary.labels

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
                (N, ...), whose labels are ``boundary.labels``; of the
                boundary samples, (M, ...), for ``negatives_from=
                'boundary'``.
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
        negatives, classes = self.negatives_with_classes(negatives, boundary)
        valid = self.negative_mask(boundary, classes)
        dist_an = self.pairwise_distance(anchor, negatives)
        chosen = self.choose_negatives(dist_an, valid)
        d_an = dist_an.gather(1, chosen[:, None]).squeeze(1)
        d_ap = self.paired_distance(anchor, positive)
        margin = self.margin
        if self.relative_margin:
            margin = margin * self.paired_distance(positive,
                                                   negatives[chosen])
        hinge = F.relu(d_ap - d_an + margin)
        has_negative = valid.any(1)
        loss = (hinge * has_negative).sum() / has_negative.sum().clamp_min(1)
        return self.loss_weight * loss


def _check_choice(name: str, value: str, choices: tuple) -> None:
    if value not in choices:
        raise UserValueError(
            f'{name} must be one of {choices}, got {value!r}.')
