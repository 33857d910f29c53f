# Copyright (c) amkd-mmrazor contributors.
"""What a training epoch and the bank build cost: stock KD vs online vs
banked AMKD, measured side by side (``tools/analysis/benchmark_bank.py``).

In one process, for ResNet56 -> ResNet20 on CIFAR-100 (``pair='cifar100'``),
the digits demo's ResNet20 -> ResNet8 (``'digits'``) or the Fashion-MNIST
benchmark's ResNet20 -> ResNet8 with its committed teacher
(``'fashion_mnist'``, real training images): stock MMRazor KD
(``SingleTeacherDistill`` + ``ConfigurableDistiller`` + ``KLDivergence`` at
tau 4 on the same networks, the baseline of every ratio), KD as AMKD at
boundary weight 0 (the pair with ``configs/experiments/logits/no_ls.py``
and ``sources/online_bss.py``), online AMKD with BSS's step (the pair with
``sources/online_bss.py``) and with the first-order step (the attack of the
digits pair with ``sources/online_newton_box.py``), and banked AMKD (the pair
config) with the same teacher, batch size and recipe (optimiser, train
pipeline, dataloader). The bank is built as the training hook builds it
(``build_boundary_bank``, over the un-augmented training set); then each
round runs one epoch of every variant in lockstep, one ``train_step`` (the
Runner's step without hooks) of each in turn, so load changes hit all
alike; an epoch is the sum of its steps' medians over the rounds. Epochs
run at boundary weight 1 (attack phase) or 0 (last quarter, no attack):
online AMKD at 0 is a KD step (the KD config's model and dataloader; the
default's logit standardization adds two z-scorings of the logits), banked
AMKD at 0 reads no bank. Batches load in the main process
(``num_workers=0``) so that each variant's loading counts in its own time.
The bank's size, its share past the boundary as stored and the bank bytes
the banked epoch read are printed beside the times.

For CIFAR-100 the data is written in its python-pickle layout: N random
images or the first N of ``data_root``, each labelled with the teacher's
class; digits and Fashion-MNIST are the first N real training images and
labels; the attack takes the largest disagreements whether or not the
student is right (``SteadyStateAttack``), as in steady training. A random
teacher (``teacher_ckpt`` takes a trained one) is rarely pushed across its
boundary within ``max_steps``: every attack, online or banked, runs all its
steps, the most it can cost, while a trained teacher shows the typical
case. The whole-run projection scales all times by the training set's size
over N (constant cost per image).
"""
import argparse
import os
import os.path as osp
import pickle
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from types import SimpleNamespace
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

from amkd_plugin.bank import BoundaryBankFile, build_boundary_bank
from amkd_plugin.checkpoints import (load_teacher_checkpoint,
                                     resolve_model_config)
from amkd_plugin.utils import use_amp
from amkd_plugin.utils.dist import free_port
from amkd_plugin.utils.fragments import merge_fragments
from amkd_plugin.utils.pixels import from_pixels
from .benchmark import (SteadyStateAttack, load_average, random_teacher,
                        sync_device)

PAIRS = dict(
    cifar100='configs/amkd/resnet56_resnet20_cifar100.py',
    digits='configs/amkd/resnet20_resnet8_digits.py',
    fashion_mnist='configs/amkd/resnet20_resnet8_fashion_mnist_lowdata.py')
# The trained teachers committed with the project.
TEACHERS = dict(
    fashion_mnist='results/fashion_mnist/teacher/resnet20_fashion_mnist.pth')
NO_LS = 'configs/experiments/logits/no_ls.py'
ONLINE_BSS = 'configs/experiments/sources/online_bss.py'
# variant -> fragments merged onto the pair: KD (AMKD at weight 0, as
# configs/kd/), online AMKD with BSS's step and AMKD (the bank).
VARIANTS = dict(kd=[NO_LS, ONLINE_BSS], online=[ONLINE_BSS], banked=[])
FIRST_ORDER = ('configs/amkd/resnet20_resnet8_digits.py',
               [NO_LS, 'configs/experiments/sources/online_newton_box.py'])
TRAIN_SIZES = dict(cifar100=50000, digits=1347, fashion_mnist=3000)
STOCK, KD = 'KD, stock MMRazor', 'KD (AMKD at weight 0)'
BANKED = 'AMKD banked, w=1'
# Stock MMRazor KD (SingleTeacherDistill + KLDivergence); its distiller.
STOCK_KD = 'configs/kd/resnet20_resnet8_fashion_mnist_lowdata.py'


def write_dataset(args: argparse.Namespace, cfg: Config, root: str) -> str:
    """Write the CIFAR-100 copy, labelled by the teacher; the checkpoint."""
    from mmpretrain.registry import MODELS
    torch.manual_seed(0)
    teacher = MODELS.build(Config.fromfile(cfg.model.teacher.cfg_path).model)
    ckpt = args.teacher_ckpt or random_teacher(cfg.model.teacher, root)
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
    elif args.pair == 'fashion_mnist':
        # The first N training images (the pair's subset drawn from them).
        loader.dataset = dict(loader.dataset.dataset, indices=args.num_images)
        cfg.train_dataloader = loader
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
    """Build a bank as the hook does, in a fresh work dir, and bind it;
    its build time and what it stores."""
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
    correct = np.asarray(bank['correct'])
    values = bank.num * bank.num_targets * int(np.prod(bank.image_shape))
    stored = sum(os.path.getsize(osp.join(path, name))
                 for name in os.listdir(path))
    return dict(time=elapsed, correct=float(correct.mean()),
                steps=float(bank['steps'][correct].mean()) if correct.any()
                else 0.,
                reached=float(bank['reached'][correct].mean())
                if correct.any() else 0.,
                bytes=stored, bytes_per_value=stored / values,
                dataset_bytes=bank.num * int(np.prod(bank.image_shape)),
                row_bytes=row_bytes(bank))


def time_builds(cfg: Config, root: str,
                ranks: Sequence[int]) -> Dict[int, float]:
    """The bank build's wall time on each number of processes.

    ``tools/build_boundary_bank.py`` of the banked config under torchrun
    (``tools/dist_run.sh``, gloo, one torch thread a process), each into a
    fresh work dir; the time is the builder's own (its ``build`` record:
    from the first attack until every rank is done, imports and process
    start aside).
    """
    config = osp.join(root, 'build_config.py')
    cfg.dump(config)
    seconds = {}
    for count in ranks:
        work_dir = tempfile.mkdtemp(dir=root)
        subprocess.run(
            ['bash', 'tools/dist_run.sh', str(count), 'build_boundary_bank.py',
             config, '--work-dir', work_dir, '--launcher', 'pytorch',
             '--cfg-options', 'env_cfg.dist_cfg.backend=gloo'],
            check=True, capture_output=True,
            env={**os.environ, 'OMP_NUM_THREADS': '1',
                 'PORT': str(free_port()), 'PYTHON': sys.executable})
        bank, = os.listdir(osp.join(work_dir, 'boundary_bank'))
        seconds[count] = BoundaryBankFile.open(
            osp.join(work_dir, 'boundary_bank', bank)).build['seconds']
    return seconds


def count_reads(boundary) -> Dict[str, int]:
    """Count the bank rows a banked source reads from now on (its
    ``rows``); each step also reads one ``correct`` byte per image."""
    bank = boundary.bank
    counts = dict(rows=0)
    read = bank.read

    def counted(indices, *args):
        counts['rows'] += len(indices)
        return read(indices, *args)

    bank.read = counted
    return counts


def row_bytes(bank: BoundaryBankFile) -> int:
    """Bytes of one (index, target) row the step reads: its change, scale,
    logits, target, reached flag and the image's checksum."""
    return sum(bank[name][0, 0].nbytes
               for name in ('delta', 'scale', 'logits', 'targets', 'reached')
               ) + bank['checksum'][0].nbytes


def report(args: argparse.Namespace, cfg: Config, rounds: List[Dict],
           banks: List[Dict], builds: Dict[int, float], num_steps: int,
           load_start: str, teacher: str) -> None:
    """Print the setup, the epoch and bank times and the projection
    (``teacher``: the checkpoint, or how it was made; ``builds``: the
    build's seconds by process count)."""
    epochs = {name: [r[name] for r in rounds] for name in rounds[0]}
    # An epoch is the sum over its steps of each step's median over the
    # rounds: a burst of load spoils one sample, not a whole epoch.
    e = {name: sum(map(statistics.median, zip(*(r['times'] for r in runs))))
         for name, runs in epochs.items()}
    bank = statistics.median(b['time'] for b in banks)
    images = (f'images of {args.data_root}' if args.data_root else
              'random images' if args.pair == 'cifar100' else
              'training images')
    print(f'\ncommand: python {shlex.join(sys.argv)}')
    amp = ' (AMP)' if args.amp else ''
    print(f'{cfg.model.teacher.cfg_path} -> '
          f'{cfg.model.architecture.cfg_path}, {args.pair}, {args.num_images} '
          f'{images}, batch {args.batch_size}, device {args.device}{amp}, '
          f'torch {torch.__version__}, threads {torch.get_num_threads()}, '
          f'dataloader workers {args.num_workers}, teacher '
          f'{teacher}; per-step medians of '
          f'{args.repeats} rounds after {args.warmup} warm-up round(s)')
    if args.fragments:
        print('banked AMKD: the pair with ' + ', '.join(args.fragments))
    print(f'load average (1/5/15 min): start {load_start}; '
          f'end {load_average()}')
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
    if builds:
        one = builds.get(1)
        print('bank build by process count (torchrun, gloo, 1 torch thread '
              'each): ' + ', '.join(
                  f'{count}: {seconds:.2f} s' +
                  (f' ({seconds / one:.2f}x)' if one and count > 1 else '')
                  for count, seconds in builds.items()))
    first = banks[0]
    print(f'bank storage: {first["bytes"] / 1e6:.2f} MB for '
          f'{args.num_images} images, {first["bytes_per_value"]:.3f} bytes '
          'per pixel value and target (the images\' own uint8: '
          f'{first["dataset_bytes"] / 1e6:.2f} MB); past the boundary as '
          f'stored: {first["reached"]:.1%} of the images the teacher gets '
          'right')
    rows = statistics.mean(r[BANKED]['rows'] for r in rounds)
    read = rows * first['row_bytes'] + args.num_images * 1
    print(f'bank bytes read per epoch (w=1): {read / 1e6:.3f} MB = '
          f'{read / first["bytes"]:.1%} of the bank ({rows:.0f} rows of '
          f'{first["row_bytes"]} bytes, {rows / args.num_images:.0%} of the '
          'images, and one `correct` byte per image)')
    imagenet = BoundaryBankFile.nbytes(1281167, 1, (224, 224, 3), 1000)
    print(f'ImageNet-1k on paper (1,281,167 images of 224 x 224 x 3, 1000 '
          f'classes): {imagenet / 1e9:.0f} GB, '
          f'{imagenet / (1281167 * 224 * 224 * 3):.3f} bytes per value')

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
        bank + attack * e[BANKED] + late * e['AMKD banked, w=0'],
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
    step = e[BANKED] / e[STOCK]
    targets = [('banked run', ratio, 1.15, 'stock KD'),
               ('banked step', step, 1.15, 'stock KD')]
    if 1 in builds and 2 in builds:
        targets.append(('2-process build', builds[2] / builds[1], 0.65,
                        '1 process'))
    print('targets: ' + '; '.join(
        f'{name} <= {limit}x {base}: '
        f'{"met" if value <= limit else "missed"} ({value:.2f}x)'
        for name, value, limit, base in targets))


def benchmark_bank(args: argparse.Namespace) -> None:
    """Measure and print everything above.

    Args:
        args (argparse.Namespace): ``tools/analysis/benchmark_bank.py``'s
            options: ``pair``, ``device``, ``amp``, ``num_images``,
            ``batch_size``, ``repeats``, ``bank_repeats``, ``warmup``,
            ``threads``, ``num_workers``, ``data_root``, ``teacher_ckpt``,
            ``build_ranks`` and ``fragments`` (merged onto the banked
            variants' pair config).
    """
    if args.threads:
        torch.set_num_threads(args.threads)
    load_start = load_average()
    kd_cfg, online_cfg = ((PAIRS[args.pair], VARIANTS[name])
                          for name in ('kd', 'online'))
    # A banked form measured in place of the default (e.g. fewer boundary
    # samples per batch, configs/experiments/sources/ratio_eighth.py).
    banked_cfg = (PAIRS[args.pair], VARIANTS['banked'] + list(args.fragments))
    with tempfile.TemporaryDirectory() as root:
        cfg = merge_fragments(*online_cfg)
        if args.pair == 'cifar100':
            ckpt = write_dataset(args, cfg, root)
        else:
            ckpt = args.teacher_ckpt or TEACHERS.get(args.pair) or \
                random_teacher(cfg.model.teacher, root)
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
                    (BANKED, banked, 1.),
                    ('AMKD banked, w=0', banked_late, 0.)]
        # The first build binds the bank before the warm-up round.
        banks = [build_bank([banked, banked_late], root, args.device)]
        reads = count_reads(banked.algorithm.boundary)
        for _ in range(args.warmup):
            run_round(schedule, args.device, 0)
        rounds = []
        for r in range(args.repeats):
            if 0 < r < args.bank_repeats:
                banks.append(
                    build_bank([banked, banked_late], root, args.device))
                reads = count_reads(banked.algorithm.boundary)
            before = reads['rows']
            rounds.append(run_round(schedule, args.device, r))
            rounds[-1][BANKED]['rows'] = reads['rows'] - before
        builds = time_builds(banked.cfg, root, args.build_ranks)
        report(args, online.cfg, rounds, banks, builds, len(kd.loader),
               load_start,
               'random weights' if ckpt.startswith(root) else ckpt)
