# Copyright (c) amkd-mmrazor contributors.
"""Convert a teacher checkpoint of the CIFAR-100 KD benchmark for MMPretrain.

RepDistiller's (and mdistiller's) released ``<arch>_vanilla/
ckpt_epoch_240.pth`` work as they are as ``model.teacher_ckpt``. The other
tools (``tools/test.py``, ``--fidelity --teacher``, the boundary pictures)
take MMPretrain checkpoints; this writes one: the classifier of CONFIG with
the released weights loaded strictly and weights-only, saved as
``{'meta': ..., 'state_dict': ...}`` (tensors and plain values only).

Example:
    python tools/convert_teacher.py \\
        download_ckpts/cifar_teachers/resnet56_vanilla/ckpt_epoch_240.pth \\
        work_dirs/resnet56_cifar100/released.pth \\
        configs/teachers/resnet56_cifar100.py
    python tools/test.py configs/teachers/resnet56_cifar100.py \\
        work_dirs/resnet56_cifar100/released.pth
"""
import argparse
import hashlib
import os
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

import amkd_plugin  # noqa: F401  (registers the backbones)
from amkd_plugin.apis import (describe, is_released_checkpoint,
                              load_teacher_checkpoint, read_checkpoint)
from amkd_plugin.utils import UserInputError, tool_main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='released checkpoint (ckpt_epoch_240.pth)')
    parser.add_argument('dst', help='where to write the MMPretrain checkpoint')
    parser.add_argument('config', help='the teacher config, e.g. '
                        'configs/teachers/resnet56_cifar100.py')
    return parser.parse_args()


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def convert(src: str, dst: str, config: str) -> None:
    """Load ``src`` into the classifier of ``config`` and save it."""
    if not osp.isfile(config):
        raise UserInputError(f'Config {config} does not exist.')
    if osp.abspath(src) == osp.abspath(dst):
        raise UserInputError('DST must differ from SRC: the source stays '
                             'as it is.')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(Config.fromfile(config).model)
    load_teacher_checkpoint(model, src, config)
    raw = read_checkpoint(src, f'python tools/train.py {config}')
    meta = dict(
        source_checkpoint=src,
        source_checkpoint_sha256=sha256(src),
        source_format=describe(raw) if is_released_checkpoint(raw) else
        'MMPretrain',
        config=config,
        converted_by='tools/convert_teacher.py')
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    torch.save(dict(meta=meta, state_dict=model.state_dict()), dst)
    print(f'Wrote {dst}; evaluate it with `python tools/test.py {config} '
          f'{dst}`.')


@tool_main
def main() -> None:
    args = parse_args()
    convert(args.src, args.dst, args.config)


if __name__ == '__main__':
    main()
