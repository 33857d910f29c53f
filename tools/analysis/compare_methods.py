# Copyright (c) amkd-mmrazor contributors.
"""Train KD, BSS and AMKD students over several seeds; tabulate the results.

For one teacher-student pair (configs ``configs/{kd,bss,amkd}/<pair>.py``
and the ``_bank`` variants), trains every (method, seed) into
``<work-dir>/<method>_s<seed>`` unless its last checkpoint is there, tests it
with ``tools/test.py --fidelity`` unless its metrics are there, and prints
one Markdown table: mean and spread over seeds of top-1, boundary agreement
at t = 0.5, 1, 1.5 and their mean, KL(teacher || student) at the boundary,
the teacher margin on the boundary samples used in training (relative to
their clean margin), followed by the commands. Every number comes from the
work dirs; nothing is typed by hand. Training cost is measured separately,
side by side, by tools/analysis/benchmark_bank.py.

Example (the digits table of docs/results.md):
    python tools/analysis/compare_methods.py --pair resnet20_resnet8_digits \
        --teacher-ckpt work_dirs/demo/teacher/epoch_20.pth \
        --work-dir work_dirs/compare_digits --seeds 0 1 2
"""
import argparse
import glob
import json
import os.path as osp
import statistics
import subprocess
import sys
from typing import Dict, List, Optional

# method -> (label, config path with {pair})
METHODS = {
    'kd': ('KD', 'configs/kd/{pair}.py'),
    'bss': ('BSS (AMKD, triplet weight 0)', 'configs/bss/{pair}.py'),
    'amkd': ('AMKD, online attack', 'configs/amkd/{pair}.py'),
    'amkd_bank': ('AMKD, boundary bank', 'configs/amkd/{pair}_bank.py'),
    'amkd_bank_top3': ('AMKD, bank of top-3 targets',
                       'configs/amkd/{pair}_bank_top3.py'),
}
COLUMNS = {
    'accuracy/top1': 'top-1 (%)',
    'fidelity/agree_t0.5': 'agree t=0.5 (%)',
    'fidelity/agree_t1.0': 'agree t=1 (%)',
    'fidelity/agree_t1.5': 'agree t=1.5 (%)',
    'fidelity/agree_mean': 'agree mean (%)',
    'fidelity/kl_t1.0': 'KL t=1',
    'margin_ratio': 'train margin ratio',
}


def run(command: List[str]) -> None:
    print('+', ' '.join(command), flush=True)
    subprocess.run([sys.executable, *command], check=True)


def margin_ratio(work_dir: str) -> Optional[float]:
    """Mean over epochs of the logged boundary/clean teacher margin."""
    ratios = []
    for path in sorted(glob.glob(osp.join(work_dir, '*/vis_data/scalars.json'))):
        with open(path) as f:
            ratios += [json.loads(line).get('boundary_margin_ratio')
                       for line in f]
    ratios = [r for r in ratios if r is not None]
    return statistics.mean(ratios) if ratios else None


def train_and_test(config: str, work_dir: str, epochs: int,
                   options: List[str]) -> Dict[str, float]:
    """Train (unless done) and test with boundary fidelity (unless done)."""
    checkpoint = osp.join(work_dir, f'epoch_{epochs}.pth')
    if not osp.isfile(checkpoint):
        run(['tools/train.py', config, '--work-dir', work_dir,
             '--cfg-options', f'train_cfg.max_epochs={epochs}', *options])
    out = osp.join(work_dir, 'test_fidelity.json')
    if not osp.isfile(out):
        run(['tools/test.py', config, checkpoint, '--work-dir', work_dir,
             '--fidelity', '--out', out, '--cfg-options', *options])
    with open(out) as f:
        metrics = json.load(f)
    metrics['margin_ratio'] = margin_ratio(work_dir)
    return metrics


def summary(values: List[Optional[float]]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return 'n/a'
    if len(values) == 1:
        return f'{values[0]:.2f}'
    return f'{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--pair', default='resnet20_resnet8_digits')
    parser.add_argument('--teacher-ckpt', required=True)
    parser.add_argument('--work-dir', default='work_dirs/compare_digits')
    parser.add_argument('--methods', nargs='+', default=list(METHODS),
                        choices=list(METHODS))
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--epochs', type=int, default=20)
    parser.add_argument('--out', help='also write the table to this file')
    args = parser.parse_args()

    rows, commands = [], []
    for method in args.methods:
        label, config = METHODS[method]
        config = config.format(pair=args.pair)
        results = []
        for seed in args.seeds:
            work_dir = osp.join(args.work_dir, f'{method}_s{seed}')
            options = [f'model.teacher_ckpt={args.teacher_ckpt}',
                       f'randomness.seed={seed}', f'model.attack.seed={seed}']
            results.append(train_and_test(config, work_dir, args.epochs,
                                          options))
            commands.append(
                f'python tools/train.py {config} --work-dir {work_dir} '
                f'--cfg-options train_cfg.max_epochs={args.epochs} '
                + ' '.join(options))
        rows.append([label] + [
            summary([r.get(key) for r in results]) for key in COLUMNS
        ])

    lines = [
        f'Pair `{args.pair}`, {args.epochs} epochs, seeds {args.seeds}; '
        'mean ± std over seeds. Test: `tools/test.py CONFIG CKPT '
        '--fidelity` (docs/method.md#boundary-fidelity).', '',
        '| method | ' + ' | '.join(COLUMNS.values()) + ' |',
        '|---' * (len(COLUMNS) + 1) + '|'
    ]
    lines += ['| ' + ' | '.join(row) + ' |' for row in rows]
    lines += ['', 'Commands (each followed by `tools/test.py CONFIG '
              'WORK_DIR/epoch_N.pth --fidelity` with the same options):', '']
    lines += [f'    {command}' for command in commands]
    table = '\n'.join(lines)
    print(table)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(table + '\n')


if __name__ == '__main__':
    main()
