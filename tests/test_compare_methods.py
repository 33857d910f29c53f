# Copyright (c) amkd-mmrazor contributors.
"""The statistics of tools/analysis/compare_methods.py's tables."""
import math
import re
import statistics

import pytest
from helpers import REPO, load_tool

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
    script = (REPO / 'scripts/benchmark_fashion_mnist.sh').read_text()
    methods = re.search(r'methods=\$\{\*:-([a-z0-9_ ]+)\}', script)
    assert methods, 'the default method list of the benchmark script'
    for method in methods.group(1).split():
        config = tool.METHODS[method][1].format(
            pair='resnet20_resnet8_fashion_mnist_lowdata')
        assert (REPO / config).is_file(), config
