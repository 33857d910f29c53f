# Copyright (c) amkd-mmrazor contributors.
"""Time a KD step against online AMKD steps while the attack runs.

All steps are the same ``AMKDDistill``, built from a pair config with
``configs/experiments/sources/online_bss.py``: KD is the step with
``boundary_weight = 0`` (no attack, as in ``configs/kd/``), AMKD the step
with weight 1, attacking with BSS's step (the config's) or the
first-order step (the attack of the digits pair with
``sources/online_newton.py``). They run interleaved in one process on the
same batch, so machine noise hits all alike; the script prints median step
times, their ratios, the attack statistics and, per variant, the peak
memory (CUDA: ``max_memory_allocated``; CPU, Linux: how far the steps
raise the peak RSS above the RSS after building, in a fresh process that
runs only that variant).

Which samples get attacked depends on the student; here the selection
takes the ``m`` samples of largest teacher-student disagreement whether or
not they are classified correctly, i.e. the steady state of training,
where more than ``m`` candidates exist. By default both models have random
weights (random images, each labelled with the teacher's class); how many
steps the attack takes is printed with the table. Pass ``--teacher-ckpt`` (a ResNet56 trained on digits by
``python tools/train.py configs/teachers/resnet56_digits.py``) for a
trained teacher's boundary on real digits images.

Example:
    python tools/analysis/benchmark_step.py --iters 10
"""
import argparse
import json
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict

import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope

from amkd_plugin.apis import SteadyStateAttack, sync_device
from amkd_plugin.utils.fragments import merge_fragments

FLAGSHIP = 'configs/amkd/resnet56_resnet20_cifar100.py'
DIGITS = 'configs/amkd/resnet20_resnet8_digits.py'
ONLINE_BSS = 'configs/experiments/sources/online_bss.py'
FIRST_ORDER = (DIGITS, ['configs/experiments/logits/no_ls.py',
                        'configs/experiments/sources/online_newton.py'])
# variant -> (boundary weight, attack: the config's or the first-order one)
VARIANTS = dict(kd=(0., 'config'), amkd_bss=(1., 'config'),
                amkd_first_order=(1., 'first_order'))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--teacher-ckpt', help='trained digits teacher')
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int,
                        help='torch threads (1 on a shared CPU)')
    parser.add_argument(
        '--variant', choices=list(VARIANTS), help=argparse.SUPPRESS)
    return parser.parse_args()


def build(args: argparse.Namespace):
    """The algorithm, its optimiser, one preprocessed batch and the two
    attacks (``'config'``, ``'first_order'``)."""
    torch.manual_seed(0)  # the same random weights and images every run
    cfg = merge_fragments(DIGITS if args.teacher_ckpt else FLAGSHIP,
                          [ONLINE_BSS])
    if args.teacher_ckpt:  # the flagship's architectures on digits
        cfg.merge_from_dict({
            'model.architecture.cfg_path': 'configs/_base_/models/resnet20.py',
            'model.teacher.cfg_path': 'configs/teachers/resnet56_digits.py',
            'model.teacher_ckpt': args.teacher_ckpt,
        })
    model_cfg = cfg.model
    model_cfg.data_preprocessor = cfg.data_preprocessor
    if not args.teacher_ckpt:  # random weights, see the docstring
        from mmpretrain.registry import MODELS as PRETRAIN_MODELS
        teacher = PRETRAIN_MODELS.build(
            Config.fromfile(model_cfg.teacher.cfg_path).model)
        model_cfg.teacher_ckpt = osp.join(tempfile.mkdtemp(), 'teacher.pth')
        torch.save(dict(state_dict=teacher.state_dict()),
                   model_cfg.teacher_ckpt)
    from mmrazor.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmrazor'):
        algorithm = MODELS.build(model_cfg).to(args.device)
    attacks = {
        name: SteadyStateAttack(
            **{k: v for k, v in attack.items() if k != 'type'})
        for name, attack in (('config', model_cfg.boundary.attack),
                             ('first_order', merge_fragments(
                                 *FIRST_ORDER).model.boundary.attack))
    }
    algorithm.train()
    optim = OptimWrapper(
        torch.optim.SGD(algorithm.student.parameters(), lr=0.05,
                        momentum=0.9))

    if args.teacher_ckpt:
        from mmpretrain.registry import DATASETS
        dataset = DATASETS.build(cfg.train_dataloader.dataset)
        samples = [dataset[i] for i in range(args.batch_size)]
        batch = dict(
            inputs=[s['inputs'] for s in samples],
            data_samples=[s['data_samples'] for s in samples])
    else:
        from mmpretrain.structures import DataSample
        num_classes = cfg.data_preprocessor.num_classes
        batch = dict(
            inputs=list(torch.randint(0, 256, (args.batch_size, 3, 32, 32),
                                      dtype=torch.uint8)),
            data_samples=[
                DataSample().set_gt_label(i % num_classes)
                for i in range(args.batch_size)
            ])
    data = algorithm.data_preprocessor(batch, True)
    if not args.teacher_ckpt:
        # Label each image with the teacher's class, as the selection
        # guarantees in training, so the attack starts inside class b.
        with torch.no_grad():
            labels = algorithm.teacher(data['inputs'], mode='tensor').argmax(1)
        for sample, label in zip(data['data_samples'], labels):
            sample.set_gt_label(int(label))
    return algorithm, optim, data, attacks


def train_step(algorithm, optim, data, attacks, variant: str) -> None:
    weight, attack = VARIANTS[variant]
    algorithm.boundary_weight = weight
    algorithm.boundary.attack = attacks[attack]
    losses = algorithm.loss(data['inputs'], data['data_samples'])
    loss, _ = algorithm.parse_losses(losses)
    optim.update_params(loss)


def time_variants(args: argparse.Namespace) -> Dict:
    """Median step time and mean attack statistics of every variant."""
    algorithm, optim, data, attacks = build(args)
    times = {name: [] for name in VARIANTS}
    stats = {name: [] for name in VARIANTS}
    for it in range(args.warmup + args.iters):
        for name in VARIANTS:
            sync_device(args.device)
            start = time.perf_counter()
            train_step(algorithm, optim, data, attacks, name)
            sync_device(args.device)
            if it >= args.warmup:
                times[name].append(time.perf_counter() - start)
                stats[name].append(algorithm.attack_stats)
    return {
        name: dict(
            time=statistics.median(times[name]),
            **{key: statistics.mean(s[key] for s in stats[name])
               for key in ('attacked', 'reached', 'steps')})
        for name in VARIANTS
    }


def proc_status_kb(field: str) -> int:
    with open('/proc/self/status') as f:
        line = next(line for line in f if line.startswith(field + ':'))
    return int(line.split()[1])


def reset_peak_rss() -> int:
    """Reset this process's peak RSS (Linux) and return the current RSS."""
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')
    return proc_status_kb('VmRSS')


def peak_memory_mb(args: argparse.Namespace, variant: str) -> float:
    """Peak memory of ``args.warmup`` steps of one variant."""
    if args.device.startswith('cuda'):
        algorithm, optim, data, attacks = build(args)
        torch.cuda.reset_peak_memory_stats()
        for _ in range(args.warmup):
            train_step(algorithm, optim, data, attacks, variant)
        return torch.cuda.max_memory_allocated() / 2**20
    command = [sys.executable, __file__, '--variant', variant]
    for flag in ('teacher_ckpt', 'batch_size', 'warmup', 'device',
                 'threads'):
        value = getattr(args, flag)
        if value is not None:
            command += [f'--{flag.replace("_", "-")}', str(value)]
    output = subprocess.run(
        command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])['peak_rss_mb']


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.variant:  # child process: one variant, report its peak memory
        algorithm, optim, data, attacks = build(args)
        before = reset_peak_rss()
        for _ in range(args.warmup):
            train_step(algorithm, optim, data, attacks, args.variant)
        print(json.dumps(dict(peak_rss_mb=(proc_status_kb('VmHWM') -
                                           before) / 1024)))
        return

    result = time_variants(args)
    memory = {v: peak_memory_mb(args, v) for v in VARIANTS}
    teacher = args.teacher_ckpt or 'random weights'
    print(f'pair: resnet56 -> resnet20, batch {args.batch_size}, '
          f'device {args.device}, torch {torch.__version__}, '
          f'threads {torch.get_num_threads()}, teacher: {teacher}; medians '
          f'of {args.iters} steps after {args.warmup}')
    print('| step | median time (s) | ratio to KD | attacked | reached | '
          'teacher passes per boundary sample | peak memory of the steps '
          '(MiB) |')
    print('|---|---|---|---|---|---|---|')
    for name, row in result.items():
        print(f'| {name} | {row["time"]:.3f} | '
              f'{row["time"] / result["kd"]["time"]:.2f}x | '
              f'{row["attacked"]:.0f} | {row["reached"]:.0%} | '
              f'{row["steps"]:.2f} | {memory[name]:.0f} |')


if __name__ == '__main__':
    main()
