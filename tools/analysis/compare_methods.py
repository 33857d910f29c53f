# Copyright (c) amkd-mmrazor contributors.
"""Train KD, BSS and AMKD students over several seeds; tabulate the results.

For one teacher-student pair (``configs/amkd/<pair>.py`` and the
baselines ``configs/{students,kd,dkd,bss}/<pair>*.py``; a method of a
study is the pair with fragments of ``configs/experiments`` merged onto
it, see ``METHODS``), trains every (method,
seed) into ``<work-dir>/<method>_s<seed>`` unless its last checkpoint is
there, tests it with ``tools/test.py --fidelity`` (a student alone without)
unless its metrics are there, and prints one Markdown table: mean and
spread over seeds of top-1, its paired difference to KD (each seed's top-1
minus KD's with the same seed) and that mean over its standard error (the
paired t statistic), boundary agreement at t = 0.5, 1, 1.5 and their mean,
KL(teacher || student) at the boundary, the teacher margin on the boundary
samples used in training (relative to their clean margin), the teacher
passes spent per boundary sample in training, and the whole run's wall
time (bank build included) relative to KD's; then the commands. Every
number comes from the work dirs; nothing is typed by hand.

``--jobs`` trainings run at once, each with ``--threads`` torch threads;
the time ratios compare runs made under the same load, so run every
method of a table in one call (a reused run keeps the time it was
measured with).

Example (the Fashion-MNIST table of docs/results.md, as
``scripts/benchmark_fashion_mnist.sh`` runs it):
    python tools/analysis/compare_methods.py \
        --pair resnet20_resnet8_fashion_mnist_lowdata \
        --teacher-ckpt work_dirs/resnet20_fashion_mnist/epoch_6.pth \
        --work-dir work_dirs/fmnist/resnet20_resnet8_fashion_mnist_lowdata \
        --epochs 15 --seeds 0 1 2 3 4 --jobs 2 --fidelity-images 500 \
        --methods student kd kd_ls dkd bss amkd amkd_no_ls

The digits table:
    python tools/analysis/compare_methods.py --pair resnet20_resnet8_digits \
        --teacher-ckpt work_dirs/demo/teacher/epoch_20.pth \
        --work-dir work_dirs/compare_digits --seeds 0 1 2 3 4 --jobs 2
"""
import argparse
import glob
import itertools
import json
import math
import os
import os.path as osp
import platform
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional


from amkd_plugin.apis import train_and_test
from amkd_plugin.utils.fragments import merge_fragments

PAIR = 'configs/amkd/{pair}.py'
NO_LS = 'logits/no_ls'


def _amkd(label: str, *fragments: str) -> tuple:
    """An AMKD method: the pair with ``configs/experiments`` fragments."""
    return (label, PAIR,
            [f'configs/experiments/{name}.py' for name in fragments])


# method -> (label, config path with {pair}, fragments merged onto it).
# "no LS": KD on the raw logits (experiments/logits/no_ls.py) instead of
# the default's standardized ones.
METHODS = {
    'student': ('Student alone', 'configs/students/{pair}.py', []),
    'kd': ('KD', 'configs/kd/{pair}.py', []),
    'kd_ls': ('KD + LS', 'configs/kd/{pair}_ls.py', []),
    'bss': ('BSS (online, BSS step, no triplet term)',
            'configs/bss/{pair}.py', []),
    'amkd': _amkd('AMKD (default): bank, first-order step, samples as '
                  'banked, LS'),
    'dkd': ('DKD', 'configs/dkd/{pair}.py', []),
    'amkd_no_triplet': _amkd('AMKD without the triplet term',
                             'metric/no_triplet'),
    'amkd_online_newton': _amkd('AMKD, online attack, first-order step',
                                'sources/online_newton'),
    'amkd_ratio1': _amkd('AMKD, a boundary sample for every image both get '
                         'right', 'sources/ratio1'),
    'amkd_bank_top3': _amkd('AMKD, bank of top-3 targets', 'sources/top3'),
    # Without logit standardization: the ways of making boundary samples
    # (issue 9) and the forms of the metric term (issue 12).
    'amkd_no_ls': _amkd('AMKD, no LS: bank, first-order step, samples as '
                        'banked', NO_LS),
    'amkd_no_ls_online': _amkd('AMKD, no LS, online attack, BSS step', NO_LS,
                               'sources/online_bss'),
    'amkd_no_ls_online_newton': _amkd(
        'AMKD, no LS, online attack, first-order step', NO_LS,
        'sources/online_newton'),
    'amkd_no_ls_bank_bss': _amkd(
        'AMKD, no LS, bank, BSS step, samples as banked', NO_LS,
        'sources/bank_bss'),
    'amkd_no_ls_bank_bss_crop': _amkd(
        'AMKD, no LS, bank, BSS step, cropped with the batch', NO_LS,
        'sources/bank_bss', 'sources/bank_crop'),
    'amkd_no_ls_bank_bss_crop_refine1': _amkd(
        'AMKD, no LS, bank, BSS step, cropped, then 1 first-order step',
        NO_LS, 'sources/bank_bss', 'sources/bank_crop', 'sources/refine1'),
    'amkd_no_ls_bank_bss_crop_refine2': _amkd(
        'AMKD, no LS, bank, BSS step, cropped, then <= 2 first-order steps',
        NO_LS, 'sources/bank_bss', 'sources/bank_crop', 'sources/refine1',
        'sources/refine2'),
    'amkd_no_ls_feat': _amkd('AMKD, no LS, triplet on pooled features',
                             NO_LS, 'metric/features'),
    'amkd_no_ls_feat_logits': _amkd(
        'AMKD, no LS, triplet on features and logits', NO_LS,
        'metric/features_and_logits'),
    'amkd_no_ls_neg_boundary': _amkd(
        'AMKD, no LS, negatives: boundary samples of other pairs', NO_LS,
        'metric/boundary_negatives'),
    'amkd_no_ls_neg_centroids': _amkd(
        'AMKD, no LS, negatives: class centroids', NO_LS,
        'metric/centroid_negatives'),
    'amkd_no_ls_relmargin': _amkd(
        'AMKD, no LS, relative margin, L2-normalised', NO_LS,
        'metric/relative_margin'),
    'amkd_no_ls_relmargin_raw': _amkd(
        'AMKD, no LS, relative margin, raw logits', NO_LS,
        'metric/relative_margin_raw'),
    'amkd_no_ls_clean': _amkd('AMKD, no LS, triplet also on clean images',
                              NO_LS, 'metric/also_clean'),
    'amkd_no_ls_no_triplet': _amkd('AMKD, no LS, without the triplet term',
                                   NO_LS, 'metric/no_triplet'),
    'amkd_no_ls_ratio1': _amkd('AMKD, no LS, a boundary sample for every '
                               'image both get right', NO_LS,
                               'sources/ratio1'),
    'amkd_no_ls_w025': _amkd('AMKD, no LS, boundary losses at weight 0.25',
                             NO_LS, 'schedule/weight_025'),
    'amkd_no_ls_top3': _amkd('AMKD, no LS, bank of the 3 runner-up classes, '
                             'one drawn per image and epoch', NO_LS,
                             'sources/top3'),
}
COLUMNS = {
    'accuracy/top1': 'top-1 (%)',
    'delta_kd': 'top-1 - KD, paired (points)',
    't_kd': 't (paired, vs KD)',
    'fidelity/agree_t0.5': 'agree t=0.5 (%)',
    'fidelity/agree_t1.0': 'agree t=1 (%)',
    'fidelity/agree_t1.5': 'agree t=1.5 (%)',
    'fidelity/agree_mean': 'agree mean (%)',
    'fidelity/kl_t1.0': 'KL t=1',
    'margin_ratio': 'train margin ratio',
    'passes': 'teacher passes per boundary sample',
    'cost': 'train time vs KD',
}

# Published CIFAR-100 top-1 (%) of the KD benchmark, never measured here
# (None: not in the sources read). Sources:
# - teacher, student, KD, CRD: Tian et al., ICLR 2020 (CRD), Tables 1-2, as
#   reprinted in github HobbitLong/RepDistiller README.md;
# - DKD: Zhao et al., CVPR 2022, github megvii-research/mdistiller README.md
#   (its column "ResNet32x4 -> MobileNet-V2" is ShuffleNet-V2, as in the
#   other sources); resnet110 -> resnet20 from the logit-standardization
#   README only;
# - MLKD (Jin et al., CVPR 2023) and KD+LS (Sun et al., CVPR 2024): github
#   sunshangquan/logit-standardization-KD README.md.
REFERENCE_COLUMNS = ('teacher', 'student', 'KD', 'CRD', 'DKD', 'MLKD',
                     'KD+LS')
REFERENCES = {
    'resnet56_resnet20': (72.34, 69.06, 70.66, 71.16, 71.97, 72.19, 71.43),
    'resnet110_resnet20': (74.31, 69.06, 70.67, 71.46, 71.06, 71.89, 71.48),
    'resnet110_resnet32': (74.31, 71.14, 73.08, 73.48, 74.11, 74.11, 74.17),
    'resnet32x4_resnet8x4': (79.42, 72.50, 73.33, 75.51, 76.32, 77.08,
                             76.62),
    'wrn_40_2_wrn_16_2': (75.61, 73.26, 74.92, 75.48, 76.23, 76.63, 76.11),
    'wrn_40_2_wrn_40_1': (75.61, 71.98, 73.54, 74.14, 74.81, 75.35, 74.37),
    'vgg13_vgg8': (74.64, 70.36, 72.98, 73.94, 74.68, 75.18, 74.36),
    'vgg13_mobilenetv2': (74.64, 64.60, 67.37, 69.73, 69.71, 70.57, 68.61),
    'resnet50_mobilenetv2': (79.34, 64.60, 67.35, 69.11, 70.35, 71.04,
                             69.02),
    'resnet50_vgg8': (79.34, 70.36, 73.81, 74.30, None, None, None),
    'resnet32x4_shufflenetv1': (79.42, 70.50, 74.07, 75.11, 76.45, None,
                                None),
    'resnet32x4_shufflenetv2': (79.42, 71.82, 74.45, 75.65, 77.07, 78.44,
                                75.56),
    'wrn_40_2_shufflenetv1': (75.61, 70.50, 74.83, 76.05, 76.70, None,
                              None),
}
REFERENCE_SOURCES = (
    'Teacher, student, KD and CRD: Tian et al., ICLR 2020, Tables 1-2 (as '
    'reprinted in the README of github.com/HobbitLong/RepDistiller). DKD: '
    'Zhao et al., CVPR 2022 (README of github.com/megvii-research/'
    'mdistiller, whose column "ResNet32x4 -> MobileNet-V2" is ShuffleNet-V2 '
    'as in the other sources; resnet110 -> resnet20 and wrn_40_2 -> '
    'wrn_16_2 differ: 71.06 from the next source only, 76.23 there and '
    '76.24 in the next). MLKD (Jin et al., CVPR 2023) and KD+LS (Sun et '
    'al., CVPR 2024): README of github.com/sunshangquan/'
    'logit-standardization-KD. "-": not in these sources.')


def references_table() -> List[str]:
    """The 13 CIFAR-100 pairs: our config, and published numbers apart."""
    lines = [
        'Nothing in this table is measured by this project yet (240 epochs '
        'per run need a GPU): the columns are published references, each '
        'from the source named below. `python tools/train.py '
        'configs/amkd/PAIR_cifar100.py --cfg-options '
        'model.teacher_ckpt=download_ckpts/cifar_teachers/'
        '<arch>_vanilla/ckpt_epoch_240.pth` trains the pair from the '
        'benchmark\'s released teacher (docs/method.md, "The benchmark\'s '
        'released teachers").', '',
        '| config | measured here | ' +
        ' | '.join(f'reference: {c}' for c in REFERENCE_COLUMNS) + ' |',
        '|---' * (len(REFERENCE_COLUMNS) + 2) + '|'
    ]
    for pair, numbers in REFERENCES.items():
        cells = ['-' if n is None else f'{n:.2f}' for n in numbers]
        lines.append(f'| `configs/amkd/{pair}_cifar100.py` | not run | ' +
                     ' | '.join(cells) + ' |')
    return [*lines, '', f'Sources: {REFERENCE_SOURCES}']


def epoch_mean(work_dir: str, key: str) -> Optional[float]:
    """Mean over epochs of a scalar the boundary hook logs per epoch."""
    values = []
    for path in sorted(glob.glob(osp.join(work_dir, '*/vis_data/scalars.json'))):
        with open(path) as f:
            values += [json.loads(line).get(key) for line in f]
    values = [v for v in values if v is not None]
    return statistics.mean(values) if values else None


def machine() -> str:
    """The CPU model, for the table's header (timings depend on it)."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def bank_report(work_dir: str) -> Optional[str]:
    """The bank builder's storage report from a run's log, if it built one."""
    for path in sorted(glob.glob(osp.join(work_dir, '*/*.log'))):
        with open(path) as f:
            for line in f:
                if 'Boundary bank:' in line and 'reached the boundary' in line:
                    return line[line.index('Boundary bank:'):].strip()
    return None


def summary(values: List[Optional[float]]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return 'n/a'
    if len(values) == 1:
        return f'{values[0]:.2f}'
    return f'{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}'


def paired_t(differences: List[Optional[float]]) -> Optional[float]:
    """The paired t statistic of per-seed differences (mean / std error)."""
    values = [d for d in differences if d is not None]
    if len(values) < 2:
        return None
    spread = statistics.stdev(values)
    mean = statistics.mean(values)
    if spread == 0:
        return None if mean == 0 else math.copysign(math.inf, mean)
    return mean / (spread / math.sqrt(len(values)))


def run_all(args: argparse.Namespace) -> dict:
    """Train and test every (method, seed); their metrics by that key.

    Seeds run in the outer loop, so that the first finished seeds have
    every method, trained under the same load.
    """
    os.environ['OMP_NUM_THREADS'] = str(args.threads)

    def one(method_and_seed) -> dict:
        method, seed = method_and_seed
        work_dir = osp.join(args.work_dir, f'{method}_s{seed}')
        _, config, fragments = METHODS[method]
        config = config.format(pair=args.pair)
        model = merge_fragments(config, fragments).model
        # A student alone has no teacher; stock MMRazor KD has no attack.
        # A bank is built once for the teacher, shared by the seeds: its
        # key names the attack's seed.
        distilled = 'teacher_ckpt' in model
        online = model.get('boundary', {}).get('type') == 'OnlineBoundary'
        options = [
            *([f'model.teacher_ckpt={args.teacher_ckpt}'] if distilled
              else []), f'randomness.seed={seed}',
            *([f'model.boundary.attack.seed={seed}'] if online else []),
            *args.cfg_options
        ]
        test_args = ([f'--fidelity-images={args.fidelity_images}']
                     if distilled and args.fidelity_images else [])
        metrics = train_and_test(
            config, work_dir, args.epochs, options, reuse=True,
            fidelity=distilled, test_args=test_args, fragments=fragments)
        metrics['margin_ratio'] = epoch_mean(work_dir, 'boundary_margin_ratio')
        metrics['passes'] = epoch_mean(work_dir, 'boundary_passes')
        metrics['bank_report'] = bank_report(work_dir)
        return metrics

    runs = [(m, s) for s, m in itertools.product(args.seeds, args.methods)]
    with ThreadPoolExecutor(args.jobs) as pool:
        return dict(zip(runs, pool.map(one, runs)))


def write(text: str, path: str, section: Optional[str]) -> None:
    """Write ``text`` to ``path``, or replace its ``section`` there.

    A section sits between ``<!-- section NAME -->`` and
    ``<!-- end NAME -->`` lines; a new one is appended.
    """
    if section is None:
        with open(path, 'w') as f:
            f.write(text + '\n')
        return
    begin, end = f'<!-- section {section} -->', f'<!-- end {section} -->'
    old = open(path).read() if osp.isfile(path) else ''
    block = f'{begin}\n{text}\n{end}'
    if begin in old and end in old:
        new = old[:old.index(begin)] + block + old[old.index(end) + len(end):]
    else:
        new = (old.rstrip('\n') + '\n\n' if old else '') + block + '\n'
    with open(path, 'w') as f:
        f.write(new)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--pair', default='resnet20_resnet8_digits')
    parser.add_argument('--teacher-ckpt')
    parser.add_argument('--work-dir', default='work_dirs/compare_digits')
    parser.add_argument('--methods', nargs='+', default=list(METHODS),
                        choices=list(METHODS))
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--epochs', type=int, default=20)
    parser.add_argument('--fidelity-images', type=int,
                        help='measure boundary fidelity on the first N '
                        'held-out images only (tools/test.py)')
    parser.add_argument('--jobs', type=int, default=1,
                        help='trainings at once')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads of each training')
    parser.add_argument('--cfg-options', nargs='*', default=[],
                        help='more options for every run, key=value')
    parser.add_argument('--out', help='also write the table to this file')
    parser.add_argument('--section', help='replace only this section of '
                        '--out (see write())')
    parser.add_argument('--references', action='store_true',
                        help='write only the table of the 13 CIFAR-100 '
                        'pairs with their published references')
    args = parser.parse_args()
    if args.references:
        table = '\n'.join([
            'Written by `python ' + ' '.join(sys.argv) + '`.', '',
            *references_table()
        ])
        print(table)
        if args.out:
            write(table, args.out, args.section)
        return
    if not args.teacher_ckpt:
        parser.error('--teacher-ckpt is required to train the students')

    results = run_all(args)
    kd = {seed: results[('kd', seed)] for seed in args.seeds
          if ('kd', seed) in results}
    rows, commands, reports = [], [], []
    for method in args.methods:
        per_seed = [results[(method, seed)] for seed in args.seeds]
        banks = sorted({m['bank_report'] for m in per_seed
                        if m['bank_report']})
        reports += [f'- {METHODS[method][0]} ({len(per_seed)} runs, '
                    f'`{args.work_dir}/{method}_s*`): {report}'
                    for report in banks]
        for seed, metrics in zip(args.seeds, per_seed):
            commands.append(metrics['command'])
            base = kd.get(seed)
            metrics['cost'] = (
                metrics['train_seconds'] / base['train_seconds']
                if base and base['train_seconds']
                and metrics['train_seconds'] else None)
            metrics['delta_kd'] = (
                metrics['accuracy/top1'] - base['accuracy/top1']
                if base and method != 'kd' else None)
        t = paired_t([m['delta_kd'] for m in per_seed])
        rows.append([METHODS[method][0]] + [
            ('-' if t is None else f'{t:.2f}') if key == 't_kd' else
            summary([r.get(key) for r in per_seed]) for key in COLUMNS
        ])

    lines = [
        'Written by `python ' + ' '.join(sys.argv) + '` from the work dirs '
        '(docs/method.md explains the columns).', '',
        f'Pair `{args.pair}`, {args.epochs} epochs, seeds {args.seeds}; '
        'mean ± std over seeds. Test: `tools/test.py CONFIG CKPT '
        '--fidelity` (docs/method.md#boundary-fidelity). Trained '
        f'{args.jobs} at a time with {args.threads} torch thread(s) each on '
        f'{machine()} ({os.cpu_count()} logical CPUs).', '',
        '| method | ' + ' | '.join(COLUMNS.values()) + ' |',
        '|---' * (len(COLUMNS) + 1) + '|'
    ]
    lines += ['| ' + ' | '.join(row) + ' |' for row in rows]
    lines += [
        '', 'Train margin ratio: the teacher\'s margin z_b - z_k on the '
        'boundary samples used in training over that on their clean images, '
        'mean over the epochs with boundary samples (0 at the boundary, 1 '
        'for an unmoved image; logged by AdversarialBoundaryHook). Teacher '
        'passes: attack steps (teacher forward and input-gradient passes) '
        'per boundary sample in training, mean over those epochs. Train '
        'time vs KD: the training command\'s wall time (bank build '
        'included) over that of KD with the same seed. top-1 - KD: the '
        'mean ± std over seeds of each seed\'s top-1 minus KD\'s with the '
        'same seed; t: that mean over its standard error. With 5 seeds, |t| '
        '>= 2.78 is a difference beyond the seed noise (paired t-test, p < '
        '0.05); below it, the difference is inside the noise.'
    ]
    if reports:
        lines += ['', 'Bank builds, as logged (the same bank for every seed '
                  'where one line stands for several runs):', '', *reports]
    lines += ['', 'Commands (each followed by `tools/test.py CONFIG '
              'WORK_DIR/epoch_N.pth --fidelity` with the same options):', '']
    lines += [f'    {command}' for command in commands]
    table = '\n'.join(lines)
    print(table)
    if args.out:
        write(table, args.out, args.section)


if __name__ == '__main__':
    main()
