# Copyright (c) amkd-mmrazor contributors.
"""Time one training step: stock MMRazor KD against online AMKD steps.

Stock MMRazor KD (the pair's ``configs/kd/`` config, the baseline of every
ratio), the pair's AMKD at boundary weight 0, and online AMKD with BSS's
attack step and with the first-order step (``sources/online_newton_box.py``,
at its cap and at each of ``--caps``), stepped in turn on the same batches
in one process (``amkd_plugin/apis/step_cost.py`` says how). It prints
median step times, their ratios to stock KD, the attack's statistics (the
share of boundary samples past the teacher's boundary among them), the
peak memory of each variant (each in a fresh process) and the time of
each phase of the AMKD steps.

``--pair cifar100`` (the default) is the flagship ResNet56 -> ResNet20
with random weights on random images, the attack's worst case: a random
teacher's flat logits are rarely crossed, so every sample takes all its
steps. ``--pair fashion_mnist`` is ResNet20 -> ResNet8 on the Fashion-MNIST
training images; with ``--teacher-ckpt`` its trained teacher shows the
typical case.

Changed from the earlier tool: the baseline is stock MMRazor KD (was AMKD
at weight 0, now a row of its own); ``--teacher-ckpt`` takes the pair's
teacher (was a ResNet56 digits teacher on the digits, a pair without a
stock KD config); ``--pair``, ``--caps``, ``--data-root`` and
``--no-memory`` are new; each step has a batch of its own.

On a CPU shared with other jobs use ``--threads 1``: more threads than
free cores slow every step several times and skew the ratios.

Example:
    python tools/analysis/benchmark_step.py --threads 1 --iters 10
    python tools/analysis/benchmark_step.py --threads 1 --iters 20 \
        --pair fashion_mnist --caps 1 2 10 \
        --teacher-ckpt results/fashion_mnist/teacher/resnet20_fashion_mnist.pth
"""
import argparse
import shlex
import sys

import torch

from amkd_plugin.apis.step_cost import (PAIRS, StepCostSettings,
                                        measure_step_cost)
from amkd_plugin.utils import tool_main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--pair', choices=list(PAIRS), default='cifar100')
    parser.add_argument('--teacher-ckpt',
                        help="the pair's trained teacher (default: random "
                        'weights)')
    parser.add_argument('--data-root', help="the pair's data, if not its "
                        "config's")
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--caps', type=int, nargs='+', default=[],
                        help='more first-order variants, at most this many '
                        'attack steps each')
    parser.add_argument('--threads', type=int,
                        help='torch threads (1 on a shared CPU)')
    parser.add_argument('--no-memory', action='store_true',
                        help='skip the peak memory (a process a variant)')
    return parser.parse_args()


@tool_main
def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cost = measure_step_cost(
        StepCostSettings(
            pair=args.pair, teacher_ckpt=args.teacher_ckpt,
            data_root=args.data_root, batch_size=args.batch_size,
            iters=args.iters, warmup=args.warmup, device=args.device,
            caps=tuple(args.caps)),
        memory=not args.no_memory)
    print(f'command: python {shlex.join(sys.argv)}')
    print(cost.table())


if __name__ == '__main__':
    main()
