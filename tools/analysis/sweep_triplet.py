# Copyright (c) amkd-mmrazor contributors.
"""Sweep the triplet margin and weight of AMKD on the embedded digits.

Trains the digits demo's AMKD student (``configs/amkd/
resnet20_resnet8_digits.py``) once per (margin, weight, seed) from one
teacher checkpoint, evaluates each with ``tools/test.py`` and prints a
table of held-out top-1 (mean and spread over seeds). This is how the
defaults in ``configs/_base_/distill/amkd.py`` were chosen; the table is
in ``docs/method.md``.

Example:
    python tools/train.py configs/teachers/resnet20_digits.py \
        --work-dir work_dirs/demo/teacher
    python tools/analysis/sweep_triplet.py \
        --teacher-ckpt work_dirs/demo/teacher/epoch_20.pth
"""
import argparse
import itertools
import os.path as osp
import statistics
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from demo import train_and_test  # noqa: E402  (tools/demo.py)

CONFIG = 'configs/amkd/resnet20_resnet8_digits.py'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--teacher-ckpt', required=True)
    parser.add_argument('--work-dir', default='work_dirs/sweep_triplet')
    parser.add_argument('--margins', type=float, nargs='+',
                        default=[0.1, 0.2, 0.5])
    parser.add_argument('--weights', type=float, nargs='+',
                        default=[0.5, 1.0, 2.0])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    parser.add_argument('--epochs', type=int, default=20)
    args = parser.parse_args()

    results = {}
    for margin, weight in itertools.product(args.margins, args.weights):
        top1 = []
        for seed in args.seeds:
            options = [
                f'model.teacher_ckpt={args.teacher_ckpt}',
                f'randomness.seed={seed}',
                f'model.distiller.distill_losses.loss_triplet.margin={margin}',
                'model.distiller.distill_losses.loss_triplet.loss_weight='
                f'{weight}',
            ]
            work_dir = osp.join(args.work_dir,
                                f'm{margin}_w{weight}_s{seed}')
            top1.append(
                train_and_test(CONFIG, work_dir, args.epochs, options)['top1'])
        results[margin, weight] = top1

    print(f'\nAMKD ResNet20 -> ResNet8 on digits, {args.epochs} epochs, '
          f'seeds {args.seeds}; held-out top-1 (%), mean +- std:\n')
    print('| margin | weight | top-1 |')
    print('|---|---|---|')
    for (margin, weight), top1 in results.items():
        spread = statistics.stdev(top1) if len(top1) > 1 else 0.
        print(f'| {margin} | {weight} | {statistics.mean(top1):.2f} '
              f'+- {spread:.2f} |')


if __name__ == '__main__':
    main()
