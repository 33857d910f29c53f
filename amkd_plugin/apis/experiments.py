# Copyright (c) amkd-mmrazor contributors.
"""Experiments through the ordinary tools: train a config, then test it.

The tools run as subprocesses (``python tools/train.py ...``), as the
printed commands reproduce them, with paths relative to the working
directory: call these from the repository root, as the tools are run.
"""
import json
import os.path as osp
import subprocess
import sys
import time
from typing import List, Sequence


def _run(command: List[str]) -> None:
    """Run ``python COMMAND``, echoed first, as the user would."""
    print('+', ' '.join(command), flush=True)
    subprocess.run([sys.executable, *command], check=True)


def train_and_test(config: str,
                   work_dir: str,
                   epochs: int,
                   extra: List[str],
                   reuse: bool = False,
                   fidelity: bool = False,
                   test_args: Sequence[str] = (),
                   fragments: Sequence[str] = (),
                   test_options: Sequence[str] = ()) -> dict:
    """Train ``config`` into ``work_dir``, test its last checkpoint.

    With ``reuse``, a finished training (its last checkpoint) and finished
    test metrics in ``work_dir`` are taken as they are, and a training
    stopped part-way goes on from its newest checkpoint (``--resume``), so
    an interrupted sweep picks up where it stopped. ``fidelity`` adds
    boundary fidelity to the test (``tools/test.py --fidelity``),
    ``test_args`` more arguments of ``tools/test.py``. The training's wall
    time, process start and bank build included, goes to
    ``train_time.json``; a resumed training's is unknown (None).

    Args:
        config (str): The config to train.
        work_dir (str): Its work dir.
        epochs (int): ``train_cfg.max_epochs``; the test takes the
            checkpoint of the last epoch.
        extra (list[str]): More ``--cfg-options`` of both training and test.
        reuse (bool): Take finished training and test results as they are.
        fidelity (bool): Test with ``--fidelity``.
        test_args (Sequence[str]): More arguments of ``tools/test.py``.
        fragments (Sequence[str]): Config fragments merged onto ``config``
            (``--fragments`` of both tools).
        test_options (Sequence[str]): ``--cfg-options`` of the test only.

    Returns:
        dict: The test metrics, ``command`` (the training command),
        ``train_seconds`` (None for a training this code did not time in
        one piece) and ``resumed`` (whether it went on from a checkpoint).
    """
    options = [f'train_cfg.max_epochs={epochs}', *extra]
    merged = ['--fragments', *fragments] if fragments else []
    checkpoint = osp.join(work_dir, f'epoch_{epochs}.pth')
    metrics = osp.join(work_dir, 'test_metrics.json')
    timing = osp.join(work_dir, 'train_time.json')
    if not (reuse and osp.isfile(checkpoint)):
        # A part-way training: its first part's time died with it.
        resume = reuse and osp.isfile(osp.join(work_dir, 'last_checkpoint'))
        start = time.perf_counter()
        _run(['tools/train.py', config, *merged, '--work-dir', work_dir,
              *(['--resume'] if resume else []), '--cfg-options', *options])
        with open(timing, 'w') as f:
            json.dump(dict(seconds=None if resume else
                           time.perf_counter() - start, resumed=resume), f)
    if reuse and osp.isfile(metrics):
        with open(metrics) as f:
            result = json.load(f)
    else:
        result = test_checkpoint(config, checkpoint, work_dir, metrics,
                                 [*extra, *test_options], fidelity,
                                 test_args, fragments)
    timed = dict(seconds=None, resumed=False)
    if osp.isfile(timing):
        with open(timing) as f:
            timed.update(json.load(f))
    result['train_seconds'] = timed['seconds']
    result['resumed'] = timed['resumed']
    result['command'] = ' '.join(['python tools/train.py', config, *merged,
                                  '--work-dir', work_dir, '--cfg-options',
                                  *options])
    return result


def test_checkpoint(config: str,
                    checkpoint: str,
                    work_dir: str,
                    out: str,
                    options: Sequence[str] = (),
                    fidelity: bool = False,
                    test_args: Sequence[str] = (),
                    fragments: Sequence[str] = ()) -> dict:
    """Test ``checkpoint`` of ``config`` with ``tools/test.py``; its metrics,
    also written to ``out``.

    Args:
        config (str): The config the checkpoint was trained with.
        checkpoint (str): The checkpoint.
        work_dir (str): The test's work dir (its log).
        out (str): The metrics file (``--out``).
        options (Sequence[str]): ``--cfg-options`` of the test.
        fidelity (bool): Test with ``--fidelity``.
        test_args (Sequence[str]): More arguments of ``tools/test.py``.
        fragments (Sequence[str]): Config fragments merged onto ``config``.
    """
    _run([
        'tools/test.py', config, checkpoint,
        *(['--fragments', *fragments] if fragments else []), '--work-dir',
        work_dir, '--out', out, *(['--fidelity'] if fidelity else []),
        *test_args, *(['--cfg-options', *options] if options else [])
    ])
    with open(out) as f:
        return json.load(f)
