# Copyright (c) amkd-mmrazor contributors.
"""Boundary pictures: draw boundary samples and how teacher and student
follow the boundary.

For the first held-out images the teacher classifies correctly (class
``b``), :class:`BoundaryFidelity`'s attack moves each image ``x`` toward
the teacher's runner-up class ``k`` until it just crosses the teacher's
decision boundary (``x_adv``); images it cannot move across in
``max_steps`` steps are skipped. One row per image shows

1. the clean image ``x``;
2. the boundary sample ``x_adv``;
3. the perturbation ``x_adv - x``, amplified so its largest absolute pixel
   value reaches full contrast and centred on grey (grey = no change; the
   gain is in the panel's title);
4. the teacher's (solid) and student's (dashed) softmax probabilities of
   ``b`` and ``k`` along ``x_t = clip(x + t (x_adv - x))`` for ``t`` in
   [0, 2]; the vertical line ``t = 1`` is the teacher's boundary.

A student that inherited the teacher's boundary has its curves cross near
``t = 1`` too. Everything is deterministic: the images are the first of
the (unshuffled) dataloader, the target is the teacher's runner-up and the
attack has no randomness.

The student and teacher are those of a distillation config
(``model.student``, ``model.teacher``); for a plain classifier config give
the teacher (``teacher=(CONFIG, CKPT)``).

:func:`draw_boundary_pictures` is what ``tools/analysis/boundary_pictures.py``
calls.
"""
import copy
import os
import os.path as osp
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.registry import MODELS, init_default_scope  # noqa: E402
from mmengine.runner import Runner  # noqa: E402
from torch import Tensor, nn  # noqa: E402

from amkd_plugin.checkpoints import (  # noqa: E402
    check_class_counts, load_model_checkpoint, load_teacher_checkpoint,
    resolve_model_config)
from amkd_plugin.models.task_modules import BoundaryFidelity  # noqa: E402
from amkd_plugin.utils import UserInputError  # noqa: E402
from amkd_plugin.utils.pixels import pixel_bounds, to_pixels  # noqa: E402

# Figure geometry: the PNG is FIG_WIDTH * dpi by ROW_HEIGHT * dpi * rows
# pixels (see figure_size).
FIG_WIDTH = 10.0
ROW_HEIGHT = 2.2


# ------------------------------------------------------------- the models


def build_teacher(config: str, checkpoint: str) -> nn.Module:
    """The classifier of ``config`` with ``checkpoint`` loaded strictly."""
    from mmrazor.registry import MODELS as RAZOR_MODELS
    teacher = RAZOR_MODELS.build(resolve_model_config(dict(cfg_path=config)))
    load_teacher_checkpoint(teacher, checkpoint, config)
    return teacher


def build_models(cfg: Config, config: str, checkpoint: str,
                 teacher: Optional[Sequence[str]] = None
                 ) -> Tuple[nn.Module, nn.Module, nn.Module]:
    """Build the config's model as the Runner does and load the checkpoint.

    Args:
        cfg (Config): The config, overrides merged.
        config (str): Its path, for messages.
        checkpoint (str): The checkpoint of ``cfg.model``.
        teacher (Sequence[str], optional): ``(config, checkpoint)`` of the
            teacher; required when ``cfg.model`` is a plain classifier.

    Returns:
        tuple: ``(model, student, teacher)``, in eval mode without
        parameter gradients; ``model.data_preprocessor`` preprocesses the
        batches.
    """
    model_cfg = copy.deepcopy(cfg.model)
    is_distill = 'architecture' in model_cfg
    if not is_distill and not teacher:
        raise UserInputError(
            f'{config} is a classifier config (model type '
            f'{model_cfg.get("type")}) and has no teacher: give one with '
            '--teacher CONFIG CHECKPOINT.')
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = MODELS.build(model_cfg)
    load_model_checkpoint(model, checkpoint, config)
    student = model.student if is_distill else model
    if teacher:
        teacher_model = build_teacher(*teacher)
        check_class_counts(student, teacher_model)
    else:
        teacher_model = model.teacher
    for module in (model, teacher_model):
        # MMRazor's algorithms' train() returns None: no chaining.
        module.eval()
        module.requires_grad_(False)
    return model, student, teacher_model


def build_dataloader(cfg: Config, split: str) -> Iterable:
    """The held-out dataloader, read in order by the main process."""
    key = f'{split}_dataloader'
    if cfg.get(key) is None:
        raise UserInputError(f'The config has no {key}; pick another '
                             '--split.')
    loader_cfg = copy.deepcopy(cfg[key])
    loader_cfg.update(
        sampler=dict(type='DefaultSampler', shuffle=False),
        num_workers=0,
        persistent_workers=False)
    return Runner.build_dataloader(loader_cfg)


# ------------------------------------------------------------ the numbers


def path_ts(points: int) -> List[float]:
    """``points`` evenly spaced values of t in [0, 2], plus 1.0."""
    if points < 2:
        raise UserInputError(f'--points must be at least 2, got {points}.')
    return sorted({2 * i / (points - 1) for i in range(points)} | {1.0})


@torch.no_grad()
def _path_probs(model: nn.Module, points: Tensor) -> Tensor:
    return model(points, mode='tensor').float().softmax(1).cpu()


def boundary_paths(student: nn.Module,
                   teacher: nn.Module,
                   data_preprocessor: nn.Module,
                   dataloader: Iterable,
                   num_images: int,
                   fidelity: BoundaryFidelity,
                   ts: Sequence[float] = tuple(path_ts(41))) -> List[Dict]:
    """Boundary samples of the first images and both models along the path.

    Images the teacher gets wrong, or whose attack does not reach the
    boundary, are skipped; the rest are taken in dataloader order until
    ``num_images`` are found or the dataloader ends.

    Args:
        student (nn.Module): Called as ``student(images, mode='tensor')``.
        teacher (nn.Module): Likewise.
        data_preprocessor (nn.Module): Preprocesses a data batch
            (``data_preprocessor(batch, False)``).
        dataloader (Iterable): Held-out data batches, in a fixed order.
        num_images (int): How many images to return at most.
        fidelity (BoundaryFidelity): Makes the boundary samples.
        ts (Sequence[float]): Points of the path.

    Returns:
        list[dict]: Per image, on the CPU: ``clean`` and ``adv``
        (preprocessed, (C, H, W)), ``b`` and ``k`` (int), ``ts`` ((T,)
        float64), ``teacher_probs`` and ``student_probs`` ((T, classes)
        softmax at ``x_t``), ``steps`` (attack steps) and ``sample_idx``
        (index in the dataset, or None).
    """
    bounds = pixel_bounds(data_preprocessor)

    def teacher_fn(images: Tensor) -> Tensor:
        return teacher(images, mode='tensor')

    results: List[Dict] = []
    for data_batch in dataloader:
        data = data_preprocessor(data_batch, False)
        images = data['inputs']
        samples = data['data_samples']
        labels = torch.cat([sample.gt_label for sample in samples])
        start = 0
        # Attack only as many images as still needed (the attack is per
        # image, so chunks give the same samples as the whole batch).
        while start < len(images) and len(results) < num_images:
            stop = start + num_images - len(results)
            boundary = fidelity.boundary_samples(teacher_fn,
                                                 images[start:stop],
                                                 labels[start:stop], bounds)
            for row in range(boundary.num):
                if not boundary.reached[row]:
                    continue
                clean = images[start + boundary.index[row]]
                adv = boundary.inputs[row]
                points = torch.cat([
                    fidelity.path_point(clean[None], adv[None], t, bounds)
                    for t in ts
                ])
                results.append(
                    dict(
                        clean=clean.cpu(),
                        adv=adv.cpu(),
                        b=int(boundary.source[row]),
                        k=int(boundary.target[row]),
                        ts=torch.tensor(ts, dtype=torch.float64),
                        teacher_probs=_path_probs(teacher, points),
                        student_probs=_path_probs(student, points),
                        steps=int(boundary.steps[row]),
                        sample_idx=samples[start + int(
                            boundary.index[row])].get('sample_idx')))
            start = stop
        if len(results) >= num_images:
            break
    return results


# ------------------------------------------------------------ the drawing


def display_pixels(images: Tensor, data_preprocessor: nn.Module,
                   bgr: bool = False) -> np.ndarray:
    """Preprocessed (N, C, H, W) images as (N, H, W, C) RGB in 0..255.

    :func:`to_pixels` gives the dataset's channel order; the model's input
    is RGB where the preprocessor swapped the channels (``to_rgb``), else
    in the dataset's order, shown as RGB unless ``bgr``.
    """
    mean = getattr(data_preprocessor, 'mean', None)
    if mean is not None:
        images = images.to(mean.device)
    pixels = to_pixels(images, data_preprocessor)
    swapped = (getattr(data_preprocessor, 'to_rgb', False)
               and pixels.size(1) == 3)
    if swapped != bgr:
        pixels = pixels.flip(1)
    return pixels.permute(0, 2, 3, 1).cpu().numpy()


def figure_size(num_rows: int, dpi: int) -> Tuple[int, int]:
    """(width, height) in pixels of the PNG of ``num_rows`` rows."""
    return round(FIG_WIDTH * dpi), round(ROW_HEIGHT * num_rows * dpi)


def _show(ax, pixels: np.ndarray, title: str) -> None:
    image = pixels / 255
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap='gray', vmin=0, vmax=1,
                  interpolation='nearest')
    else:
        ax.imshow(image, interpolation='nearest')
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def draw(paths: List[Dict], data_preprocessor: nn.Module, out: str,
         classes: Optional[Sequence[str]] = None, dpi: int = 100,
         bgr: bool = False) -> None:
    """Draw one row per entry of :func:`boundary_paths` into ``out``."""

    def name(label: int) -> str:
        return (f"'{classes[label]}'"
                if classes is not None and label < len(classes) else
                f'class {label}')

    fig = plt.figure(
        figsize=(FIG_WIDTH, ROW_HEIGHT * len(paths)), layout='constrained')
    grid = fig.add_gridspec(len(paths), 4, width_ratios=[1, 1, 1, 2.6])
    for row, path in enumerate(paths):
        clean, adv = display_pixels(
            torch.stack([path['clean'], path['adv']]), data_preprocessor,
            bgr)
        delta = adv - clean
        largest = float(np.abs(delta).max())
        gain = 127.5 / max(largest, 1e-6)
        b, k = path['b'], path['k']
        ts = path['ts'].numpy()
        at_one = int(np.argmin(np.abs(ts - 1)))
        boundary_label = int(path['teacher_probs'][at_one].argmax())
        where = (f' (#{path["sample_idx"]})'
                 if path.get('sample_idx') is not None else '')
        _show(fig.add_subplot(grid[row, 0]), clean,
              f'clean x{where}: {name(b)}')
        _show(fig.add_subplot(grid[row, 1]), adv,
              f'boundary x_adv ({path["steps"]} steps):\n'
              f'teacher says {name(boundary_label)}')
        ax = fig.add_subplot(grid[row, 2])
        _show(ax, np.clip(127.5 + gain * delta, 0, 255),
              f'x_adv \u2212 x, amplified \u00d7{gain:.0f}\n(grey = 0)')
        ax.set_xlabel(f'max |x_adv - x| = {largest:.1f}/255', fontsize=7)

        ax = fig.add_subplot(grid[row, 3])
        for who, style in (('teacher', '-'), ('student', '--')):
            probs = path[f'{who}_probs'].numpy()
            for label, colour in ((b, 'tab:blue'), (k, 'tab:red')):
                ax.plot(ts, probs[:, label], style, color=colour,
                        label=f'{who} P({name(label)})')
        ax.axvline(1.0, color='grey', linewidth=0.8, linestyle=':')
        ax.set_xlim(ts[0], ts[-1])
        ax.set_ylim(-0.02, 1.02)
        ax.tick_params(labelsize=7)
        ax.set_ylabel('softmax', fontsize=7)
        teacher_one = path['teacher_probs'][at_one]
        student_one = path['student_probs'][at_one]
        ax.set_title(
            f'b = {name(b)}, k = {name(k)}; at t = 1: teacher '
            f'{teacher_one[b]:.2f}/{teacher_one[k]:.2f}, student '
            f'{student_one[b]:.2f}/{student_one[k]:.2f}',
            fontsize=8)
        if row == len(paths) - 1:
            ax.set_xlabel('t along x + t (x_adv - x); t = 1: teacher\'s '
                          'boundary', fontsize=7)
        ax.legend(fontsize=6, loc='center left', ncol=2, framealpha=0.8)
    out_dir = osp.dirname(out)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)


# -------------------------------------------------------------- the call


def draw_boundary_pictures(config: str,
                           checkpoint: str,
                           out: str,
                           teacher: Optional[Sequence[str]] = None,
                           num_images: int = 4,
                           split: str = 'test',
                           max_steps: int = 30,
                           step_size: float = 0.3,
                           points: int = 41,
                           dpi: int = 100,
                           bgr: bool = False,
                           device: str = 'cpu',
                           cfg_options: Optional[dict] = None
                           ) -> Tuple[List[Dict], Tuple[int, int]]:
    """Attack the first held-out images, follow both models, draw ``out``.

    Args:
        config (str): A distillation or classifier config.
        checkpoint (str): Its checkpoint.
        out (str): The PNG to write.
        teacher (Sequence[str], optional): ``(config, checkpoint)`` of the
            teacher; required for a classifier config.
        num_images (int): Rows to draw.
        split (str): ``'test'`` or ``'val'``: the dataloader to read.
        max_steps (int): Attack steps (BoundaryFidelity's default: 30).
        step_size (float): Attack step size (its default: 0.3).
        points (int): Points of t in [0, 2] (t = 1 is one of them).
        dpi (int): PNG resolution.
        bgr (bool): The model's input channels are BGR.
        device (str): Where the models run.
        cfg_options (dict, optional): Overrides merged into the config.

    Returns:
        tuple: The paths drawn (see :func:`boundary_paths`) and the PNG's
        size in pixels.
    """
    if num_images < 1:
        raise UserInputError(
            f'--num-images must be at least 1, got {num_images}.')
    if dpi < 1:
        raise UserInputError(f'--dpi must be at least 1, got {dpi}.')
    ts = path_ts(points)
    cfg = Config.fromfile(config)
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    model, student, teacher_model = build_models(cfg, config, checkpoint,
                                                 teacher)
    model.to(device), teacher_model.to(device)
    dataloader = build_dataloader(cfg, split)
    fidelity = BoundaryFidelity(
        attack=dict(
            type='BoundaryAttack', max_steps=max_steps,
            step_size=step_size))
    paths = boundary_paths(student, teacher_model, model.data_preprocessor,
                           dataloader, num_images, fidelity, ts)
    if not paths:
        raise UserInputError(
            f'No {split} image that the teacher classifies correctly '
            f'reached its boundary within {max_steps} attack steps: '
            'raise the attack\'s max_steps (--max-steps) or step size '
            '(--step-size).')
    classes = dataloader.dataset.metainfo.get('classes')
    draw(paths, model.data_preprocessor, out, classes, dpi, bgr)
    return paths, figure_size(len(paths), dpi)


def path_summary(path: Dict) -> str:
    """One line of a path: classes, steps, both models' P(b)/P(k) at t=1."""
    at_one = int(np.argmin(np.abs(path['ts'].numpy() - 1)))
    b, k = path['b'], path['k']
    t1, s1 = path['teacher_probs'][at_one], path['student_probs'][at_one]
    return (f'#{path["sample_idx"]}: b={b} k={k} steps={path["steps"]} '
            f'at t=1 P(b)/P(k): teacher {t1[b]:.3f}/{t1[k]:.3f}, '
            f'student {s1[b]:.3f}/{s1[k]:.3f}')
