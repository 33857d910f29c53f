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
import sys
from typing import List, Optional

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from demo import train_and_test  # noqa: E402  (tools/demo.py)

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

# Published CIFAR-100 top-1 (%) of the KD benchmark, never measured here:
# teacher, student, KD and CRD from Tian et al., ICLR 2020 (CRD), Table 1;
# DKD from Zhao et al., CVPR 2022 (mdistiller README); MLKD (Jin et al.,
# CVPR 2023) and KD + logit standardization from Sun et al., CVPR 2024
# (logit-standardization-KD README).
REFERENCE_COLUMNS = ('teacher', 'student', 'KD', 'CRD', 'DKD', 'MLKD',
                     'KD+LS')
REFERENCES = {
    'resnet56_resnet20_cifar100':
    (72.34, 69.06, 70.66, 71.16, 71.97, 72.19, 71.43),
    'resnet110_resnet32_cifar100':
    (74.31, 71.14, 73.08, 73.48, 74.11, 74.11, 74.17),
    'resnet32x4_resnet8x4_cifar100':
    (79.42, 72.50, 73.33, 75.51, 76.32, 77.08, 76.62),
    'wrn_40_2_wrn_16_2_cifar100':
    (75.61, 73.26, 74.92, 75.48, 76.23, 76.63, 76.11),
}


def references_table() -> List[str]:
    """The CIFAR-100 pairs: our command, and published numbers apart."""
    lines = [
        'CIFAR-100 pairs. Nothing here is measured by this project yet (240 '
        'epochs per run need a GPU); the published numbers of the KD '
        'benchmark are references only: teacher, student, KD, CRD (Tian et '
        'al., ICLR 2020, Table 1), DKD (Zhao et al., CVPR 2022), MLKD (Jin '
        'et al., CVPR 2023), KD+LS (logit standardization, Sun et al., CVPR '
        '2024).', '',
        '| pair | measured here: AMKD top-1 | ' +
        ' | '.join(f'reference: {c}' for c in REFERENCE_COLUMNS) + ' |',
        '|---' * (len(REFERENCE_COLUMNS) + 2) + '|'
    ]
    for pair, numbers in REFERENCES.items():
        lines.append(f'| `configs/amkd/{pair}.py` | not run | ' +
                     ' | '.join(f'{n:.2f}' for n in numbers) + ' |')
    return lines


def margin_ratio(work_dir: str) -> Optional[float]:
    """Mean over epochs of the logged boundary/clean teacher margin."""
    ratios = []
    for path in sorted(glob.glob(osp.join(work_dir, '*/vis_data/scalars.json'))):
        with open(path) as f:
            ratios += [json.loads(line).get('boundary_margin_ratio')
                       for line in f]
    ratios = [r for r in ratios if r is not None]
    return statistics.mean(ratios) if ratios else None


def bank_report(work_dir: str) -> Optional[str]:
    """The bank builder's rounding report from a run's log, if it built one."""
    for path in sorted(glob.glob(osp.join(work_dir, '*/*.log'))):
        with open(path) as f:
            for line in f:
                if 'after rounding to uint8' in line:
                    return line[line.index('Boundary bank:'):].strip()
    return None


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

    rows, commands, reports = [], [], []
    for method in args.methods:
        label, config = METHODS[method]
        config = config.format(pair=args.pair)
        results = []
        for seed in args.seeds:
            work_dir = osp.join(args.work_dir, f'{method}_s{seed}')
            options = [f'model.teacher_ckpt={args.teacher_ckpt}',
                       f'randomness.seed={seed}', f'model.attack.seed={seed}']
            metrics = train_and_test(config, work_dir, args.epochs,
                                     options, reuse=True, fidelity=True)
            metrics['margin_ratio'] = margin_ratio(work_dir)
            results.append(metrics)
            commands.append(metrics['command'])
            report = bank_report(work_dir)
            if report:
                reports.append(f'- `{work_dir}`: {report}')
        rows.append([label] + [
            summary([r.get(key) for r in results]) for key in COLUMNS
        ])

    lines = [
        '# Results', '',
        'Written by `python ' + ' '.join(sys.argv) + '` from the work dirs '
        '(docs/method.md explains the columns).', '',
        f'Pair `{args.pair}`, {args.epochs} epochs, seeds {args.seeds}; '
        'mean ± std over seeds. Test: `tools/test.py CONFIG CKPT '
        '--fidelity` (docs/method.md#boundary-fidelity).', '',
        '| method | ' + ' | '.join(COLUMNS.values()) + ' |',
        '|---' * (len(COLUMNS) + 1) + '|'
    ]
    lines += ['| ' + ' | '.join(row) + ' |' for row in rows]
    lines += [
        '', 'Train margin ratio: the teacher\'s margin z_b - z_k on the '
        'boundary samples used in training over that on their clean images, '
        'mean over the epochs with boundary samples (0 at the boundary, 1 '
        'for an unmoved image; logged by AdversarialBoundaryHook).'
    ]
    if reports:
        lines += ['', 'Bank builds, as logged:', '', *reports]
    lines += ['', 'Commands (each followed by `tools/test.py CONFIG '
              'WORK_DIR/epoch_N.pth --fidelity` with the same options):', '']
    lines += [f'    {command}' for command in commands]
    lines += ['', *references_table()]
    table = '\n'.join(lines)
    print(table)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(table + '\n')


if __name__ == '__main__':
    main()
