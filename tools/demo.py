# Copyright (c) amkd-mmrazor contributors.
"""The embedded demo: a teacher, then KD and AMKD students, on real digits.

Trains on scikit-learn's handwritten digits (shipped with scikit-learn, so
nothing downloads) through the ordinary tools and configs:

1. the teacher, ``configs/teachers/resnet20_digits.py``;
2. a KD student, ``configs/kd/resnet20_resnet8_digits.py``;
3. an AMKD student, ``configs/amkd/resnet20_resnet8_digits.py``;

then evaluates each with ``tools/test.py`` on the held-out split and prints
one table with the command that reproduces every row.

Example:
    python tools/demo.py --work-dir work_dirs/demo
"""
import argparse
import json
import os.path as osp
import subprocess
import sys
from typing import List

TEACHER = 'configs/teachers/resnet20_digits.py'
STUDENTS = {
    'KD student (ResNet8)': 'configs/kd/resnet20_resnet8_digits.py',
    'AMKD student (ResNet8)': 'configs/amkd/resnet20_resnet8_digits.py',
}


def run(command: List[str]) -> None:
    print('+', ' '.join(command), flush=True)
    subprocess.run([sys.executable, *command], check=True)


def train_and_test(config: str,
                   work_dir: str,
                   epochs: int,
                   extra: List[str],
                   reuse: bool = False) -> dict:
    """Train ``config`` into ``work_dir``, test its last checkpoint.

    With ``reuse``, a work dir that already holds test metrics is taken as
    it is (so an interrupted sweep picks up where it stopped).
    """
    options = [f'train_cfg.max_epochs={epochs}', *extra]
    metrics = osp.join(work_dir, 'test_metrics.json')
    if not (reuse and osp.isfile(metrics)):
        run(['tools/train.py', config, '--work-dir', work_dir,
             '--cfg-options', *options])
        checkpoint = osp.join(work_dir, f'epoch_{epochs}.pth')
        run(['tools/test.py', config, checkpoint, '--work-dir', work_dir,
             '--out', metrics, *(['--cfg-options', *extra] if extra else [])])
    with open(metrics) as f:
        result = json.load(f)
    command = ' '.join(['python tools/train.py', config, '--work-dir',
                        work_dir, '--cfg-options', *options])
    return dict(top1=result['accuracy/top1'], command=command)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--epochs', type=int, default=20)
    args = parser.parse_args()

    teacher_dir = osp.join(args.work_dir, 'teacher')
    rows = {'Teacher (ResNet20)': train_and_test(TEACHER, teacher_dir,
                                                 args.epochs, [])}
    teacher_ckpt = osp.join(teacher_dir, f'epoch_{args.epochs}.pth')
    for name, config in STUDENTS.items():
        work_dir = osp.join(args.work_dir, osp.basename(osp.dirname(config)))
        rows[name] = train_and_test(config, work_dir, args.epochs,
                                    [f'model.teacher_ckpt={teacher_ckpt}'])

    print('\nTop-1 on the held-out digits split (450 images, seed 0):\n')
    print('| model | top-1 (%) | command |')
    print('|---|---|---|')
    for name, row in rows.items():
        print(f'| {name} | {row["top1"]:.2f} | `{row["command"]}` |')


if __name__ == '__main__':
    main()
