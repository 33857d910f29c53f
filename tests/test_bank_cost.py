# Copyright (c) amkd-mmrazor contributors.
"""The cost benchmark of an epoch and the bank (``apis/bank_cost.py``)."""
import re
from argparse import Namespace

import pytest

from amkd_plugin.apis.bank_cost import benchmark_bank
from amkd_plugin.bank import BoundaryBankFile

pytestmark = pytest.mark.usefixtures('in_repo_root', 'single_torch_thread')


def test_nbytes_counts_every_array():
    # Per (index, target): 12 values of 6 bits in 9 bytes, scale 4, logits
    # 3 * 4, target 8, weight 4, reached 1, steps 2; per index: checksum 4,
    # correct 1.
    per_image = 9 + 4 + 12 + 8 + 4 + 1 + 2
    assert BoundaryBankFile.nbytes(5, 2, (2, 2, 3), 3) == 5 * (
        2 * per_image + 4 + 1)


@pytest.mark.slow
def test_the_bank_benchmark_measures_side_by_side(capsys):
    """A real, tiny run on the digits pair: every variant timed against
    stock KD, the bank's size, the bytes its epoch read and the build on
    1 and 2 processes; the banked form given by a fragment (boundary
    samples for an eighth of each batch)."""
    eighth = 'configs/experiments/sources/ratio_eighth.py'
    benchmark_bank(Namespace(
        pair='digits', device='cpu', amp=False, num_images=16, batch_size=8,
        repeats=1, bank_repeats=1, warmup=0, threads=1, num_workers=0,
        data_root=None, teacher_ckpt=None, build_ranks=[1, 2],
        fragments=[eighth]))
    out = capsys.readouterr().out
    ratios = dict(re.findall(r'^\| ([^|]+?) \| [0-9.]+ \| [0-9.]+ \| '
                             r'([0-9.]+)x \|', out, re.M))
    assert ratios['KD, stock MMRazor'] == '1.00'
    assert {'KD (AMKD at weight 0)', 'AMKD online, BSS step, w=1',
            'AMKD online, first-order step, w=1', 'AMKD banked, w=1',
            'AMKD banked, w=0'} <= set(ratios)
    assert all(float(r) > 0 for r in ratios.values())
    # 16 images of 32 x 32 x 3 and 10 classes: the bank's arrays, their
    # .npy headers (128 bytes each, 9 arrays) and meta.json, per value.
    values = 16 * 32 * 32 * 3
    arrays = BoundaryBankFile.nbytes(16, 1, (32, 32, 3), 10)
    per_value = float(re.search(r'MB for 16 images, ([0-9.]+) bytes', out)
                      .group(1))
    assert arrays / values - 5e-4 <= per_value <= (
        arrays + 9 * 128 + 4096) / values + 5e-4
    # 6 bits a value, plus the per-image rows.
    assert 0.75 < per_value < 1
    # An eighth of each batch of 8 (1 row of 2 batches) at most, and one
    # ``correct`` byte per image.
    assert f'banked AMKD: the pair with {eighth}' in out
    rows = int(re.search(r'\(([0-9]+) rows of', out).group(1))
    assert 0 <= rows <= 2
    assert 'ImageNet-1k on paper' in out
    builds = re.search(r'process count .*: 1: ([0-9.]+) s, 2: ([0-9.]+) s '
                       r'\(([0-9.]+)x\)', out)
    one, two, ratio = map(float, builds.groups())
    assert one > 0 and two > 0
    # Each printed number is rounded to 0.005: the ratio of the rounded
    # seconds is off from the printed ratio by at most this much.
    bound = 0.005 + 0.005 * (1 + two / one) / (one - 0.005)
    assert ratio == pytest.approx(two / one, abs=bound)
    assert '2-process build <= 0.65x 1 process: ' in out
