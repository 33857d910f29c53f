# Copyright (c) amkd-mmrazor contributors.
"""Draw boundary samples and how teacher and student follow the boundary.

One row per held-out image the teacher gets right: the image, its boundary
sample toward the teacher's runner-up class, the perturbation, and both
models' probabilities along the path through the boundary
(amkd_plugin.apis.pictures says how).

Example:
    python tools/analysis/boundary_pictures.py \\
        configs/amkd/resnet20_resnet8_digits.py \\
        work_dirs/demo/amkd/epoch_20.pth --out boundary.png \\
        --cfg-options model.teacher_ckpt=work_dirs/demo/teacher/epoch_20.pth
"""
import argparse

import torch
from mmengine.config import DictAction

from amkd_plugin.apis.pictures import (FIG_WIDTH, ROW_HEIGHT,
                                       draw_boundary_pictures, path_summary)
from amkd_plugin.utils import tool_main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Draw boundary samples of held-out images and the '
        'teacher and student probabilities across the teacher\'s boundary')
    parser.add_argument('config', help='distillation or classifier config')
    parser.add_argument('checkpoint', help='its checkpoint')
    parser.add_argument(
        '--teacher',
        nargs=2,
        metavar=('CONFIG', 'CHECKPOINT'),
        help='the teacher (required for a classifier config; replaces the '
        'teacher of a distillation config)')
    parser.add_argument(
        '--num-images', type=int, default=4, help='rows to draw')
    parser.add_argument('--out', default='boundary.png', help='output PNG')
    parser.add_argument(
        '--split',
        choices=['test', 'val'],
        default='test',
        help='take the images from test_dataloader or val_dataloader')
    parser.add_argument(
        '--max-steps',
        type=int,
        default=30,
        help='attack steps (BoundaryFidelity default: 30)')
    parser.add_argument(
        '--step-size',
        type=float,
        default=0.3,
        help='attack step size (BoundaryFidelity default: 0.3)')
    parser.add_argument(
        '--points',
        type=int,
        default=41,
        help='points of t in [0, 2] (t = 1 is always one of them)')
    parser.add_argument(
        '--dpi',
        type=int,
        default=100,
        help=f'PNG resolution: {FIG_WIDTH:g} x {ROW_HEIGHT:g} inches per row')
    parser.add_argument(
        '--bgr',
        action='store_true',
        help='the model\'s input channels are BGR (a to_rgb=False pipeline '
        'that decodes image files); by default they are shown as RGB')
    parser.add_argument(
        '--device',
        default='cuda' if torch.cuda.is_available() else 'cpu',
        help='device to run the models on')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. '
        'model.teacher_ckpt=work_dirs/teacher/epoch_20.pth')
    return parser.parse_args()


@tool_main
def main() -> None:
    args = parse_args()
    paths, (width, height) = draw_boundary_pictures(
        args.config, args.checkpoint, args.out, args.teacher,
        args.num_images, args.split, args.max_steps, args.step_size,
        args.points, args.dpi, args.bgr, args.device, args.cfg_options)
    if len(paths) < args.num_images:
        print(f'Only {len(paths)} of the {args.num_images} images asked for '
              'reached the boundary; drawing those.')
    for path in paths:
        print(path_summary(path))
    print(f'Wrote {args.out} ({width}x{height} px)')


if __name__ == '__main__':
    main()
