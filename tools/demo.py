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
import os.path as osp

from amkd_plugin.apis import train_and_test

TEACHER = 'configs/teachers/resnet20_digits.py'
STUDENTS = {
    'KD student (ResNet8)': 'configs/kd/resnet20_resnet8_digits.py',
    'AMKD student (ResNet8)': 'configs/amkd/resnet20_resnet8_digits.py',
}


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
