# Copyright (c) amkd-mmrazor contributors.
"""One method's runs in several results folders, paired by seed.

The same configs trained at other commits (a bank format against the one
before it, say) keep their metrics files in folders of their own; this
tabulates them against the first folder's runs with the same seeds.

Example (the storage check of docs/bank.md):
    python tools/analysis/compare_folders.py \\
        results/fashion_mnist/lowdata results/fashion_mnist/lowdata_format4 \\
        results/fashion_mnist/lowdata_format5 \\
        --method amkd_no_ls@120 --seeds 0 1 2 3 4
"""
import argparse
import shlex
import sys

from amkd_plugin.apis.compare import folders_table, parse_spec, write_section
from amkd_plugin.utils import tool_main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('folders', nargs='+',
                        help='results folders; the first is the reference')
    parser.add_argument('--method', required=True, metavar='KEY@E')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--out', help='also write the table to this file')
    parser.add_argument('--section', help='replace only this section of '
                        '--out (between <!-- section NAME --> and <!-- end '
                        'NAME --> lines)')
    args = parser.parse_args()
    if '@' not in args.method:
        parser.error(f'--method takes KEY@EPOCHS, e.g. {args.method}@120')
    run, = parse_spec(args.method, [])
    text = '\n'.join([
        f'Written by `python {shlex.join(sys.argv)}`.', '',
        *folders_table(args.folders, run, args.seeds)])
    print(text)
    if args.out:
        write_section(text, args.out, args.section)


if __name__ == '__main__':
    tool_main(main)()
