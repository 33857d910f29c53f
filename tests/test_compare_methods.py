# Copyright (c) amkd-mmrazor contributors.
"""The statistics of tools/analysis/compare_methods.py's tables."""
import math
import re
import statistics

import pytest
from helpers import REPO, load_tool

from amkd_plugin.utils.fragments import merge_fragments

tool = load_tool('tools/analysis/compare_methods.py')


def test_paired_t_is_mean_over_standard_error():
    differences = [1.0, 2.0, 0.5, 1.5, 1.0]
    expected = statistics.mean(differences) / (
        statistics.stdev(differences) / math.sqrt(5))
    assert tool.paired_t(differences) == pytest.approx(expected)
    # 1.2 +- 0.57 over 5 seeds: beyond the 2.78 of p < 0.05.
    assert tool.paired_t(differences) > 2.78
    assert tool.paired_t([0.4, -0.6, 0.2, 0.9, -0.3]) < 2.78


def test_paired_t_without_spread_or_enough_seeds():
    assert tool.paired_t([None, None]) is None
    assert tool.paired_t([0.3]) is None
    assert tool.paired_t([0., 0.]) is None
    assert tool.paired_t([0.5, 0.5]) == math.inf
    assert tool.paired_t([-0.5, -0.5, None]) == -math.inf


def test_the_fashion_mnist_benchmark_has_every_config():
    """Every method the benchmark script runs (its three tables) has its
    config and fragments, and they merge."""
    script = (REPO / 'scripts/benchmark_fashion_mnist.sh').read_text()
    methods = re.search(r'methods=\$\{\*:-([a-z0-9_ ]+)\}', script)
    assert methods, 'the default method list of the benchmark script'
    listed = set(methods.group(1).split())
    for block in re.findall(r'--methods ([a-z0-9_ \\\n]+?) --section', script):
        listed |= set(block.replace('\\', ' ').split())
    assert {'amkd_online_newton', 'amkd_no_ls_top3'} <= listed
    for method in sorted(listed):
        _, config, fragments = tool.METHODS[method]
        config = config.format(pair='resnet20_resnet8_fashion_mnist_lowdata')
        assert (REPO / config).is_file(), config
        for fragment in fragments:
            assert (REPO / fragment).is_file(), fragment
        cfg = merge_fragments(str(REPO / config),
                              [str(REPO / f) for f in fragments])
        assert cfg.train_cfg.max_epochs == 15


@pytest.mark.parametrize('method',
                         sorted(m for m in tool.METHODS if 'amkd' in m))
def test_every_amkd_method_is_the_pair_with_fragments(method):
    """On the digits pair (every study ran there), each AMKD method is
    the pair with its fragments merged."""
    _, config, fragments = tool.METHODS[method]
    cfg = merge_fragments(
        str(REPO / config.format(pair='resnet20_resnet8_digits')),
        [str(REPO / f) for f in fragments])
    assert cfg.model.type == 'AMKDDistill'
    assert cfg.model.boundary.type in ('BankedBoundary', 'OnlineBoundary')
