# Copyright (c) amkd-mmrazor contributors.
"""Export the student of a distillation checkpoint as a plain classifier.

A distillation run saves the whole algorithm: the student
(``architecture.*``), the teacher, the distiller, the optimizer and the
message hub, behind an MMRazor config that needs the teacher checkpoint to
build. This tool writes what evaluation and deployment need, and nothing
else, into ``OUT_DIR``:

* ``student.py``: an MMPretrain config of the student alone. Its ``model``
  is the student's classifier with the data preprocessor the algorithm
  normalised its inputs with during training (the distillation config's;
  the student's own is unused there). It keeps the source config's val and
  test loaders, evaluators and runtime (after ``--cfg-options``), and
  leaves out the distillation (teacher, distiller, custom hooks such as
  ``AdversarialBoundaryHook``) and the training recipe: train loader,
  ``train_cfg``, optimizer, schedulers. The recipe belongs to the
  distillation (the student's head loss is weighted 0.1 against the KD
  losses), so training ``student.py`` alone would silently run a different
  experiment; without a recipe MMEngine refuses to train it at all.
* ``student.pth``: ``dict(meta=..., state_dict=...)`` with the student's
  tensors only (``architecture.`` stripped; the data preprocessor's
  persistent buffers, if any, taken from the algorithm's) and provenance in
  ``meta``: source config, checkpoint and its sha256, epoch and iteration,
  ``dataset_meta`` (class names for MMPretrain's inferencers). It loads
  with ``torch.load(..., weights_only=True)``.

Before writing, the tool builds the student from the exported model config
and loads the exported weights strictly, so a checkpoint that does not fit
the config stops here with one line instead of loading partially later.

Example:
    python tools/export_student.py configs/amkd/resnet20_resnet8_digits.py \
        work_dirs/resnet20_resnet8_digits/epoch_20.pth work_dirs/student
    python tools/test.py work_dirs/student/student.py \
        work_dirs/student/student.pth
"""
import argparse

from mmengine.config import DictAction

from amkd_plugin.apis import export_student
from amkd_plugin.utils import tool_main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Export the student of a distillation checkpoint as a '
        'plain MMPretrain config and checkpoint')
    parser.add_argument('config', help='the distillation config')
    parser.add_argument('checkpoint', help='a checkpoint of its training')
    parser.add_argument(
        'out_dir', help='folder to write student.py and student.pth into')
    parser.add_argument(
        '--fragments', nargs='+', default=[], metavar='FRAGMENT',
        help='the config fragments of the training (as tools/train.py '
        '--fragments)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings as in training, e.g. '
        'test_dataloader.dataset.data_root=data/cifar100')
    return parser.parse_args()


@tool_main
def main() -> None:
    args = parse_args()
    result = export_student(args.config, args.checkpoint, args.out_dir,
                            args.cfg_options, args.fragments)
    progress = ', '.join(f'{key} {result.meta[key]}'
                         for key in ('epoch', 'iter') if key in result.meta)
    cfg_path, ckpt_path = result.config, result.checkpoint
    print(f'Exported the student of {args.checkpoint}'
          f'{f" ({progress})" if progress else ""}:\n'
          f'  config:     {cfg_path}\n'
          f'  checkpoint: {ckpt_path} ({result.num_tensors} student tensors'
          f'{f"; left out {result.left_out}" if result.left_out else ""})\n'
          'Evaluate it:\n'
          f'  python tools/test.py {cfg_path} {ckpt_path}\n'
          'Use it from Python (the config imports amkd_plugin itself):\n'
          '  from mmpretrain import ImageClassificationInferencer\n'
          f"  inferencer = ImageClassificationInferencer('{cfg_path}', "
          f"pretrained='{ckpt_path}')\n"
          '  # or: from mmpretrain.apis import init_model\n'
          f"  #     model = init_model('{cfg_path}', '{ckpt_path}', "
          "device='cpu')")


if __name__ == '__main__':
    main()
