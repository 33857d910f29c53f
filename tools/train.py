# Copyright (c) amkd-mmrazor contributors.
"""Train a model (teacher, student or distillation algorithm) from a config.

Example:
    python tools/train.py configs/teachers/resnet56_cifar100.py
"""
import argparse
import os

from mmengine.config import Config, DictAction
from mmengine.model import is_model_wrapper
from mmengine.registry import RUNNERS
from mmengine.runner import Runner, find_latest_checkpoint

from amkd_plugin.models.algorithms.model_loading import \
    check_model_checkpoint
from amkd_plugin.utils import set_work_dir, tool_main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
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
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. train_cfg.max_epochs=1 '
        '"optim_wrapper.optimizer.lr=0.1"')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply the command line on top of the config."""
    cfg.launcher = args.launcher
    set_work_dir(cfg, args.config, args.work_dir)
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


@tool_main
def main() -> None:
    args = parse_args()
    cfg = merge_args(Config.fromfile(args.config), args)
    runner = (
        RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg))
    check_start_checkpoint(runner, cfg, args.config)
    runner.train()


def check_start_checkpoint(runner: Runner, cfg: Config, config: str) -> None:
    """Stop with one line if the checkpoint to resume or start from is
    missing, unreadable, unsafe or of another model; MMEngine would show a
    traceback or, for ``load_from``, skip the keys that do not fit."""
    checkpoint = cfg.get('load_from')
    if cfg.get('resume') and checkpoint is None:
        checkpoint = find_latest_checkpoint(cfg.work_dir)
    if checkpoint:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        check_model_checkpoint(model, checkpoint, config)


if __name__ == '__main__':
    main()
