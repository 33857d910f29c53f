# Copyright (c) amkd-mmrazor contributors.
"""Train methods over paired seeds, write one metrics file a run, tabulate.

For one teacher-student pair (``configs/amkd/<pair>.py`` and its
baselines; the methods are the entries of configs/experiments/methods.yml)
each (method, epochs, seed) is trained and tested through tools/train.py
and tools/test.py into ``<work-dir>/<method>_e<E>_s<seed>`` unless its
metrics file ``<results>/<method>/e<E>_s<seed>.json`` exists, then a table
(or, with --figure, the curve of top-1 against epochs) is built from the
metrics files alone (amkd_plugin.apis.compare). A method may name its own
lengths: ``kd@15,30,60`` (otherwise --epochs).

Example (the curve of docs/results.md, as scripts/benchmark_fashion_mnist.sh
runs it):
    python tools/analysis/compare_methods.py \
        --pair resnet20_resnet8_fashion_mnist_lowdata \
        --teacher-ckpt \
            results/fashion_mnist/teacher/resnet20_fashion_mnist.pth \
        --results results/fashion_mnist/lowdata \
        --fragments configs/experiments/schedule/cosine.py \
        --methods kd@15,30,60,120 amkd@60,120 --seeds 0 1 2 \
        --figure docs/figures/fashion_mnist_curve.png
"""
import argparse
import os.path as osp
import shlex
import sys

from amkd_plugin.apis.compare import (Benchmark, Run, parse_spec, report,
                                      retest, run_all, write_section)
from amkd_plugin.apis.references import references_section
from amkd_plugin.utils import tool_main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--pair', default='resnet20_resnet8_digits')
    parser.add_argument('--teacher-ckpt')
    parser.add_argument('--work-dir', default='work_dirs/compare_digits')
    parser.add_argument('--results', help='the folder of the metrics files '
                        '(default: WORK_DIR/metrics)')
    parser.add_argument('--methods', nargs='+', default=['kd', 'amkd'],
                        metavar='KEY[@E,E]')
    parser.add_argument('--baselines', nargs='+', default=['kd'],
                        metavar='KEY[@E]', help='the paired differences '
                        'are to these (default: kd at the longest length)')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--epochs', type=int, nargs='+', default=[20])
    parser.add_argument('--fragments', nargs='+', default=[],
                        help='fragments merged onto every method after its '
                        'own, e.g. configs/experiments/schedule/cosine.py')
    parser.add_argument('--fidelity-images', type=int,
                        help='measure boundary fidelity on the first N '
                        'held-out images only (tools/test.py)')
    parser.add_argument('--jobs', type=int, default=1,
                        help='trainings at once')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads of each training')
    parser.add_argument('--cfg-options', nargs='*', default=[],
                        help='more options for every run, key=value')
    parser.add_argument('--report-only', action='store_true',
                        help='train nothing: tabulate the metrics files')
    parser.add_argument('--retest', action='store_true',
                        help='train nothing: test again the runs whose '
                        'metrics file lacks a figure the test reports now '
                        'and whose work dir keeps the last checkpoint, add '
                        'the figures (top-1 must come out the same), then '
                        'tabulate')
    parser.add_argument('--figure', help='draw the curve of top-1 against '
                        'epochs here and tabulate it instead of the table')
    parser.add_argument('--brief', action='store_true',
                        help='only the method, seeds, top-1 and paired '
                        'columns (a headline table)')
    parser.add_argument('--out', help='also write the table to this file')
    parser.add_argument('--section', help='replace only this section of '
                        '--out (between <!-- section NAME --> and <!-- end '
                        'NAME --> lines)')
    parser.add_argument('--references', action='store_true',
                        help='write only the table of the 13 CIFAR-100 '
                        'pairs with their published references')
    args = parser.parse_args()
    command = 'python ' + shlex.join(sys.argv)
    if args.references:
        text = references_section(command)
    else:
        if not args.teacher_ckpt:
            parser.error('--teacher-ckpt is required to train the students')
        bench = Benchmark(
            args.pair, args.teacher_ckpt,
            args.results or f'{args.work_dir}/metrics', args.work_dir,
            args.fragments, args.cfg_options, args.fidelity_images,
            args.jobs, args.threads)
        rows = [r for spec in args.methods
                for r in parse_spec(spec, args.epochs)]
        # A curve has no baseline; a table's is KD at its longest length.
        longest = [max(e for _, e in rows)]
        baselines = [] if args.figure else [
            r for spec in args.baselines for r in parse_spec(spec, longest)]
        # Seed by seed, so the first seeds finish complete; longest first
        # within one, so the jobs end together.
        runs = list(dict.fromkeys(
            Run(k, e, s) for s in args.seeds
            for k, e in sorted([*rows, *baselines], key=lambda r: -r[1])))
        if args.retest:
            for run in runs:
                retest(bench, run)
        elif not args.report_only:
            run_all(bench, runs)
        text = report(bench, rows, args.seeds, baselines, command,
                      args.figure, osp.dirname(args.out or '') or '.',
                      args.brief)
    print(text)
    if args.out:
        write_section(text, args.out, args.section)


if __name__ == '__main__':
    tool_main(main)()
