# Copyright (c) amkd-mmrazor contributors.
"""Evaluate a checkpoint and print its metrics.

Example:
    python tools/test.py configs/amkd/resnet56_resnet20_cifar100.py \
        work_dirs/resnet56_resnet20_cifar100/epoch_240.pth
"""
import argparse
from typing import List, Optional

from mmengine.config import Config

from amkd_plugin.apis import load_model_checkpoint
from amkd_plugin.utils import (add_run_arguments, build_runner,
                               format_metrics, parse_run_args, run_config,
                               tool_main, unwrap)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Evaluate a checkpoint')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out', help='dump the metrics to this file (.json, .yaml or .pkl)')
    parser.add_argument(
        '--fidelity',
        action='store_true',
        help='also report boundary fidelity (student vs teacher around the '
        "teacher's decision boundary); a distillation config gives both "
        'models, a classifier config needs --teacher')
    parser.add_argument(
        '--teacher',
        nargs=2,
        metavar=('CONFIG', 'CHECKPOINT'),
        help='the teacher to measure boundary fidelity against (implies '
        '--fidelity)')
    parser.add_argument(
        '--fidelity-images',
        type=int,
        metavar='N',
        help='measure boundary fidelity on the first N held-out images only '
        '(implies --fidelity)')
    add_run_arguments(
        parser,
        'override config settings, e.g. test_dataloader.batch_size=256')
    return parse_run_args(parser)


def add_fidelity_hook(cfg: Config, teacher: Optional[List[str]],
                      max_images: Optional[int]) -> None:
    """Switch on boundary fidelity, keeping a configured hook's settings."""
    hooks = [hook for hook in cfg.custom_hooks
             if hook['type'].split('.')[-1] == 'BoundaryFidelityHook']
    if not hooks:
        hooks = [dict(type='mmrazor.BoundaryFidelityHook')]
        cfg.custom_hooks.append(hooks[0])
    if teacher:
        hooks[0]['teacher'] = dict(config=teacher[0], checkpoint=teacher[1])
    if max_images:
        hooks[0]['max_images'] = max_images


@tool_main
def main() -> None:
    args = parse_args()
    cfg = run_config(args)
    # Loaded below, strictly: MMEngine's own load_from skips keys that do
    # not fit and would evaluate a half-random model.
    cfg.load_from = None
    cfg.custom_hooks = [
        *cfg.get('custom_hooks', []), dict(type='ProgressBarHook')]
    if args.fidelity or args.teacher or args.fidelity_images:
        add_fidelity_hook(cfg, args.teacher, args.fidelity_images)

    runner = build_runner(cfg)
    load_model_checkpoint(unwrap(runner.model), args.checkpoint, args.config)
    runner.logger.info(f'Load checkpoint from {args.checkpoint} (strict)')
    metrics = runner.test()
    if runner.rank == 0:
        print(format_metrics(metrics))
        if args.out:
            from mmengine.fileio import dump
            dump(metrics, args.out)


if __name__ == '__main__':
    main()
