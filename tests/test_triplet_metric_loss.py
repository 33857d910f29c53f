# Copyright (c) amkd-mmrazor contributors.
"""Tests for TripletMetricLoss against hand computations on small tensors."""
import itertools
import math

import pytest
import torch
import torch.nn.functional as F

import amkd_plugin  # noqa: F401  (mends mmrazor's import first)
from amkd_plugin.models.losses import TripletMetricLoss
from amkd_plugin.models.task_modules import BoundarySamples
from mmrazor.registry import MODELS

# Tiny CPU models on one torch thread, built in MMRazor's scope (see
# conftest.py).
pytestmark = pytest.mark.usefixtures('single_torch_thread',
                                     'mmrazor_scope')


def samples(labels, source, target, index=None) -> BoundarySamples:
    """Boundary samples carrying only what the loss reads: the classes."""
    labels = torch.as_tensor(labels)
    source = torch.as_tensor(source)
    index = torch.arange(len(source)) if index is None else torch.as_tensor(
        index)
    return BoundarySamples(
        inputs=torch.zeros(len(source), 1),
        index=index,
        source=source,
        target=torch.as_tensor(target),
        reached=torch.ones(len(source), dtype=torch.bool),
        steps=torch.ones(len(source), dtype=torch.long),
        labels=labels)


def reference(anchor, positive, negatives, boundary, margin, distance,
              normalize, negative, apply_to):
    """Loop-by-loop loss for deterministic negatives ('hardest'/'target')."""
    if normalize:
        anchor, positive, negatives = (F.normalize(e.flatten(1), dim=1)
                                       for e in (anchor, positive,
                                                 negatives))
    else:
        anchor, positive, negatives = (e.flatten(1)
                                       for e in (anchor, positive,
                                                 negatives))

    def d(x, y):
        if distance == 'cosine':
            return 1 - float(x @ y) / (float(x.norm()) * float(y.norm()))
        return float((x - y).norm())

    hinges = []
    for i in range(len(anchor)):
        if apply_to == 'clean':
            ok = [j for j in range(len(negatives))
                  if boundary.labels[j] != boundary.labels[i]]
        elif negative == 'target':
            ok = [j for j in range(len(negatives))
                  if boundary.labels[j] == boundary.target[i]]
        else:
            ok = [j for j in range(len(negatives))
                  if boundary.labels[j] not in (boundary.source[i],
                                                boundary.target[i])]
        if not ok:
            continue
        d_an = min(d(anchor[i], negatives[j]) for j in ok)
        hinges.append(max(0., d(anchor[i], positive[i]) - d_an + margin))
    return sum(hinges) / max(len(hinges), 1)


# --- options ---------------------------------------------------------------


@pytest.mark.parametrize('kwargs', [
    dict(distance='manhattan'),
    dict(negative='closest'),
    dict(apply_to='both'),
    dict(negative='target', apply_to='clean'),
    dict(negative='target', negatives_from='centroids'),
    dict(negatives_from='boundary', apply_to='clean'),
    dict(negatives_from='batch'),
])
def test_invalid_options_raise(kwargs):
    with pytest.raises(ValueError):
        TripletMetricLoss(**kwargs)


def test_built_from_registry():
    loss = MODELS.build(
        dict(type='TripletMetricLoss', margin=0.5, distance='cosine',
             normalize=False, negative='random', loss_weight=2.))
    assert isinstance(loss, TripletMetricLoss)
    assert (loss.margin, loss.distance, loss.normalize, loss.negative,
            loss.loss_weight) == (0.5, 'cosine', False, 'random', 2.)


# --- hand computations -----------------------------------------------------


def test_euclidean_hardest_by_hand():
    # One boundary sample, b = 0, k = 1. Clean batch labels 0, 1, 2, 3.
    anchor = torch.tensor([[0., 0.]])
    positive = torch.tensor([[0.3, 0.4]])  # d_ap = 0.5
    negatives = torch.tensor([
        [0.1, 0.],  # class b: excluded though closest
        [0., 0.1],  # class k: excluded
        [0.6, 0.],  # class 2: d = 0.6, the hardest valid one
        [0., 1.],  # class 3: d = 1.0
    ])
    boundary = samples([0, 1, 2, 3], [0], [1])
    loss = TripletMetricLoss(margin=0.2, normalize=False)(anchor, positive,
                                                          negatives, boundary)
    # max(0, 0.5 - 0.6 + 0.2) = 0.1
    torch.testing.assert_close(loss, torch.tensor(0.1))
    weighted = TripletMetricLoss(margin=0.2, normalize=False,
                                 loss_weight=3.)(anchor, positive, negatives,
                                                 boundary)
    torch.testing.assert_close(weighted, torch.tensor(0.3))


def test_boundary_negatives_by_hand():
    """Negatives are the teacher's boundary samples of pairs sharing no
    class with the anchor's (b, k)."""
    anchor = torch.tensor([[0., 0.], [1., 1.], [5., 5.]])
    positive = torch.tensor([[0.3, 0.4], [1., 1.5], [5., 5.]])
    # Teacher boundary embeddings; pairs (0, 1), (0, 2), (3, 4).
    teacher_boundary = torch.tensor([[0.1, 0.], [0.9, 0.], [0., 0.7]])
    boundary = samples([0, 1, 2, 3, 4], [0, 0, 3], [1, 2, 4])
    loss = TripletMetricLoss(margin=0.2, normalize=False,
                             negatives_from='boundary')
    valid = loss.negative_mask(boundary, torch.tensor([[0, 1], [0, 2],
                                                       [3, 4]]))
    assert valid.tolist() == [[False, False, True], [False, False, True],
                              [True, True, False]]

    value = loss(anchor, positive, teacher_boundary, boundary)

    # Sample 0: d_ap 0.5, its only negative (row 2) at 0.7 -> 0.
    # Sample 1: d_ap 0.5, row 2 at |(1, 0.3)| -> max(0, 0.5 - 1.044 + 0.2).
    # Sample 2: d_ap 0, nearest of rows 0 and 1 at |(4.1, 5)| -> 0.
    torch.testing.assert_close(value, torch.tensor(0.))
    near = teacher_boundary.clone()
    near[2] = torch.tensor([1., 1.1])  # now 0.1 from sample 1's anchor
    value = loss(anchor, positive, near, boundary)
    # Sample 0: row 2 at |(1, 1.1)| = 1.487 -> 0. Sample 1: 0.5 - 0.1 + 0.2.
    torch.testing.assert_close(value, torch.tensor(0.6 / 3))


def test_centroid_negatives_by_hand():
    """Negatives are the class means of the teacher's clean embeddings."""
    anchor = torch.tensor([[0., 0.]])
    positive = torch.tensor([[0.3, 0.4]])  # d_ap = 0.5
    negatives = torch.tensor([
        [0.1, 0.],  # class b = 0
        [0.4, 0.],  # class 2
        [0.8, 0.],  # class 2: centroid (0.6, 0)
        [0., 2.],  # class 3: centroid (0, 2)
    ])
    boundary = samples([0, 2, 2, 3], [0], [1])
    loss = TripletMetricLoss(margin=0.2, normalize=False,
                             negatives_from='centroids')
    # max(0, 0.5 - 0.6 + 0.2) = 0.1: the centroid, not the image at 0.4.
    torch.testing.assert_close(
        loss(anchor, positive, negatives, boundary), torch.tensor(0.1))


def test_relative_margin_by_hand():
    """m_i = margin * d(p_i, n_i): the teacher's own gap, scaled."""
    anchor = torch.tensor([[0., 0.]])
    positive = torch.tensor([[0.3, 0.4]])  # d_ap = 0.5
    negatives = torch.tensor([[0.6, 0.], [3., 0.]])  # hardest: (0.6, 0)
    boundary = samples([2, 3], [0], [1])
    d_pn = math.hypot(0.3, 0.4)  # |(0.3, -0.4)| = 0.5
    loss = TripletMetricLoss(margin=0.8, normalize=False,
                             relative_margin=True)
    torch.testing.assert_close(
        loss(anchor, positive, negatives, boundary),
        torch.tensor(0.5 - 0.6 + 0.8 * d_pn))
    # A student on the teacher's embedding keeps its gap: zero at margin 1.
    exact = TripletMetricLoss(margin=1., normalize=False,
                              relative_margin=True)
    torch.testing.assert_close(
        exact(positive, positive, negatives, boundary), torch.tensor(0.))


@pytest.mark.parametrize('options', [
    dict(negatives_from='boundary'),
    dict(negatives_from='centroids'),
    dict(relative_margin=True),
    dict(relative_margin=True, normalize=False),
])
def test_new_options_give_gradients_to_the_student_only(options):
    gen = torch.Generator().manual_seed(0)
    anchor = torch.randn(4, 6, generator=gen, requires_grad=True)
    positive = torch.randn(4, 6, generator=gen, requires_grad=True)
    clean = torch.randn(8, 6, generator=gen, requires_grad=True)
    boundary = samples([0, 1, 2, 3, 4, 5, 6, 7], [0, 1, 4, 6],
                       [1, 2, 5, 7])
    negatives = (positive if options.get('negatives_from') == 'boundary'
                 else clean)
    loss = TripletMetricLoss(margin=2., **options)(anchor, positive,
                                                   negatives, boundary)
    loss.backward()
    assert loss > 0 and anchor.grad.abs().sum() > 0
    assert positive.grad is None and clean.grad is None


@pytest.mark.parametrize('negatives_from', ['boundary', 'centroids'])
def test_no_valid_negative_gives_zero_not_nan(negatives_from):
    """Every negative shares a class with the sample's (b, k)."""
    anchor = torch.randn(2, 3, requires_grad=True)
    positive = torch.randn(2, 3)
    boundary = samples([0, 1, 1, 0], [0, 1], [1, 0])
    negatives = positive if negatives_from == 'boundary' else torch.randn(
        4, 3)
    loss = TripletMetricLoss(negatives_from=negatives_from,
                             relative_margin=True)(anchor, positive,
                                                   negatives, boundary)
    loss.backward()
    assert loss.item() == 0 and torch.isfinite(anchor.grad).all()


def test_cosine_target_by_hand():
    # b = 0, k = 1: the negative is the closest image of class 1.
    anchor = torch.tensor([[1., 0.]])
    positive = torch.tensor([[1., 1.]])  # 1 - cos 45 deg
    negatives = torch.tensor([
        [1., 0.1],  # class 0
        [0., 1.],  # class 1: 1 - cos 90 deg = 1
        [-1., 1.],  # class 1: 1 - cos 135 deg, farther
        [1., 0.05],  # class 2: very close but not of class k
    ])
    boundary = samples([0, 1, 1, 2], [0], [1])
    loss = TripletMetricLoss(
        margin=1.5, distance='cosine', negative='target')(anchor, positive,
                                                          negatives, boundary)
    expected = (1 - math.cos(math.pi / 4)) - 1. + 1.5
    torch.testing.assert_close(loss, torch.tensor(expected))


def test_normalize_changes_euclidean_distances_by_hand():
    anchor = torch.tensor([[2., 0.]])  # unit: (1, 0)
    positive = torch.tensor([[0., 3.]])  # unit: (0, 1), d_ap = sqrt(2)
    negatives = torch.tensor([[-5., 0.]])  # unit: (-1, 0), d_an = 2
    boundary = samples([2], [0], [1])
    on = TripletMetricLoss(margin=1.)(anchor, positive, negatives, boundary)
    torch.testing.assert_close(on, torch.tensor(math.sqrt(2) - 2 + 1))
    off = TripletMetricLoss(
        margin=1., normalize=False)(anchor, positive, negatives, boundary)
    # sqrt(13) - 7 + 1 < 0: the margin holds without normalising.
    assert off.item() == 0.


def test_clean_by_hand():
    # Three clean images; anchors are the students' embeddings of them.
    anchor = torch.tensor([[0., 0.], [1., 0.], [0., 1.]])
    positive = torch.tensor([[0., 0.5], [1., 0.], [0., 0.8]])
    negatives = torch.tensor([[0., 0.], [1., 0.], [0., 1.]])
    labels = [0, 1, 0]
    boundary = BoundarySamples.empty(torch.zeros(3, 1), torch.tensor(labels))
    loss = TripletMetricLoss(
        margin=0.5, normalize=False, apply_to='clean')(anchor, positive,
                                                       negatives, boundary)
    # Row 0: own class 0 excluded -> negative row 1 at 1; 0.5 - 1 + 0.5 = 0.
    # Row 1: negatives rows 0 (d 1) and 2 (d sqrt 2); 0 - 1 + 0.5 < 0.
    # Row 2: negative row 1 at sqrt(2); 0.2 - sqrt(2) + 0.5 < 0.
    assert loss.item() == 0.
    loss = TripletMetricLoss(
        margin=1.2, normalize=False, apply_to='clean')(anchor, positive,
                                                       negatives, boundary)
    # Rows 0 and 1 now violate the margin by 0.7 and 0.2; row 2 still holds
    # it (0.2 - sqrt(2) + 1.2 < 0) but counts in the mean.
    expected = ((0.5 - 1 + 1.2) + (0 - 1 + 1.2) + 0.) / 3
    torch.testing.assert_close(loss, torch.tensor(expected))


@pytest.mark.parametrize(
    'distance,normalize,negative,apply_to',
    [(d, n, neg, a) for d, n, neg, a in itertools.product(
        ('euclidean', 'cosine'), (True, False), ('hardest', 'target'),
        ('boundary', 'clean')) if not (neg == 'target' and a == 'clean')])
def test_matches_loop_reference(distance, normalize, negative, apply_to):
    gen = torch.Generator().manual_seed(0)
    labels = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 4, 4])
    if apply_to == 'clean':
        num = len(labels)
        boundary = BoundarySamples.empty(torch.zeros(num, 1), labels)
    else:
        index = torch.tensor([0, 1, 2, 5, 8])
        source = labels[index]
        target = torch.tensor([1, 2, 3, 3, 0])
        boundary = samples(labels, source, target, index)
        num = len(index)
    # Feature maps (M, 2, 3) are flattened by the loss.
    anchor = torch.randn(num, 2, 3, generator=gen)
    positive = anchor + 0.3 * torch.randn(num, 2, 3, generator=gen)
    negatives = torch.randn(len(labels), 2, 3, generator=gen)
    # Raw euclidean distances are ~3.5 here, the others at most 2.
    margin = 3. if distance == 'euclidean' and not normalize else 1.5
    kwargs = dict(margin=margin, distance=distance, normalize=normalize,
                  negative=negative, apply_to=apply_to)

    loss = TripletMetricLoss(**kwargs)(anchor, positive, negatives, boundary)

    expected = reference(anchor, positive, negatives, boundary, **kwargs)
    assert expected > 0  # the case is not trivially zero
    torch.testing.assert_close(loss, torch.tensor(expected, dtype=loss.dtype))


def test_zero_when_margin_holds():
    anchor = torch.tensor([[1., 0.], [0., 1.]])
    positive = anchor + 0.01
    # Far from both anchors in length and in angle.
    negatives = torch.tensor([[-1., 0.1], [-1., -1.], [0.2, -1.]])
    boundary = samples([2, 3, 4], [0, 1], [1, 0])
    for distance in ('euclidean', 'cosine'):
        loss = TripletMetricLoss(
            margin=0.2, distance=distance, normalize=False)(
                anchor.requires_grad_(), positive, negatives, boundary)
        assert loss.item() == 0.
        loss.backward()
        assert torch.equal(anchor.grad, torch.zeros_like(anchor))
        anchor.grad = None


def test_mean_over_samples_with_a_negative_only():
    anchor = torch.tensor([[0., 0.], [0., 0.]])
    positive = torch.tensor([[0.3, 0.4], [0.3, 0.4]])
    negatives = torch.tensor([[0.6, 0.], [0., 5.]])
    # Sample 0 (b=0, k=1) has negative class 2; sample 1 (b=2, k=3) has
    # none (only classes 2 and 3 in the batch ... class 2 and 3 excluded).
    boundary = samples([2, 3], [0, 2], [1, 3])
    loss = TripletMetricLoss(
        margin=0.2, normalize=False)(anchor, positive, negatives, boundary)
    torch.testing.assert_close(loss, torch.tensor(0.1))  # not 0.1 / 2


# --- gradients -------------------------------------------------------------


@pytest.mark.parametrize('distance', ['euclidean', 'cosine'])
def test_gradient_only_on_anchor(distance):
    gen = torch.Generator().manual_seed(1)
    anchor = torch.randn(3, 4, generator=gen, requires_grad=True)
    positive = torch.randn(3, 4, generator=gen, requires_grad=True)
    negatives = torch.randn(6, 4, generator=gen, requires_grad=True)
    boundary = samples([0, 1, 2, 3, 4, 5], [0, 1, 2], [1, 2, 3])
    loss = TripletMetricLoss(margin=5., distance=distance)(anchor, positive,
                                                           negatives,
                                                           boundary)
    assert loss.item() > 0
    loss.backward()
    assert positive.grad is None
    assert negatives.grad is None
    assert anchor.grad is not None and anchor.grad.abs().sum() > 0


@pytest.mark.parametrize('negative', ['hardest', 'random', 'target'])
def test_no_valid_negative_gives_zero_with_graph(negative):
    anchor = torch.randn(2, 3, requires_grad=True)
    positive = torch.randn(2, 3)
    negatives = torch.randn(4, 3)
    # Every clean image is of class b or k (and for 'target' none of k=2).
    boundary = samples([0, 1, 0, 1], [0, 1], [1, 0] if negative != 'target'
                       else [2, 2])
    loss = TripletMetricLoss(negative=negative)(anchor, positive, negatives,
                                                boundary)
    assert loss.item() == 0.
    assert not torch.isnan(loss)
    assert loss.requires_grad
    loss.backward()
    assert not torch.isnan(anchor.grad).any()
    assert torch.equal(anchor.grad, torch.zeros_like(anchor))


def test_empty_clean_batch_negatives():
    # A single-class batch in clean mode: nobody has a negative.
    anchor = torch.randn(3, 4, requires_grad=True)
    boundary = BoundarySamples.empty(torch.zeros(3, 1), torch.tensor([1, 1,
                                                                      1]))
    loss = TripletMetricLoss(apply_to='clean')(anchor, torch.randn(3, 4),
                                               torch.randn(3, 4), boundary)
    assert loss.item() == 0. and loss.requires_grad


@pytest.mark.parametrize('distance,normalize',
                         itertools.product(('euclidean', 'cosine'),
                                           (True, False)))
def test_no_nan_when_anchor_equals_positive(distance, normalize):
    anchor = torch.tensor([[1., 2., 3.], [0.5, -1., 2.]], requires_grad=True)
    positive = anchor.detach().clone()  # d_ap = 0 exactly
    # The hardest negative of sample 0 also coincides with its anchor.
    negatives = torch.tensor([[1., 2., 3.], [3., 0., 1.], [0., 1., 0.]])
    boundary = samples([2, 3, 4], [0, 1], [1, 0])
    loss = TripletMetricLoss(margin=0.5,
                             distance=distance,
                             normalize=normalize)(anchor, positive, negatives,
                                                  boundary)
    assert loss.item() > 0
    loss.backward()
    assert torch.isfinite(anchor.grad).all()


# --- which negative --------------------------------------------------------


def test_negative_mask_excludes_b_and_k():
    boundary = samples([0, 1, 2, 3, 1, 2], [0, 2], [1, 3])
    mask = TripletMetricLoss().negative_mask(boundary)
    assert mask.tolist() == [
        [False, False, True, True, False, True],
        [True, True, False, False, True, False],
    ]
    target = TripletMetricLoss(negative='target').negative_mask(boundary)
    assert target.tolist() == [
        [False, True, False, False, True, False],
        [False, False, False, True, False, False],
    ]
    clean = TripletMetricLoss(apply_to='clean').negative_mask(
        BoundarySamples.empty(torch.zeros(3, 1), torch.tensor([0, 1, 0])))
    assert clean.tolist() == [[False, True, False], [True, False, True],
                              [False, True, False]]


def test_hardest_skips_closer_images_of_b_and_k():
    loss = TripletMetricLoss(normalize=False)
    anchor = torch.tensor([[0., 0.]])
    # Rows: class b (nearest), class k, class 2 (far), class 3 (nearer).
    negatives = torch.tensor([[0.01, 0.], [0.02, 0.], [3., 0.], [2., 0.]])
    boundary = samples([0, 1, 2, 3], [0], [1])
    valid = loss.negative_mask(boundary)
    chosen = loss.choose_negatives(loss.pairwise_distance(anchor, negatives),
                                   valid)
    assert chosen.tolist() == [3]


def test_random_negatives_are_valid_and_cover_all_valid():
    loss = TripletMetricLoss(negative='random', seed=3)
    labels = [0, 1, 2, 3, 4, 0, 1]
    boundary = samples(labels, [0] * 50, [1] * 50)
    valid = loss.negative_mask(boundary)
    dist = torch.rand(50, len(labels))
    chosen = loss.choose_negatives(dist, valid)
    assert all(labels[j] not in (0, 1) for j in chosen.tolist())
    assert set(chosen.tolist()) == {2, 3, 4}


def test_random_negatives_follow_seed():
    labels = [0, 1, 2, 3, 4, 5, 6, 7]
    boundary = samples(labels, [0] * 40, [1] * 40)
    dist = torch.rand(40, len(labels))

    def draw(seed):
        loss = TripletMetricLoss(negative='random', seed=seed)
        return loss.choose_negatives(dist, loss.negative_mask(boundary))

    assert torch.equal(draw(0), draw(0))
    assert not torch.equal(draw(0), draw(1))


def test_random_negative_loss_uses_the_chosen_row():
    anchor = torch.tensor([[0., 0.]])
    positive = torch.tensor([[0.3, 0.4]])
    # Only one valid negative (class 2), at distance 0.6.
    negatives = torch.tensor([[0.1, 0.], [0., 0.1], [0.6, 0.]])
    boundary = samples([0, 1, 2], [0], [1])
    loss = TripletMetricLoss(
        margin=0.2, normalize=False, negative='random')(anchor, positive,
                                                        negatives, boundary)
    torch.testing.assert_close(loss, torch.tensor(0.1))


def test_target_negative_is_closest_image_of_k():
    loss = TripletMetricLoss(negative='target', normalize=False)
    anchor = torch.tensor([[0., 0.], [0., 0.]])
    negatives = torch.tensor([[0.1, 0.], [2., 0.], [1., 0.], [0.5, 0.]])
    boundary = samples([0, 1, 1, 2], [0, 1], [1, 2])
    chosen = loss.choose_negatives(
        loss.pairwise_distance(anchor, negatives),
        loss.negative_mask(boundary))
    assert chosen.tolist() == [2, 3]
