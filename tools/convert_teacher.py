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

from amkd_plugin.apis import convert_teacher
from amkd_plugin.utils import tool_main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='released checkpoint (ckpt_epoch_240.pth)')
    parser.add_argument('dst', help='where to write the MMPretrain checkpoint')
    parser.add_argument('config', help='the teacher config, e.g. '
                        'configs/teachers/resnet56_cifar100.py')
    return parser.parse_args()


@tool_main
def main() -> None:
    args = parse_args()
    convert_teacher(args.src, args.dst, args.config)
    print(f'Wrote {args.dst}; evaluate it with `python tools/test.py '
          f'{args.config} {args.dst}`.')


if __name__ == '__main__':
    main()
