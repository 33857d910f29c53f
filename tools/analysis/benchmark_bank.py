# Copyright (c) amkd-mmrazor contributors.
"""Time a training epoch and the bank build: KD vs online vs banked AMKD.

In one process, for ResNet56 -> ResNet20 on CIFAR-100 (``--pair cifar100``)
or the digits demo's ResNet20 -> ResNet8 (``--pair digits``): stock MMRazor
KD (``SingleTeacherDistill`` + ``ConfigurableDistiller`` + ``KLDivergence``
at tau 4 on the same networks, the baseline of every ratio), KD as AMKD
at boundary weight 0 (the pair with ``configs/experiments/logits/no_ls.py``
and ``sources/online_bss.py``), online AMKD with BSS's step (the pair with
``sources/online_bss.py``) and with the first-order step (the attack of
the digits pair with ``sources/online_newton.py``), and banked AMKD (the
pair config) with the
same teacher, batch size and recipe (optimiser, train pipeline,
dataloader). The bank is built as the training hook builds it
(``build_boundary_bank``, over the un-augmented training set); then each
round runs one epoch of every variant in lockstep, one ``train_step`` (the
Runner's step without hooks) of each in turn, so load changes hit all
alike; an epoch is the sum of its steps' medians over the rounds. Epochs
run at boundary weight 1 (attack phase) or 0 (last quarter, no attack):
online AMKD at 0 is a KD step (the KD config's model and dataloader; the
default's logit standardization adds two z-scorings of the logits), banked
AMKD at 0 still loads the bank. Batches load in the main process
(``--num-workers 0``) so that each variant's loading counts in its own
time.

For CIFAR-100 the data is written in its python-pickle layout: N random
images or the first N of ``--data-root``, each labelled with the teacher's
class; digits are the real training digits (the first N) and labels;
the attack takes the largest disagreements whether or not the student is
right (``SteadyStateAttack``), as in steady training. A random teacher
(``--teacher-ckpt`` takes a trained one) is rarely pushed across its
boundary within ``max_steps``: every attack, online or banked, runs all
its steps, the most it can cost, while a trained teacher (the demo's
digits teacher) shows the typical case. The whole-run projection scales
all times by the training set's size over N (constant cost per image).

On a CPU shared with other jobs use ``--threads 1``: more threads than free
cores slow every step several times, small batches most, and skew ratios.

Example:
    python tools/analysis/benchmark_bank.py --threads 1
    python tools/analysis/benchmark_bank.py --device cuda --amp
    python tools/analysis/benchmark_bank.py --threads 1 --pair digits \
        --teacher-ckpt work_dirs/demo/teacher/epoch_20.pth
"""
import argparse
import os
import os.path as osp
import pickle
import shlex
import statistics
import sys
import tempfile
import time
from types import SimpleNamespace
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

import amkd_plugin  # noqa: F401  (registers the plugin, mends mmrazor)
from amkd_plugin.apis import (SteadyStateAttack, load_teacher_checkpoint,
                              resolve_model_config, sync_device)
from amkd_plugin.bank import BoundaryBankFile, build_boundary_bank
from amkd_plugin.utils import tool_main, use_amp
from amkd_plugin.utils.fragments import merge_fragments
from amkd_plugin.utils.pixels import from_pixels

PAIRS = dict(
    cifar100='configs/amkd/resnet56_resnet20_cifar100.py',
    digits='configs/amkd/resnet20_resnet8_digits.py')
NO_LS = 'configs/experiments/logits/no_ls.py'
ONLINE_BSS = 'configs/experiments/sources/online_bss.py'
# variant -> fragments merged onto the pair: KD (AMKD at weight 0, as
# configs/kd/resnet20_resnet8_digits.py), online AMKD with BSS's step and
# AMKD (the bank).
VARIANTS = dict(kd=[NO_LS, ONLINE_BSS], online=[ONLINE_BSS], banked=[])
FIRST_ORDER = ('configs/amkd/resnet20_resnet8_digits.py',
               [NO_LS, 'configs/experiments/sources/online_newton.py'])
TRAIN_SIZES = dict(cifar100=50000, digits=1347)
STOCK, KD = 'KD, stock MMRazor', 'KD (AMKD at weight 0)'
# Stock MMRazor KD (SingleTeacherDistill + KLDivergence); its distiller.
STOCK_KD = 'configs/kd/resnet20_resnet8_fashion_mnist_lowdata.py'


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--pair', choices=list(PAIRS), default='cifar100')
    parser.add_argument('--device', default='cpu', help='cpu or cuda')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision, as tools/train.py --amp '
                        '(AmpOptimWrapper; CUDA only)')
    parser.add_argument('--num-images', type=int, default=512)
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--repeats', type=int, default=3,
                        help='timed rounds of one epoch of each variant')
    parser.add_argument('--bank-repeats', type=int, default=1,
                        help='timed bank builds, one before each of the '
                        'first rounds (the bank is a few percent of a run)')
    parser.add_argument('--warmup', type=int, default=1,
                        help='untimed rounds first')
    parser.add_argument('--threads', type=int,
                        help='torch threads (1 on a shared CPU)')
    parser.add_argument('--num-workers', type=int, default=0,
                        help='dataloader workers (see above)')
    parser.add_argument('--data-root', help='real CIFAR-100 data_root')
    parser.add_argument('--teacher-ckpt', help='trained teacher of the pair')
    return parser.parse_args()


def write_dataset(args: argparse.Namespace, cfg: Config, root: str) -> str:
    """Write the CIFAR-100 copy, labelled by the teacher; the checkpoint."""
    from mmpretrain.registry import MODELS
    torch.manual_seed(0)
    teacher = MODELS.build(Config.fromfile(cfg.model.teacher.cfg_path).model)
    ckpt = args.teacher_ckpt or random_teacher(cfg, root)
    load_teacher_checkpoint(teacher, ckpt, cfg.model.teacher.cfg_path)
    n = args.num_images
    if args.data_root:
        with open(osp.join(args.data_root, 'cifar-100-python', 'train'),
                  'rb') as f:
            data = pickle.load(f, encoding='latin1')['data'][:n]
    else:
        data = np.random.default_rng(0).integers(0, 256, (n, 3072), np.uint8)
    # Labels the teacher gets right (in eval mode, as frozen in training):
    # the attack then starts inside the label's class, as in training.
    preprocessor = MODELS.build(cfg.data_preprocessor)
    teacher.eval()
    with torch.no_grad():
        labels = torch.cat([
            teacher(from_pixels(torch.from_numpy(chunk).view(-1, 3, 32, 32),
                                preprocessor), mode='tensor').argmax(1)
            for chunk in np.array_split(data, max(1, n // 256))
        ]).numpy()
    split = dict(data=data, fine_labels=labels.tolist(),
                 coarse_labels=(labels // 5).tolist(),
                 filenames=[f'{i}.png' for i in range(n)])
    meta = dict(fine_label_names=[f'c{i}' for i in range(100)],
                coarse_label_names=[f's{i}' for i in range(20)])
    folder = osp.join(root, 'cifar-100-python')
    os.makedirs(folder)
    # The dataset checks that all three files exist; test is never read.
    for name, content in dict(train=split, test=split, meta=meta).items():
        with open(osp.join(folder, name), 'wb') as f:
            pickle.dump(content, f)
    return ckpt


def random_teacher(cfg: Config, root: str) -> str:
    """A checkpoint of the pair's teacher with seeded random weights."""
    from mmpretrain.registry import MODELS
    torch.manual_seed(0)
    teacher = MODELS.build(Config.fromfile(cfg.model.teacher.cfg_path).model)
    ckpt = osp.join(root, 'teacher.pth')
    torch.save(dict(state_dict=teacher.state_dict()), ckpt)
    return ckpt


def build_variant(spec: Tuple[str, List[str]],
                  args: argparse.Namespace,
                  root: str,
                  ckpt: str,
                  attack: Optional[dict] = None,
                  stock_kd: bool = False) -> SimpleNamespace:
    """Algorithm, optimiser, train dataloader and config of one config
    (a pair and its fragments), with ``attack`` online instead of its own
    boundary source if given, or as stock MMRazor KD
    (:func:`stock_kd_model`)."""
    cfg = merge_fragments(*spec)
    loader = cfg.train_dataloader
    loader.batch_size = args.batch_size
    loader.num_workers = args.num_workers
    loader.persistent_workers = loader.num_workers > 0
    if args.pair == 'digits':
        loader.dataset.indices = args.num_images
    else:
        for split in (loader, cfg.test_dataloader):
            split.dataset.data_root = root
    cfg.model.teacher_ckpt = ckpt
    if attack is not None:
        cfg.model.boundary = dict(type='OnlineBoundary', attack=attack)
    cfg.model.data_preprocessor = cfg.data_preprocessor
    if stock_kd:
        cfg.model = stock_kd_model(cfg.model)
    torch.manual_seed(0)  # the same student weights in every variant
    from mmrazor.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmrazor'):
        algorithm = MODELS.build(cfg.model).to(args.device)
        if args.amp:
            use_amp(cfg)
        optim = build_optim_wrapper(algorithm, cfg.optim_wrapper)
    if not stock_kd:
        # The selection in the step; a bank is built by its builder's own
        # attack.
        attack = {k: v for k, v in cfg.model.boundary.attack.items()
                  if k != 'type'}
        algorithm.boundary.attack = SteadyStateAttack(**attack)
    algorithm.train()
    return SimpleNamespace(algorithm=algorithm, optim=optim, cfg=cfg,
                           loader=Runner.build_dataloader(loader, seed=0))


def stock_kd_model(model: dict) -> dict:
    """Stock MMRazor KD of an AMKD model config: its student, teacher and
    data preprocessor with the distiller of ``STOCK_KD`` (the KD
    benchmark's KL divergence at tau 4 on the logits), nothing of the
    plugin."""
    return dict(
        _scope_='mmrazor',
        type='SingleTeacherDistill',
        architecture=resolve_model_config(model.architecture),
        teacher=resolve_model_config(model.teacher),
        teacher_ckpt=model.teacher_ckpt,
        data_preprocessor=model.data_preprocessor,
        distiller=Config.fromfile(STOCK_KD).model.distiller)


def run_round(schedule: List, device: str, shift: int) -> Dict[str, Dict]:
    """One epoch of every variant in lockstep, a step of each in turn.

    Returns each variant's step times (loading included) and attack sums.
    """
    batches = {}
    for name, variant, _ in schedule:
        # As the Runner's loop before every epoch; this also puts the
        # teacher's BatchNorm back into eval mode after a bank build.
        variant.algorithm.train()
        batches[name] = iter(variant.loader)
    out = {name: dict(times=[], attacked=0., steps=0.)
           for name, *_ in schedule}
    for i in range(len(schedule[0][1].loader)):
        k = (i + shift) % len(schedule)  # rotate who steps first
        for name, variant, weight in schedule[k:] + schedule[:k]:
            variant.algorithm.boundary_weight = weight
            sync_device(device)
            start = time.perf_counter()
            variant.algorithm.train_step(next(batches[name]), variant.optim)
            sync_device(device)
            stats = getattr(variant.algorithm, 'attack_stats',
                            dict(attacked=0., steps=0.))
            out[name]['times'].append(time.perf_counter() - start)
            out[name]['attacked'] += stats['attacked']
            out[name]['steps'] += stats['steps'] * stats['attacked']
    return out


def build_bank(variants: List[SimpleNamespace], root: str,
               device: str) -> Dict[str, float]:
    """Build a bank as the hook does, in a fresh work dir, and bind it."""
    work_dir = tempfile.mkdtemp(dir=root)
    sync_device(device)
    start = time.perf_counter()
    for variant in variants:  # the first builds, the others reuse and bind
        path = build_boundary_bank(SimpleNamespace(
            model=variant.algorithm, cfg=variant.cfg, work_dir=work_dir,
            train_dataloader=variant.loader))
        if variant is variants[0]:
            sync_device(device)
            elapsed = time.perf_counter() - start
    bank = BoundaryBankFile.open(path)
    correct = bank['correct']
    return dict(time=elapsed, correct=float(correct.mean()),
                steps=float(bank['steps'][correct].mean()) if correct.any()
                else 0.)


def load() -> str:
    return ', '.join(f'{x:.2f}' for x in os.getloadavg())


def report(args: argparse.Namespace, cfg: Config, rounds: List[Dict],
           banks: List[Dict], num_steps: int, load_start: str) -> None:
    """Print the setup, the epoch and bank times and the projection."""
    epochs = {name: [r[name] for r in rounds] for name in rounds[0]}
    # An epoch is the sum over its steps of each step's median over the
    # rounds: a burst of load spoils one sample, not a whole epoch.
    e = {name: sum(map(statistics.median, zip(*(r['times'] for r in runs))))
         for name, runs in epochs.items()}
    bank = statistics.median(b['time'] for b in banks)
    images = (f'images of {args.data_root}' if args.data_root else
              'training digits' if args.pair == 'digits' else 'random images')
    print(f'\ncommand: python {shlex.join(sys.argv)}')
    amp = ' (AMP)' if args.amp else ''
    print(f'{cfg.model.teacher.cfg_path} -> '
          f'{cfg.model.architecture.cfg_path}, {args.pair}, {args.num_images} '
          f'{images}, batch {args.batch_size}, device {args.device}{amp}, '
          f'torch {torch.__version__}, threads {torch.get_num_threads()}, '
          f'dataloader workers {args.num_workers}, teacher '
          f'{args.teacher_ckpt or "random weights"}; per-step medians of '
          f'{args.repeats} rounds after {args.warmup} warm-up round(s)')
    print(f'load average (1/5/15 min): start {load_start}; end {load()}')
    print('\n| epoch | time (s) | ms / image | ratio to stock KD | '
          'attacked / step | attack steps |\n|---|---|---|---|---|---|')
    for name, runs in epochs.items():
        attacked = sum(r['attacked'] for r in runs)
        print(f'| {name} | {e[name]:.2f} | '
              f'{1e3 * e[name] / args.num_images:.2f} | '
              f'{e[name] / e[STOCK]:.2f}x | '
              f'{attacked / num_steps / len(runs):.1f} | '
              f'{sum(r["steps"] for r in runs) / max(attacked, 1):.2f} |')
    print(f'\nbank build: {bank:.2f} s (median of {len(banks)}; '
          f'{1e3 * bank / args.num_images:.2f} ms / image) = '
          f'{bank / e[STOCK]:.2f} KD epochs; teacher right on '
          f'{banks[0]["correct"]:.0%} of the images, '
          f'{banks[0]["steps"]:.2f} attack steps / image')

    total = cfg.train_cfg.max_epochs
    end = next(h.get('end', 0.75) for h in cfg.custom_hooks
               if h.type == 'AdversarialBoundaryHook')
    attack = round(end * total)
    late = total - attack
    runs = {
        f'stock MMRazor KD: {total} e_stock': total * e[STOCK],
        f'KD as AMKD at w=0: {total} e_KD': total * e[KD],
        f'online AMKD, BSS step: {attack} e_online + {late} e_KD':
        attack * e['AMKD online, BSS step, w=1'] + late * e[KD],
        f'online AMKD, first-order step: {attack} e_online + {late} e_KD':
        attack * e['AMKD online, first-order step, w=1'] + late * e[KD],
        f'banked AMKD: bank + {attack} e_banked + {late} e_banked(w=0)':
        bank + attack * e['AMKD banked, w=1'] + late * e['AMKD banked, w=0'],
    }
    size = TRAIN_SIZES[args.pair]
    scale = size / args.num_images
    print(f'\nprojected {total}-epoch run on the {size} {args.pair} '
          f'training images: every time x {scale:.1f} (constant cost per '
          f'image); the attack stops at {end:.0%} of training and online '
          'AMKD at w=0 is the KD model (e_KD):\n'
          '| run | hours on this machine | ratio to stock KD |\n'
          '|---|---|---|')
    for name, seconds in runs.items():
        print(f'| {name} | {seconds * scale / 3600:.1f} | '
              f'{seconds / (total * e[STOCK]):.2f}x |')
    ratio = list(runs.values())[-1] / (total * e[STOCK])
    step = e['AMKD banked, w=1'] / e[STOCK]
    print(f'targets: banked run <= 1.15x stock KD: '
          f'{"met" if ratio <= 1.15 else "missed"} ({ratio:.2f}x); banked '
          f'step <= 1.15x: {"met" if step <= 1.15 else "missed"} '
          f'({step:.2f}x)')


@tool_main
def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load_start = load()
    kd_cfg, online_cfg, banked_cfg = (
        (PAIRS[args.pair], VARIANTS[name])
        for name in ('kd', 'online', 'banked'))
    with tempfile.TemporaryDirectory() as root:
        cfg = merge_fragments(*online_cfg)
        if args.pair == 'digits':
            ckpt = args.teacher_ckpt or random_teacher(cfg, root)
        else:
            ckpt = write_dataset(args, cfg, root)
        kd, online, banked, banked_late = (
            build_variant(path, args, root, ckpt)
            for path in (kd_cfg, online_cfg, banked_cfg, banked_cfg))
        stock = build_variant(kd_cfg, args, root, ckpt, stock_kd=True)
        first_order = build_variant(
            online_cfg, args, root, ckpt,
            merge_fragments(*FIRST_ORDER).model.boundary.attack)
        schedule = [(STOCK, stock, 0.), (KD, kd, 0.),
                    ('AMKD online, BSS step, w=1', online, 1.),
                    ('AMKD online, first-order step, w=1', first_order, 1.),
                    ('AMKD banked, w=1', banked, 1.),
                    ('AMKD banked, w=0', banked_late, 0.)]
        # The first build binds the bank before the warm-up round.
        banks = [build_bank([banked, banked_late], root, args.device)]
        for _ in range(args.warmup):
            run_round(schedule, args.device, 0)
        rounds = []
        for r in range(args.repeats):
            if 0 < r < args.bank_repeats:
                banks.append(
                    build_bank([banked, banked_late], root, args.device))
            rounds.append(run_round(schedule, args.device, r))
        report(args, online.cfg, rounds, banks, len(kd.loader), load_start)


if __name__ == '__main__':
    main()
