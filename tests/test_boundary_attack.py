# Copyright (c) amkd-mmrazor contributors.
"""Tests for BoundaryAttack: selection, targets, the update rule, stopping.

The teachers are tiny and deterministic. A linear teacher on flattened
images makes ``g = z_b - z_k`` and its gradient ``w = W_b - W_k`` known in
closed form, so reach steps and the first update can be computed by hand;
a small conv net checks the same properties on a non-linear model.
"""
import math

import pytest
import torch
from torch import nn

import amkd_plugin  # noqa: F401  (mends mmrazor's import first)
from amkd_plugin.models.task_modules import BoundaryAttack, BoundarySamples
from mmrazor.registry import TASK_UTILS

# Tiny CPU models on one torch thread, built in MMRazor's scope (see
# conftest.py).
pytestmark = pytest.mark.usefixtures('single_torch_thread',
                                     'mmrazor_scope')

IMAGE_SHAPE = (2, 2, 2)  # C, H, W: 8 features once flattened
NUM_FEATURES = 8


def linear_teacher(num_classes: int, seed: int = 0) -> nn.Module:
    """Fixed linear logits on flattened images, frozen like a teacher."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(NUM_FEATURES, num_classes))
    for param in model.parameters():
        param.requires_grad_(False)
    return model.eval()


def conv_teacher(num_classes: int = 5, seed: int = 0) -> nn.Module:
    """A tiny non-linear teacher; weights scaled so the attack can cross.

    Its parameters keep ``requires_grad=True`` on purpose: the attack must
    not write ``.grad`` even for a teacher that is not frozen.
    """
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(8, num_classes))
    return model.eval()


def images_with_margins(model: nn.Module, margins: torch.Tensor,
                        seed: int = 1) -> torch.Tensor:
    """Images of class 0 whose ``g = z_0 - z_1`` equals ``margins``.

    For the two-class linear teacher, ``g`` is affine in the image, so a
    random image shifted along ``w = W_0 - W_1`` hits any wanted ``g``.
    """
    linear = model[1]
    w = linear.weight[0] - linear.weight[1]
    x = torch.randn(len(margins), NUM_FEATURES,
                    generator=torch.Generator().manual_seed(seed)) * 0.1
    g = x @ w + linear.bias[0] - linear.bias[1]
    x = x + (margins - g)[:, None] * w / w.dot(w)
    return x.view(len(margins), *IMAGE_SHAPE)


def g_of(model: nn.Module, images: torch.Tensor, source: torch.Tensor,
         target: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        logits = model(images)
    return (logits.gather(1, source[:, None]) -
            logits.gather(1, target[:, None])).squeeze(1)


class CountingTeacher:
    """Wraps a teacher and records the batch size of every call."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.sizes = []

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        self.sizes.append(len(images))
        return self.model(images)


# --- construction ----------------------------------------------------------


def test_registered_in_task_utils():
    attack = TASK_UTILS.build(
        dict(type='BoundaryAttack', max_steps=3, step_size=0.1,
             max_ratio=0.5))
    assert isinstance(attack, BoundaryAttack)
    assert (attack.max_steps, attack.step_size, attack.max_ratio) == (3, 0.1,
                                                                      0.5)


@pytest.mark.parametrize('kwargs', [
    dict(max_steps=0),
    dict(step_size=0),
    dict(step_size=-1.),
    dict(max_ratio=0),
    dict(max_ratio=1.5),
    dict(overshoot=-0.1),
    dict(max_step_rms=0.),
])
def test_invalid_arguments_raise(kwargs):
    with pytest.raises(ValueError, match='BoundaryAttack needs'):
        BoundaryAttack(**kwargs)


def test_unknown_step_rule_raises():
    with pytest.raises(ValueError,
                       match="one of bss, newton, newton_box, got 'adam'"):
        BoundaryAttack(step='adam')


def test_settings_round_trip_through_the_registry():
    settings = dict(max_steps=3, step_size=0.3, step='newton', overshoot=0.1,
                    max_step_rms=0.5, seed=4)
    attack = TASK_UTILS.build(dict(type='BoundaryAttack', **settings))
    assert attack.settings() == settings
    assert BoundaryAttack(**attack.settings()).settings() == settings


# --- selection -------------------------------------------------------------


def test_select_keeps_largest_disagreement_among_correct():
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    gen = torch.Generator().manual_seed(0)
    teacher = torch.randn(8, 3, generator=gen)
    student = torch.randn(8, 3, generator=gen)
    # Teacher right everywhere but row 6; student wrong on row 7.
    teacher.scatter_(1, labels[:, None], 5.)
    student.scatter_(1, labels[:, None], 5.)
    teacher[6, labels[6]] = -5.
    student[7, labels[7]] = -5.
    attack = BoundaryAttack(max_ratio=0.5)  # m = ceil(0.5 * 8) = 4

    chosen = attack.select(labels, teacher, student)

    p_t, p_s = teacher.softmax(1), student.softmax(1)
    gap = [
        sum((p_t[i, c] - p_s[i, c])**2 for c in range(3) if c != labels[i])
        for i in range(8)
    ]
    correct = [i for i in range(8) if i not in (6, 7)]
    expected = sorted(correct, key=lambda i: -gap[i])[:4]
    assert sorted(chosen.tolist()) == sorted(expected)
    # The largest disagreement comes first.
    assert chosen[0].item() == expected[0]


@pytest.mark.parametrize('num,ratio,expected', [(8, 0.25, 2), (10, 0.25, 3),
                                                (9, 0.5, 5), (4, 1.0, 4),
                                                (3, 0.1, 1)])
def test_select_takes_at_most_ceil_ratio_times_batch(num, ratio, expected):
    labels = torch.zeros(num, dtype=torch.long)
    logits = torch.tensor([[3., 0., 0.]]).repeat(num, 1)
    chosen = BoundaryAttack(max_ratio=ratio).select(labels, logits, logits)
    assert len(chosen) == expected == math.ceil(num * ratio)
    assert len(set(chosen.tolist())) == expected


def test_select_only_rows_both_models_get_right():
    labels = torch.tensor([0, 0, 0, 0])
    teacher = torch.tensor([[2., 0.], [2., 0.], [0., 2.], [2., 0.]])
    student = torch.tensor([[2., 0.], [0., 2.], [2., 0.], [2., 0.]])
    # Only rows 0 and 3 qualify: fewer than m = 4, so both and no more.
    chosen = BoundaryAttack(max_ratio=1.0).select(labels, teacher, student)
    assert sorted(chosen.tolist()) == [0, 3]


def test_no_candidates_gives_empty_samples_without_calling_teacher():
    model = linear_teacher(3)
    teacher = CountingTeacher(model)
    images = torch.randn(5, *IMAGE_SHAPE)
    logits = model(images)
    labels = (logits.argmax(1) + 1) % 3  # the teacher is wrong everywhere

    samples = BoundaryAttack()(teacher, images, labels, logits, logits)

    assert samples.num == 0
    assert teacher.sizes == []
    assert samples.inputs.shape == (0, *IMAGE_SHAPE)
    for field in (samples.index, samples.source, samples.target,
                  samples.reached, samples.steps):
        assert field.shape == (0, )
    assert samples.reached.dtype == torch.bool
    assert torch.equal(samples.labels, labels)


def test_select_respects_eligible_rows():
    labels = torch.tensor([0, 0, 0])
    logits = torch.tensor([[2., 0.], [2., 0.], [2., 0.]])
    eligible = torch.tensor([True, False, True])
    chosen = BoundaryAttack(max_ratio=1.0).select(labels, logits, logits,
                                                  eligible)
    assert sorted(chosen.tolist()) == [0, 2]


def test_attack_of_no_images_does_not_call_the_teacher():
    teacher = CountingTeacher(linear_teacher(3))
    none = torch.zeros(0, dtype=torch.long)
    adv, reached, steps, logits = BoundaryAttack().attack_with_logits(
        teacher, torch.randn(0, *IMAGE_SHAPE), none, none, (-1., 1.))
    assert teacher.sizes == []
    assert adv.shape == (0, *IMAGE_SHAPE)
    assert reached.shape == steps.shape == (0, )
    assert logits.shape == (0, 0)


def test_empty_constructor():
    images = torch.randn(3, *IMAGE_SHAPE)
    labels = torch.tensor([2, 0, 1])
    samples = BoundarySamples.empty(images, labels)
    assert samples.num == 0
    assert samples.inputs.shape == (0, *IMAGE_SHAPE)
    assert torch.equal(samples.labels, labels)


# --- target classes --------------------------------------------------------


def test_target_is_never_the_true_class():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(500, 4, generator=gen) * 3
    labels = torch.randint(0, 4, (500, ), generator=gen)
    targets = BoundaryAttack(seed=1).sample_targets(labels, logits)
    assert targets.shape == labels.shape
    assert (targets != labels).all()
    assert ((targets >= 0) & (targets < 4)).all()


def test_target_follows_teacher_softmax():
    # Runner-up class 3 holds e^5 / (e^5 + 8) = 0.949 of the mass off y = 0.
    logits = torch.zeros(4000, 10)
    logits[:, 0] = 10.
    logits[:, 3] = 5.
    labels = torch.zeros(4000, dtype=torch.long)
    targets = BoundaryAttack().sample_targets(labels, logits)
    expected = math.exp(5) / (math.exp(5) + 8)
    assert abs((targets == 3).float().mean().item() - expected) < 0.02
    # The other eight classes share the rest about evenly.
    counts = torch.bincount(targets, minlength=10)
    assert counts[0] == 0
    others = counts[[1, 2, 4, 5, 6, 7, 8, 9]].float()
    assert others.min() > 0
    assert abs(others.mean().item() / 4000 - (1 - expected) / 8) < 0.01


# --- the update rule and stopping (linear teacher) -------------------------


def test_one_step_matches_hand_computation():
    model = linear_teacher(4)
    images = torch.randn(6, *IMAGE_SHAPE,
                         generator=torch.Generator().manual_seed(2))
    logits = model(images)
    labels = logits.argmax(1)
    attack = BoundaryAttack(max_steps=1, step_size=0.05, max_ratio=1.0)

    samples = attack(model, images, labels, logits, logits)

    assert samples.num == 6
    weight, bias = model[1].weight, model[1].bias
    for row in range(samples.num):
        i = samples.index[row]
        b, k = samples.source[row], samples.target[row]
        assert b == labels[i] and k != b
        w = weight[b] - weight[k]  # the gradient of g, constant
        x0 = images[i].flatten()
        g = x0 @ w + bias[b] - bias[k]
        x1 = x0 - 0.05 * (g + 1e-4) * w / w.norm()
        torch.testing.assert_close(samples.inputs[row].flatten(), x1)
        assert samples.steps[row] == 1


def test_reach_steps_and_small_g_on_linear_teacher():
    """eta * ||w|| = 1/2 halves g + 1e-4 each step: reach steps are known.

    ``g_s + 1e-4 = (g_0 + 1e-4) / 2^s`` turns negative at the first ``s``
    with ``2^s > (g_0 + 1e-4) / 1e-4``: 5, 7 and 11 steps for the first
    three margins; the last needs 14 > max_steps and never gets there.
    """
    model = linear_teacher(2)
    margins = torch.tensor([0.0025, 0.01, 0.15, 1.0])
    images = images_with_margins(model, margins)
    labels = torch.zeros(4, dtype=torch.long)
    logits = model(images)
    assert (logits.argmax(1) == 0).all()
    w = model[1].weight[0] - model[1].weight[1]
    teacher = CountingTeacher(model)
    attack = BoundaryAttack(
        max_steps=12, step_size=0.5 / w.norm().item(), max_ratio=1.0)

    samples = attack(teacher, images, labels, logits, logits)

    order = samples.index.argsort()  # rows in batch order
    assert samples.target.tolist() == [1, 1, 1, 1]
    assert samples.reached[order].tolist() == [True, True, True, False]
    assert samples.steps[order].tolist() == [5, 7, 11, 12]
    # Reached samples left b = 0, the last is still in it.
    with torch.no_grad():
        final = model(samples.inputs[order]).argmax(1)
    assert final.tolist() == [1, 1, 1, 0]
    # ... and sit right at the boundary: |g| <= 1e-4, tiny against g_0.
    g_end = g_of(model, samples.inputs[order], labels, samples.target)
    assert (g_end[:3].abs() <= 1.1e-4).all()
    assert (g_end[:3].abs() < 0.05 * margins[:3]).all()
    # The unfinished one followed g_12 + 1e-4 = (g_0 + 1e-4) / 2^12.
    torch.testing.assert_close(
        g_end[3], (margins[3] + 1e-4) / 2**12 - 1e-4, atol=1e-5, rtol=0)
    # Only samples still moving are fed: forward t sees those with
    # steps >= t (13 forwards: 12 steps and the final check).
    assert teacher.sizes == [4] * 6 + [3] * 2 + [2] * 4 + [1]


def test_finished_samples_stop_moving_linear():
    model = linear_teacher(2)
    margins = torch.tensor([0.0025, 0.01, 0.15, 1.0])
    images = images_with_margins(model, margins)
    labels = torch.zeros(4, dtype=torch.long)
    logits = model(images)
    w = model[1].weight[0] - model[1].weight[1]
    step_size = 0.5 / w.norm().item()

    def run(max_steps):
        attack = BoundaryAttack(max_steps, step_size, max_ratio=1.0)
        samples = attack(model, images, labels, logits, logits)
        order = samples.index.argsort()
        return (samples.inputs[order], samples.reached[order],
                samples.steps[order])

    full_inputs, full_reached, full_steps = run(12)
    for i in range(3):
        s = full_steps[i].item()
        # The truncated run with exactly s steps ends on the same image.
        inputs, _, steps = run(s)
        assert steps[i] == s
        assert torch.equal(inputs[i], full_inputs[i])
        # One step fewer and the sample has not arrived yet.
        _, reached, steps = run(s - 1)
        assert not reached[i] and steps[i] == s - 1


# --- the first-order (newton) step, linear teacher ------------------------


def test_one_newton_step_lands_just_past_the_boundary():
    """On a linear teacher ``g`` is exactly its linearisation, so one step
    ends at ``g_1 = g_0 - (1 + o)(g_0 + 1e-4) = -o g_0 - (1 + o) 1e-4``:
    past the boundary, by ``o`` times the distance it started from."""
    model = linear_teacher(2)
    margins = torch.tensor([0.01, 0.3, 2.0, 25.0])
    images = images_with_margins(model, margins)
    labels = torch.zeros(4, dtype=torch.long)
    target = torch.ones(4, dtype=torch.long)
    overshoot = 0.05
    teacher = CountingTeacher(model)
    attack = BoundaryAttack(max_steps=10, step='newton', overshoot=overshoot)

    adv, reached, steps = attack.attack(teacher, images, labels, target,
                                        (float('-inf'), float('inf')))

    assert reached.all() and steps.tolist() == [1, 1, 1, 1]
    assert teacher.sizes == [4, 4]  # one step and the check
    g1 = g_of(model, adv, labels, target)
    expected = -overshoot * margins - (1 + overshoot) * 1e-4
    torch.testing.assert_close(g1, expected, rtol=1e-4, atol=1e-5)
    assert (g1 < 0).all()
    # The step is along w, as long as g_0 (1 + o) / ||w|| says.
    w = model[1].weight[0] - model[1].weight[1]
    moved = (images - adv).flatten(1)
    torch.testing.assert_close(
        moved.norm(dim=1), (1 + overshoot) * (margins + 1e-4) / w.norm(),
        rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(
        moved / moved.norm(dim=1, keepdim=True),
        (w / w.norm()).expand(4, -1), rtol=0, atol=1e-5)


def test_one_bss_step_does_not_reach_the_same_boundary():
    """BSS's step with ``eta ||w|| = 1/2`` removes half of ``g + 1e-4``:
    the samples the newton step took across in one step stay in b."""
    model = linear_teacher(2)
    margins = torch.tensor([0.01, 0.3, 2.0, 25.0])
    images = images_with_margins(model, margins)
    labels = torch.zeros(4, dtype=torch.long)
    target = torch.ones(4, dtype=torch.long)
    w = model[1].weight[0] - model[1].weight[1]
    attack = BoundaryAttack(max_steps=1, step_size=0.5 / w.norm().item())

    adv, reached, steps = attack.attack(model, images, labels, target,
                                        (float('-inf'), float('inf')))

    assert not reached.any() and steps.tolist() == [1, 1, 1, 1]
    torch.testing.assert_close(
        g_of(model, adv, labels, target), (margins + 1e-4) / 2 - 1e-4,
        rtol=1e-4, atol=1e-5)


def test_newton_step_keeps_pixel_bounds():
    """A bias of 50 puts the boundary far outside [-0.5, 0.5]^8 (|w| < 2
    per value here), so the free step would leave the bounds."""
    model = linear_teacher(2)
    with torch.no_grad():
        model[1].bias[0] += 50
    images = torch.randn(3, *IMAGE_SHAPE,
                         generator=torch.Generator().manual_seed(4)) * 0.1
    labels = torch.zeros(3, dtype=torch.long)
    assert (model(images).argmax(1) == 0).all()
    attack = BoundaryAttack(max_steps=5, step='newton')

    adv, _, _ = attack.attack(model, images, labels, torch.ones_like(labels),
                              (-0.5, 0.5))

    assert adv.min() >= -0.5 and adv.max() <= 0.5
    # The bounds were active: the free step would leave them.
    assert ((adv == -0.5) | (adv == 0.5)).any()


def pinned_images(model: nn.Module, margins: torch.Tensor,
                  lower: float) -> torch.Tensor:
    """Images of ``margins`` whose first 4 values sit at ``lower`` and
    would have to go below it: there ``w > 0``, so lowering ``g`` lowers
    them."""
    w = model[1].weight[0] - model[1].weight[1]
    with torch.no_grad():
        model[1].weight[0, :4] = model[1].weight[1, :4] + w[:4].abs() + 0.5
    images = images_with_margins(model, margins).flatten(1)
    # Pin the first 4 values and move the last 4 along their w to keep g.
    w = model[1].weight[0] - model[1].weight[1]
    lost = (images[:, :4] - lower) @ w[:4]
    images[:, :4] = lower
    images[:, 4:] += lost[:, None] * w[4:] / w[4:].dot(w[4:])
    return images.view(len(margins), *IMAGE_SHAPE)


def test_one_newton_box_step_lands_past_the_boundary_despite_the_bounds():
    """Half the values sit at the lower bound and would go below it: the
    plain first-order step loses their part and lands short, the boxed
    step moves the free values instead and lands exactly where the
    linearised g says, ``-o g_0 - (1 + o) 1e-4``."""
    model = linear_teacher(2)
    margins = torch.tensor([0.05, 0.2, 0.5])
    lower, upper = -1.0, 10.0
    images = pinned_images(model, margins, lower)
    torch.testing.assert_close(g_of(model, images, *classes(3)), margins,
                               rtol=1e-4, atol=1e-5)
    overshoot = 0.05
    boxed = BoundaryAttack(max_steps=1, step='newton_box',
                           overshoot=overshoot)
    adv, reached, steps = boxed.attack(model, images, *classes(3),
                                       (lower, upper))
    assert reached.all() and steps.tolist() == [1, 1, 1]
    torch.testing.assert_close(
        g_of(model, adv, *classes(3)),
        -overshoot * margins - (1 + overshoot) * 1e-4, rtol=1e-4,
        atol=1e-5)
    # The pinned values stayed; the free ones made up for them.
    assert torch.equal(adv.flatten(1)[:, :4], images.flatten(1)[:, :4])
    plain = BoundaryAttack(max_steps=1, step='newton', overshoot=overshoot)
    _, reached, _ = plain.attack(model, images, *classes(3), (lower, upper))
    assert not reached.any()


def test_a_newton_box_step_beyond_every_bound_ends_at_the_corner():
    """A bias of 50 puts the boundary outside the box: the step takes
    every value to the bound it moves toward, and stops short."""
    model = linear_teacher(2)
    with torch.no_grad():
        model[1].bias[0] += 50
    images = torch.randn(3, *IMAGE_SHAPE,
                         generator=torch.Generator().manual_seed(4)) * 0.1
    attack = BoundaryAttack(max_steps=1, step='newton_box')
    adv, reached, _ = attack.attack(model, images, *classes(3), (-0.5, 0.5))
    assert not reached.any()
    w = model[1].weight[0] - model[1].weight[1]
    corner = torch.where(w > 0, -0.5, 0.5).expand(3, -1)
    assert torch.equal(adv.flatten(1), corner)


def test_a_newton_box_step_inside_the_box_is_the_newton_step():
    model = linear_teacher(2)
    images = images_with_margins(model, torch.tensor([0.3, 2.0]))
    runs = [
        BoundaryAttack(max_steps=1, step=step, overshoot=0.1).attack(
            model, images, *classes(2), (-100., 100.))[0]
        for step in ('newton', 'newton_box')
    ]
    torch.testing.assert_close(runs[0], runs[1], rtol=1e-5, atol=1e-6)


def classes(num: int) -> tuple:
    """Base class 0 and target class 1 for ``num`` samples."""
    return (torch.zeros(num, dtype=torch.long),
            torch.ones(num, dtype=torch.long))


@pytest.mark.parametrize('step', ['bss', 'newton', 'newton_box'])
def test_samples_already_past_b_do_not_move(step):
    model = linear_teacher(2)
    margins = torch.tensor([-0.5, 1.0, -3.0])  # rows 0 and 2: teacher says 1
    images = images_with_margins(model, margins)
    labels = torch.zeros(3, dtype=torch.long)
    attack = BoundaryAttack(max_steps=4, step=step)

    adv, reached, steps = attack.attack(model, images, labels,
                                        torch.ones_like(labels),
                                        (float('-inf'), float('inf')))

    assert reached[[0, 2]].tolist() == [True, True]
    assert steps[[0, 2]].tolist() == [0, 0] and steps[1] >= 1
    assert torch.equal(adv[[0, 2]], images[[0, 2]])


@pytest.mark.parametrize('step', ['bss', 'newton', 'newton_box'])
def test_max_step_rms_caps_every_step(step):
    """A margin of 1e3 asks for a step far longer than the cap allows:
    the step is exactly ``max_step_rms * sqrt(D)`` long, D = 8 values."""
    model = linear_teacher(2)
    margins = torch.tensor([1e3, 2e3])
    images = images_with_margins(model, margins)
    labels = torch.zeros(2, dtype=torch.long)
    attack = BoundaryAttack(max_steps=1, step=step, max_step_rms=0.25)

    adv, reached, _ = attack.attack(model, images, labels,
                                    torch.ones_like(labels),
                                    (float('-inf'), float('inf')))

    assert not reached.any()
    lengths = (adv - images).flatten(1).norm(dim=1)
    # Images of size ~1e3 leave float32 about 1e-4 of relative precision.
    torch.testing.assert_close(
        lengths, torch.full((2, ), 0.25 * NUM_FEATURES**0.5), rtol=1e-3,
        atol=0)


# --- a non-linear teacher --------------------------------------------------


def conv_batch(num: int = 32, seed: int = 3):
    model = conv_teacher()
    images = torch.randn(num, 3, 6, 6,
                         generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        logits = model(images)
    return model, images, logits.argmax(1), logits


@pytest.mark.parametrize('rule', [
    dict(step_size=10.),
    dict(step='newton', overshoot=0.02),
])
def test_conv_teacher_reached_means_left_source(rule):
    model, images, labels, logits = conv_batch()
    attack = BoundaryAttack(max_steps=20, max_ratio=1.0, **rule)

    samples = attack(model, images, labels, logits, logits)

    assert samples.num == len(labels)
    assert samples.reached.any()
    assert torch.equal(samples.source, labels[samples.index])
    assert (samples.target != samples.source).all()
    # Recomputed in one batch, a sample the attack saw just leave b (by a
    # few ulps, in a smaller batch) may have b back on top by as little.
    with torch.no_grad():
        final = model(samples.inputs)
    z_b = final.gather(1, samples.source[:, None]).squeeze(1)
    others = final.scatter(1, samples.source[:, None],
                           float('-inf')).amax(1)
    assert (z_b - others < 1e-5)[samples.reached].all()
    assert (z_b - others > -1e-5)[~samples.reached].all()
    assert (samples.steps[~samples.reached] == 20).all()
    assert ((samples.steps >= 1) & (samples.steps <= 20)).all()
    # Moving toward k shrinks the gap to k.
    g0 = g_of(model, images[samples.index], samples.source, samples.target)
    g1 = g_of(model, samples.inputs, samples.source, samples.target)
    assert (g1 < g0).all()


def test_conv_teacher_finished_samples_stop_moving():
    model, images, labels, logits = conv_batch()

    def run(max_steps):
        attack = BoundaryAttack(max_steps, step_size=10., max_ratio=1.0)
        samples = attack(model, images, labels, logits, logits)
        order = samples.index.argsort()
        return samples.inputs[order], samples.reached[order], samples.steps[
            order]

    full_inputs, full_reached, full_steps = run(20)
    assert full_reached.sum() >= 3
    # One sample per distinct reach step, a handful suffices.
    by_step = {full_steps[i].item(): i
               for i in full_reached.nonzero().flatten().tolist()}
    assert len(by_step) >= 3
    for s, i in sorted(by_step.items())[:5]:
        inputs, reached, steps = run(s)
        assert reached[i] and steps[i] == s
        torch.testing.assert_close(inputs[i], full_inputs[i], rtol=0,
                                   atol=1e-6)


def test_samples_carry_the_teachers_logits_of_their_last_pass():
    """Samples stop at different passes, each carrying the logits of its
    own last one: those of a fresh pass on the moved images, up to float32
    summation order in a batch of another size."""
    model, images, labels, logits = conv_batch()
    teacher = CountingTeacher(model)
    attack = BoundaryAttack(max_steps=20, step_size=10., max_ratio=1.0)

    samples = attack(teacher, images, labels, logits, logits)

    assert len(set(samples.steps.tolist())) >= 3
    assert len(set(teacher.sizes)) >= 3
    carried = samples.teacher_logits
    assert carried.dtype == torch.float32 and not carried.requires_grad
    # ``reached`` is the verdict of exactly these logits.
    assert torch.equal(carried.argmax(1) != samples.source, samples.reached)
    with torch.no_grad():
        fresh = model(samples.inputs)
    # Logits of about 1, sums of a few hundred float32 terms: a few ulps.
    torch.testing.assert_close(carried, fresh, rtol=1e-5, atol=1e-6)


def test_teacher_parameters_untouched():
    model, images, labels, logits = conv_batch()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert all(p.requires_grad for p in model.parameters())

    BoundaryAttack(max_steps=5, step_size=10.,
                   max_ratio=1.0)(model, images, labels, logits, logits)

    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert all(p.grad is None for p in model.parameters())


def test_images_do_not_require_grad_afterwards():
    model, images, labels, logits = conv_batch()
    samples = BoundaryAttack(max_steps=3, step_size=10., max_ratio=1.0)(
        model, images, labels, logits, logits)
    assert not samples.inputs.requires_grad
    assert not images.requires_grad


def test_float_bounds_are_respected():
    model, images, labels, logits = conv_batch()
    images = images.clamp(-1, 1)
    with torch.no_grad():
        logits = model(images)
    labels = logits.argmax(1)
    samples = BoundaryAttack(max_steps=20, step_size=10., max_ratio=1.0)(
        model, images, labels, logits, logits, bounds=(-1., 1.))
    assert samples.inputs.min() >= -1 and samples.inputs.max() <= 1
    # The bounds were active: some pixel sits on one.
    assert ((samples.inputs == -1) | (samples.inputs == 1)).any()


def test_per_channel_tensor_bounds_are_respected():
    model, images, labels, logits = conv_batch()
    # Normalised bounds differ per channel, as (0 - mean) / std does.
    lower = torch.tensor([-1.0, -0.5, -2.0]).view(3, 1, 1)
    upper = torch.tensor([1.0, 0.2, 2.0]).view(3, 1, 1)
    images = torch.max(torch.min(images, upper), lower)
    with torch.no_grad():
        logits = model(images)
    labels = logits.argmax(1)
    samples = BoundaryAttack(max_steps=20, step_size=10., max_ratio=1.0)(
        model, images, labels, logits, logits, bounds=(lower, upper))
    assert (samples.inputs >= lower).all() and (samples.inputs <= upper).all()
    for c in range(3):
        channel = samples.inputs[:, c]
        assert ((channel == lower[c]) | (channel == upper[c])).any(), c


# --- randomness ------------------------------------------------------------


def uniform_batch(num: int = 64):
    """Teacher logits nearly uniform off y, so targets vary a lot."""
    gen = torch.Generator().manual_seed(5)
    labels = torch.randint(0, 10, (num, ), generator=gen)
    logits = torch.randn(num, 10, generator=gen) * 0.1
    logits.scatter_(1, labels[:, None], 5.)
    return labels, logits


def test_same_seed_same_result_different_seed_differs():
    model, images, labels, logits = conv_batch(num=64)

    def run(seed):
        return BoundaryAttack(max_steps=4, step_size=10., max_ratio=1.0,
                              seed=seed)(model, images, labels, logits,
                                         logits)

    first, again, other = run(0), run(0), run(1)
    for field in ('inputs', 'index', 'source', 'target', 'reached',
                  'steps'):
        assert torch.equal(getattr(first, field), getattr(again, field))
    assert not torch.equal(first.target, other.target)

    labels, logits = uniform_batch()
    draws = [BoundaryAttack(seed=s).sample_targets(labels, logits)
             for s in (0, 0, 1)]
    assert torch.equal(draws[0], draws[1])
    assert not torch.equal(draws[0], draws[2])


def test_consecutive_draws_differ():
    labels, logits = uniform_batch()
    attack = BoundaryAttack()
    assert not torch.equal(
        attack.sample_targets(labels, logits),
        attack.sample_targets(labels, logits))


def test_state_dict_reproduces_draws():
    labels, logits = uniform_batch()
    attack = BoundaryAttack(seed=7)
    assert attack.state_dict() == {}  # nothing drawn yet
    attack.sample_targets(labels, logits)  # advance the generator
    state = attack.state_dict()
    expected = attack.sample_targets(labels, logits)

    restored = BoundaryAttack(seed=7)
    restored.load_state_dict(state)
    assert torch.equal(restored.sample_targets(labels, logits), expected)

    # Loading also rewinds a sampler that has drawn since.
    attack.load_state_dict(state)
    assert torch.equal(attack.sample_targets(labels, logits), expected)

    # A fresh sampler with the same seed does not draw `expected`.
    assert not torch.equal(
        BoundaryAttack(seed=7).sample_targets(labels, logits), expected)


def test_state_dict_survives_save_before_use():
    """A resumed run that saves before it draws keeps the loaded state."""
    labels, logits = uniform_batch()
    attack = BoundaryAttack(seed=7)
    attack.sample_targets(labels, logits)
    state = attack.state_dict()
    expected = attack.sample_targets(labels, logits)

    resumed = BoundaryAttack(seed=7)
    resumed.load_state_dict(state)
    saved_again = resumed.state_dict()  # e.g. a checkpoint while weight is 0
    assert torch.equal(saved_again['generator'], state['generator'])

    second = BoundaryAttack(seed=7)
    second.load_state_dict(saved_again)
    assert torch.equal(second.sample_targets(labels, logits), expected)


def test_load_empty_state_restarts_from_seed():
    labels, logits = uniform_batch()
    expected = BoundaryAttack(seed=3).sample_targets(labels, logits)
    attack = BoundaryAttack(seed=3)
    attack.sample_targets(labels, logits)
    attack.load_state_dict({})
    assert torch.equal(attack.sample_targets(labels, logits), expected)
