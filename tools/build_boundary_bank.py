# Copyright (c) amkd-mmrazor contributors.
"""Build the boundary bank of an AMKD config ahead of training.

Training builds the bank itself before its first epoch when none exists;
this tool does that step alone, e.g. on a GPU machine before a long run,
or over several processes. The bank lands where training looks for it,
``<work_dir>/boundary_bank/<key>`` (the key hashes the teacher's weights,
the training set and the bank settings), so a later ``tools/train.py`` with
the same config, work dir and ``--cfg-options`` reuses it. A bank that
already exists is reused, not rebuilt. The tool prints the bank's folder.

Example:
    python tools/build_boundary_bank.py \
        configs/amkd/resnet56_resnet20_cifar100.py
    python tools/train.py configs/amkd/resnet56_resnet20_cifar100.py
    # over 2 processes (torchrun):
    bash tools/dist_run.sh 2 build_boundary_bank.py \
        configs/amkd/resnet56_resnet20_cifar100.py --launcher pytorch
"""
import argparse
import os.path as osp

from mmengine.dist import get_rank

from amkd_plugin.bank import build_boundary_bank
from amkd_plugin.utils import (UserInputError, add_run_arguments,
                               build_runner, parse_run_args, run_config,
                               tool_main)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Build the boundary bank of an AMKD config')
    parser.add_argument('config', help='an AMKD training config with a bank')
    add_run_arguments(
        parser, 'override config settings as for tools/train.py; give '
        'training the same ones, or it looks for another bank')
    return parse_run_args(parser)


@tool_main
def main() -> None:
    args = parse_args()
    cfg = run_config(args)
    source = cfg.get('model', {}).get('boundary', {}).get('type')
    if source != 'BankedBoundary':
        raise UserInputError(
            f'{args.config} takes no boundary bank (model.boundary.type is '
            f'{source!r}): use an AMKD config with '
            "model.boundary.type='BankedBoundary', e.g. "
            'configs/amkd/resnet56_resnet20_cifar100.py.')
    path = build_boundary_bank(build_runner(cfg))
    if get_rank() == 0:
        print(f'Boundary bank: {osp.abspath(path)}', flush=True)


if __name__ == '__main__':
    main()
