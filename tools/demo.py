# Copyright (c) amkd-mmrazor contributors.
"""The embedded demo: a teacher, then KD and AMKD students, on real digits.

Trains on scikit-learn's handwritten digits (shipped with scikit-learn, so
nothing downloads) through the ordinary tools and configs:

1. the teacher, ``configs/teachers/resnet20_digits.py``;
2. a KD student, ``configs/kd/resnet20_resnet8_digits.py``;
3. an AMKD student, ``configs/amkd/resnet20_resnet8_digits.py``;

then evaluates each with ``tools/test.py`` on the held-out split (the
students also with ``--fidelity``) and prints one table with the command
that reproduces every row.

Example:
    python tools/demo.py --work-dir work_dirs/demo
"""
import argparse
import json
import os.path as osp
import subprocess
import sys
import time
from typing import List, Sequence

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
                   reuse: bool = False,
                   fidelity: bool = False,
                   test_args: Sequence[str] = ()) -> dict:
    """Train ``config`` into ``work_dir``, test its last checkpoint.

    With ``reuse``, a finished training (its last checkpoint) and finished
    test metrics in ``work_dir`` are taken as they are, so an interrupted
    sweep picks up where it stopped. ``fidelity`` adds boundary fidelity to
    the test (``tools/test.py --fidelity``), ``test_args`` more arguments
    of ``tools/test.py``. The training's wall time, process start and bank
    build included, goes to ``train_time.json``.

    Returns:
        dict: The test metrics, ``command`` (the training command) and
        ``train_seconds`` (None for a training this code did not time).
    """
    options = [f'train_cfg.max_epochs={epochs}', *extra]
    checkpoint = osp.join(work_dir, f'epoch_{epochs}.pth')
    metrics = osp.join(work_dir, 'test_metrics.json')
    timing = osp.join(work_dir, 'train_time.json')
    if not (reuse and osp.isfile(checkpoint)):
        start = time.perf_counter()
        run(['tools/train.py', config, '--work-dir', work_dir,
             '--cfg-options', *options])
        with open(timing, 'w') as f:
            json.dump(dict(seconds=time.perf_counter() - start), f)
    if not (reuse and osp.isfile(metrics)):
        run(['tools/test.py', config, checkpoint, '--work-dir', work_dir,
             '--out', metrics, *(['--fidelity'] if fidelity else []),
             *test_args,
             *(['--cfg-options', *extra] if extra else [])])
    with open(metrics) as f:
        result = json.load(f)
    result['train_seconds'] = None
    if osp.isfile(timing):
        with open(timing) as f:
            result['train_seconds'] = json.load(f)['seconds']
    result['command'] = ' '.join(['python tools/train.py', config,
                                  '--work-dir', work_dir, '--cfg-options',
                                  *options])
    return result


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
                                    [f'model.teacher_ckpt={teacher_ckpt}'],
                                    fidelity=True)

    print('\nHeld-out digits split (450 images, seed 0): top-1, and how often '
          'the student agrees with the teacher at points around the '
          "teacher's decision boundary (mean over t = 0.5, 1, 1.5; "
          'docs/method.md#boundary-fidelity-boundaryfidelity):\n')
    print('| model | top-1 (%) | boundary agreement (%) | KL at the boundary '
          '| command |')
    print('|---|---|---|---|---|')
    for name, row in rows.items():
        agree, kl = (row.get(f'fidelity/{key}') for key in ('agree_mean',
                                                            'kl_t1.0'))
        cells = [f'{row["accuracy/top1"]:.2f}',
                 '-' if agree is None else f'{agree:.2f}',
                 '-' if kl is None else f'{kl:.3f}']
        print(f'| {name} | {" | ".join(cells)} | `{row["command"]}` |')


if __name__ == '__main__':
    main()
