# Copyright (c) amkd-mmrazor contributors.
"""Train a model (teacher, student or distillation algorithm) from a config.

Example:
    python tools/train.py configs/teachers/resnet56_cifar100.py
"""
import argparse
import os
import sys

from mmengine.config import Config

from amkd_plugin.apis import check_model_checkpoint, resume_checkpoint
from amkd_plugin.utils import (add_run_arguments, build_runner,
                               lock_work_dir, parse_run_args, run_config,
                               tool_main, unwrap, use_amp)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        help='resume from this checkpoint; without a path, from the latest '
        'checkpoint in the work dir')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='enable automatic mixed precision training')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='do not evaluate checkpoints during training')
    add_run_arguments(
        parser, 'override config settings, e.g. train_cfg.max_epochs=1 '
        '"optim_wrapper.optimizer.lr=0.1"')
    return parse_run_args(parser)


def merge_args(args: argparse.Namespace) -> Config:
    """The config with the command line applied."""

    def apply(cfg: Config) -> None:
        if args.no_validate:
            cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
        if args.amp:
            use_amp(cfg)
        if args.resume == 'auto':
            cfg.resume, cfg.load_from = True, None
        elif args.resume is not None:
            cfg.resume, cfg.load_from = True, args.resume

    cfg = run_config(args, apply)
    # torchrun --max-restarts starts the group again after a rank died: it
    # goes on from the run's own newest checkpoint, if it made one.
    restarted = int(os.environ.get('TORCHELASTIC_RESTART_COUNT', 0)) > 0
    if restarted or (cfg.get('resume') and cfg.get('load_from') is None):
        latest = resume_checkpoint(cfg.work_dir,
                                   f'python tools/train.py {args.config}')
        if latest or not restarted:
            cfg.resume, cfg.load_from = True, latest
    return cfg


@tool_main
def main() -> None:
    args = parse_args()
    cfg = merge_args(args)
    # One training per work dir: its first process (rank 0) holds it.
    if int(os.environ.get('RANK', 0)) == 0:
        lock_work_dir(cfg.work_dir, ' '.join(sys.argv))
    runner = build_runner(cfg)
    if cfg.get('load_from'):
        # One line for a missing, unreadable, unsafe or other model's file:
        # MMEngine would show a traceback or, for load_from, skip the keys
        # that do not fit.
        check_model_checkpoint(unwrap(runner.model), cfg.load_from,
                               args.config)
    runner.train()


if __name__ == '__main__':
    main()
