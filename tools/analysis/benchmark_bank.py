# Copyright (c) amkd-mmrazor contributors.
"""Time a training epoch and the bank build: KD vs online vs banked AMKD.

Stock MMRazor KD, KD as AMKD at weight 0, online AMKD (BSS's and the
first-order step) and banked AMKD, one epoch each in lockstep on the same
batches, with the bank's size, its share past the boundary as stored, the
bank bytes an epoch reads and the build's wall time on 1 and 2 processes;
see :mod:`amkd_plugin.apis.bank_cost`.

On a CPU shared with other jobs use ``--threads 1``: more threads than free
cores slow every step several times, small batches most, and skew ratios.

Example:
    python tools/analysis/benchmark_bank.py --threads 1
    python tools/analysis/benchmark_bank.py --threads 1 --pair fashion_mnist
    python tools/analysis/benchmark_bank.py --threads 1 --pair fashion_mnist \
        --fragments configs/experiments/sources/ratio_eighth.py
    python tools/analysis/benchmark_bank.py --device cuda --amp
    python tools/analysis/benchmark_bank.py --threads 1 --pair digits \
        --teacher-ckpt work_dirs/demo/teacher/epoch_20.pth
"""
import argparse

import amkd_plugin  # noqa: F401  (registers the plugin, mends mmrazor)
from amkd_plugin.apis.bank_cost import PAIRS, TEACHERS, benchmark_bank
from amkd_plugin.utils import tool_main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--pair', choices=list(PAIRS), default='cifar100')
    parser.add_argument('--device', default='cpu', help='cpu or cuda')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision, as tools/train.py --amp '
                        '(AmpOptimWrapper; CUDA only)')
    parser.add_argument('--num-images', type=int, default=512)
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--repeats', type=int, default=3,
                        help='timed rounds of one epoch of each variant')
    parser.add_argument('--bank-repeats', type=int, default=1,
                        help='timed bank builds, one before each of the '
                        'first rounds (the bank is a few percent of a run)')
    parser.add_argument('--warmup', type=int, default=1,
                        help='untimed rounds first')
    parser.add_argument('--threads', type=int,
                        help='torch threads (1 on a shared CPU)')
    parser.add_argument('--num-workers', type=int, default=0,
                        help='dataloader workers (0: loading counts in '
                        'each variant\'s own time)')
    parser.add_argument('--data-root', help='real CIFAR-100 data_root')
    parser.add_argument('--build-ranks', type=int, nargs='*',
                        default=[1, 2], metavar='N',
                        help='time the bank build on each of these process '
                        'counts (torchrun, one torch thread each; none: '
                        'skip)')
    parser.add_argument('--teacher-ckpt',
                        help='trained teacher of the pair (default: random '
                        'weights; for fashion_mnist the committed '
                        f'{TEACHERS["fashion_mnist"]})')
    parser.add_argument('--fragments', nargs='*', default=[],
                        metavar='PATH',
                        help='experiment fragments merged onto the banked '
                        'AMKD config, to measure a banked form other than '
                        'the default (e.g. configs/experiments/sources/'
                        'ratio_eighth.py)')
    return parser.parse_args()


if __name__ == '__main__':
    tool_main(lambda: benchmark_bank(parse_args()))()
