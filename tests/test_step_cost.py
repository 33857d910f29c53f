# Copyright (c) amkd-mmrazor contributors.
"""Tests for the step cost benchmark (``amkd_plugin/apis/step_cost.py``).

The Fashion-MNIST pair (ResNet20 -> ResNet8 on 28x28 grey images) with a
random teacher, on the tiny Fashion-MNIST of conftest.py, a batch of 8 and
a few steps: the structure of what is measured, not its numbers.
"""
import math
from dataclasses import replace

import pytest
from mmengine.config import Config

import amkd_plugin  # noqa: F401  (mends mmrazor's import first)
from amkd_plugin.apis.benchmark import random_teacher
from amkd_plugin.apis.step_cost import (PAIRS, PHASES, REST, STOCK_KD,
                                        StepCostSettings, StepVariant,
                                        build_step, make_batches,
                                        measure_step_cost, teacher_right,
                                        variant_peak_memory_mb)

pytestmark = pytest.mark.usefixtures('in_repo_root', 'single_torch_thread',
                                     'mmrazor_scope')


def pair_teacher(pair: str, root: str) -> str:
    """A random-weight checkpoint of ``pair``'s teacher."""
    return random_teacher(Config.fromfile(PAIRS[pair][0]).model.teacher,
                          root)


BATCH = 8


@pytest.fixture(scope='module')
def settings(fashion_mnist_root) -> StepCostSettings:
    return StepCostSettings(pair='fashion_mnist',
                            data_root=str(fashion_mnist_root),
                            batch_size=BATCH, iters=2, warmup=1, caps=(2, ))


def test_every_variant_is_timed_against_stock_kd(settings):
    cost = measure_step_cost(settings, memory=False)

    names = list(cost.rows)
    assert names == [
        STOCK_KD, 'AMKD, weight 0', 'online, BSS step',
        'online, first-order step, at most 1',
        'online, first-order step, at most 2'
    ]
    rows = cost.rows
    assert rows[STOCK_KD].ratio == 1
    assert [rows[name].max_steps for name in names] == [None, None, 10, 1, 2]
    for name, row in rows.items():
        assert row.time > 0 and row.ratio > 0, name
        assert row.memory_mb is None
        online = name.startswith('online')
        assert row.attacked == (math.ceil(0.25 * BATCH) if online else 0)
        assert 0 <= row.reached <= 1, name
        assert 0 <= row.steps <= (row.max_steps or 0), name
    assert rows[STOCK_KD].phases == {}
    for name in names[1:]:
        phases = rows[name].phases
        assert list(phases) == [*PHASES, REST]
        assert phases['clean'] > 0 and phases[REST] > 0
        assert (phases['attack'] > 0) == name.startswith('online')
        assert sum(phases.values()) == pytest.approx(rows[name].time,
                                                     rel=0.5)
    table = cost.table()
    for name in names:
        assert f'| {name} |' in table
    assert 'ratio to stock KD' in table and 'random weights' in table


def test_a_trained_teachers_batches_keep_the_images_it_gets_right(
        settings, tmp_path):
    ckpt = pair_teacher(settings.pair, str(tmp_path))
    step = build_step(settings, StepVariant(STOCK_KD), ckpt)
    # A random teacher's batch: every image labelled with its class.
    batch = make_batches(replace(settings, warmup=0, iters=1), step.cfg,
                         step.algorithm)[0]
    chunk = [dict(inputs=image, data_samples=sample)
             for image, sample in zip(batch['inputs'], batch['data_samples'])]
    for sample in chunk[1::2]:  # now wrong on the odd rows
        label = int(sample['data_samples'].gt_label)
        sample['data_samples'].set_gt_label((label + 1) % 10)

    assert teacher_right(chunk, step.algorithm, relabel=False) == chunk[::2]
    assert teacher_right(chunk, step.algorithm, relabel=True) == chunk
    assert teacher_right(chunk, step.algorithm, relabel=False) == chunk


def test_peak_memory_of_a_variant(settings, tmp_path):
    ckpt = pair_teacher(settings.pair, str(tmp_path))
    assert variant_peak_memory_mb(settings, StepVariant(STOCK_KD), ckpt,
                                  1) >= 0
