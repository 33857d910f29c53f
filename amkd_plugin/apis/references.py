# Copyright (c) amkd-mmrazor contributors.
"""Published CIFAR-100 numbers of the KD benchmark, kept apart from ours."""
from typing import List

# Published CIFAR-100 top-1 (%) of the KD benchmark, never measured here
# (None: not in the sources read). Sources:
# - teacher, student, KD, CRD: Tian et al., ICLR 2020 (CRD), Tables 1-2, as
#   reprinted in github HobbitLong/RepDistiller README.md;
# - DKD: Zhao et al., CVPR 2022, github megvii-research/mdistiller README.md
#   (its column "ResNet32x4 -> MobileNet-V2" is ShuffleNet-V2, as in the
#   other sources); resnet110 -> resnet20 from the logit-standardization
#   README only;
# - MLKD (Jin et al., CVPR 2023) and KD+LS (Sun et al., CVPR 2024): github
#   sunshangquan/logit-standardization-KD README.md.
REFERENCE_COLUMNS = ('teacher', 'student', 'KD', 'CRD', 'DKD', 'MLKD',
                     'KD+LS')
REFERENCES = {
    'resnet56_resnet20': (72.34, 69.06, 70.66, 71.16, 71.97, 72.19, 71.43),
    'resnet110_resnet20': (74.31, 69.06, 70.67, 71.46, 71.06, 71.89, 71.48),
    'resnet110_resnet32': (74.31, 71.14, 73.08, 73.48, 74.11, 74.11, 74.17),
    'resnet32x4_resnet8x4': (79.42, 72.50, 73.33, 75.51, 76.32, 77.08,
                             76.62),
    'wrn_40_2_wrn_16_2': (75.61, 73.26, 74.92, 75.48, 76.23, 76.63, 76.11),
    'wrn_40_2_wrn_40_1': (75.61, 71.98, 73.54, 74.14, 74.81, 75.35, 74.37),
    'vgg13_vgg8': (74.64, 70.36, 72.98, 73.94, 74.68, 75.18, 74.36),
    'vgg13_mobilenetv2': (74.64, 64.60, 67.37, 69.73, 69.71, 70.57, 68.61),
    'resnet50_mobilenetv2': (79.34, 64.60, 67.35, 69.11, 70.35, 71.04,
                             69.02),
    'resnet50_vgg8': (79.34, 70.36, 73.81, 74.30, None, None, None),
    'resnet32x4_shufflenetv1': (79.42, 70.50, 74.07, 75.11, 76.45, None,
                                None),
    'resnet32x4_shufflenetv2': (79.42, 71.82, 74.45, 75.65, 77.07, 78.44,
                                75.56),
    'wrn_40_2_shufflenetv1': (75.61, 70.50, 74.83, 76.05, 76.70, None,
                              None),
}
REFERENCE_SOURCES = (
    'Teacher, student, KD and CRD: Tian et al., ICLR 2020, Tables 1-2 (as '
    'reprinted in the README of github.com/HobbitLong/RepDistiller). DKD: '
    'Zhao et al., CVPR 2022 (README of github.com/megvii-research/'
    'mdistiller, whose column "ResNet32x4 -> MobileNet-V2" is ShuffleNet-V2 '
    'as in the other sources; resnet110 -> resnet20 and wrn_40_2 -> '
    'wrn_16_2 differ: 71.06 from the next source only, 76.23 there and '
    '76.24 in the next). MLKD (Jin et al., CVPR 2023) and KD+LS (Sun et '
    'al., CVPR 2024): README of github.com/sunshangquan/'
    'logit-standardization-KD. "-": not in these sources.')


def references_table() -> List[str]:
    """The 13 CIFAR-100 pairs: our config, and published numbers apart."""
    lines = [
        'Nothing in this table is measured by this project yet (240 epochs '
        'per run need a GPU): the columns are published references, each '
        'from the source named below. `python tools/train.py '
        'configs/amkd/PAIR_cifar100.py --cfg-options '
        'model.teacher_ckpt=download_ckpts/cifar_teachers/'
        '<arch>_vanilla/ckpt_epoch_240.pth` trains the pair from the '
        'benchmark\'s released teacher (docs/running.md, "The benchmark\'s '
        'released teachers").', '',
        '| config | measured here | ' +
        ' | '.join(f'reference: {c}' for c in REFERENCE_COLUMNS) + ' |',
        '|---' * (len(REFERENCE_COLUMNS) + 2) + '|'
    ]
    for pair, numbers in REFERENCES.items():
        cells = ['-' if n is None else f'{n:.2f}' for n in numbers]
        lines.append(f'| `configs/amkd/{pair}_cifar100.py` | not run | ' +
                     ' | '.join(cells) + ' |')
    return [*lines, '', f'Sources: {REFERENCE_SOURCES}']


def references_section(command: str) -> str:
    """The references table as a results section, with its command."""
    return '\n'.join([f'Written by `{command}`.', '', *references_table()])
