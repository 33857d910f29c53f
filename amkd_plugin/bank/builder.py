# Copyright (c) amkd-mmrazor contributors.
import hashlib
import json
import os
import os.path as osp
import socket
import time
import uuid
from collections import Counter
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from mmengine.dataset import pseudo_collate
from mmengine.dist import (all_reduce, barrier, broadcast_object_list,
                           get_rank, get_world_size)
from mmengine.logging import print_log
from mmengine.utils import ProgressBar
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from amkd_plugin.models.task_modules import BoundaryAttack
from amkd_plugin.utils import UserValueError, eval_mode
from amkd_plugin.utils.dist import check_shared_folder, on_every_rank
from amkd_plugin.utils.pixels import from_pixels, pixel_bounds, to_pixels
from .bank_file import BITS, BoundaryBankFile, decode, encode

# Factors by which a change that rounding to levels carried over the
# boundary is stretched or shrunk back, smallest first
# (BoundaryBankBuilder._keep_sides).
STRETCH = (1.01, 1.02, 1.05, 1.1, 1.2, 1.5, 2.0)


class BoundaryBankBuilder:
    """Attack every training image once, before training: a boundary bank.

    The teacher is frozen, so the boundary sample of an image toward a
    class depends on the image and the class only. The builder runs
    :class:`BoundaryAttack` over the un-augmented training set and stores,
    per dataset index, in a :class:`BoundaryBankFile`:

    - the boundary image as what the attack changed in the clean image,
      in the dataset's own pixel space and channel order: 6-bit levels and
      a scale per sample (:func:`encode`; three quarters of a byte per
      value and target, where float32 images took four). The attack stops
      just past the boundary, so rounding the image itself put samples
      back on their own side (uint8 half of them, float16 a fifth);
      rounding the change moves each value by at most half a level, and a
      sample that it still carries over the boundary is stretched or
      shrunk along its change until it is back on the attack's side
      (:meth:`_keep_sides`);
    - its target class: with ``top_k=None`` one class drawn from the
      teacher's softmax over the classes other than the label, as the
      online attack draws it; with ``top_k=K`` the K classes the teacher
      ranks highest after the label, one image each, with the teacher's
      probabilities as weights, so training draws among them per step;
    - whether the teacher classified the clean image correctly (images it
      gets wrong are not attacked and never used);
    - whether the attack reached the boundary, judged on the stored image,
      and how many steps it took.

    How training uses the bank is :class:`BankedBoundary`'s part, which
    owns the builder and runs it before training (``BoundaryBankHook``).

    The bank lives at ``<root>/<key>`` where the key hashes the teacher's
    weights, the dataset and these settings: a second run reuses it, a
    changed teacher or setting builds a new one, and the log says which.
    Under distributed training every rank, on every machine, attacks
    whole batches in turn, each image's target drawn from a stream of
    (seed, index), into a shard of its own in the unfinished bank (the
    same bank for any process count); rank 0 copies the shards into the
    bank and commits it once they are done. The work dir must therefore be
    shared: every rank checks it sees what rank 0 writes there, and all
    stop with one line if not. A bank that every rank already sees (built
    ahead by ``tools/build_boundary_bank.py``) is reused as it is.

    Args:
        attack (BoundaryAttack): The attack of the build (its update rule,
            steps and seed; its ``max_ratio`` plays no part).
        top_k (int, optional): Bank the K runner-up classes instead of one
            sampled class. Defaults to None.
        batch_size (int): Images attacked at once. Defaults to 256.
        num_workers (int): Dataloader workers while building. Defaults to 0.
    """

    def __init__(self,
                 attack: BoundaryAttack,
                 top_k: Optional[int] = None,
                 batch_size: int = 256,
                 num_workers: int = 0) -> None:
        if top_k is not None and top_k < 1:
            raise UserValueError(f'top_k must be None or >= 1, got {top_k}.')
        self.attack = attack
        self.top_k = top_k
        self.batch_size = batch_size
        self.num_workers = num_workers

    def settings(self) -> Dict:
        """Everything besides teacher and data that shapes the bank."""
        return dict(**self.attack.settings(), top_k=self.top_k, format=7)

    def key(self, teacher: nn.Module, dataset_id: Dict) -> str:
        """Hash of the teacher's weights, the dataset and the settings."""
        weights = hashlib.sha256()
        for name, value in sorted(teacher.state_dict().items()):
            weights.update(name.encode())
            weights.update(value.detach().cpu().contiguous().numpy().tobytes())
        described = json.dumps(
            dict(teacher=weights.hexdigest(), dataset=dataset_id,
                 settings=self.settings()),
            sort_keys=True, default=str)
        return hashlib.sha256(described.encode()).hexdigest()[:16]

    def build(self, teacher: nn.Module, data_preprocessor: nn.Module,
              dataset: Dataset, dataset_id: Dict, root: str) -> str:
        """Build the bank unless one with the same key exists; its path.

        Args:
            teacher (nn.Module): The frozen teacher (``mode='tensor'``
                gives logits).
            data_preprocessor (nn.Module): Normalises a data batch as in
                training.
            dataset (Dataset): The training set with an un-augmented
                pipeline (its ``PackInputs`` output).
            dataset_id (dict): JSON-serialisable description of the dataset
                (type, root, split, pipeline), part of the key.
            root (str): Folder of the banks, usually under the work dir.

        Returns:
            str: The complete bank's folder.
        """
        path = osp.join(root, self.key(teacher, dataset_id))
        if on_every_rank(BoundaryBankFile.exists(path)):
            BoundaryBankFile.open(path)  # a damaged bank stops here, named
            print_log(f'Boundary bank: reusing {path}.', 'current')
            return path
        check_shared_folder(
            root, 'Every machine writes its part of the bank there: give '
            'every machine the same --work-dir on a shared filesystem, or '
            'build '
            'the bank ahead (tools/build_boundary_bank.py) and copy it into '
            'each machine\'s work dir.')
        rank = get_rank()
        # A build killed on this machine left its folder: finish the newest
        # one of this key (the key names teacher, dataset and settings, and
        # the rows of its recorded batches are final, see _fill) and remove
        # the others.
        taken_over = None
        if rank == 0:
            mine = BoundaryBankFile.stale_partials(root,
                                                   of=osp.basename(path))
            taken_over = max(mine, key=osp.getmtime) if mine else None
            stale = BoundaryBankFile.remove_stale_partials(root, taken_over)
            if stale:
                print_log(
                    'Boundary bank: removed the unfinished build(s) of '
                    f'processes that are gone: {", ".join(stale)}.',
                    'current')
        others = sorted(name for name in os.listdir(root)
                        if '.partial-' not in name) if osp.isdir(root) else []
        print_log(
            f'Boundary bank: building {path} ({len(dataset)} images, '
            f'{self.settings()})' +
            (f'; the banks in {root} ({", ".join(others)}) are for another '
             'teacher, dataset or setting' if others else '') + '.',
            'current')
        image_shape = tuple(dataset[0]['inputs'].permute(1, 2, 0).shape)
        bank, done = None, []
        if taken_over:
            bank = BoundaryBankFile.open_partial(taken_over, final_path=path)
            done = bank.progress()
            print_log(
                f'Boundary bank: resuming the killed build in {taken_over} '
                f'({sum(len(r["starts"]) for r in done)} batches of '
                f'{self.batch_size} done).', 'current')
        elif rank == 0:
            bank = BoundaryBankFile.create(
                path, len(dataset), self.top_k or 1, image_shape,
                teacher.head.num_classes,
                dict(dataset=dataset_id, settings=self.settings()))
        shared = [bank.partial_path if bank else None, done]
        broadcast_object_list(shared)
        partial, done = shared
        # Rank 0 alone carries the sums of the killed build into _report.
        sums = torch.tensor([r['sums'] for r in done] if rank == 0 and done
                            else [[0.] * 6], dtype=torch.float64).sum(0)
        # Whole batches go round the ranks of every machine, each into a
        # shard of its own (memory maps are coherent within one machine
        # only), so every image is attacked in the batch it has in a
        # single process: the same floats, the same bank, whatever the
        # process count, and whether or not the build was resumed.
        finished = {start for r in done for start in r['starts']}
        batches = [start for start in range(0, len(dataset), self.batch_size)
                   if start not in finished]
        mine = batches[rank::get_world_size()]
        start = time.perf_counter()
        shard = BoundaryBankFile.create_shard(
            partial,
            f'{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}',
            mine, self.batch_size)
        with eval_mode(teacher):  # BatchNorm statistics must not move
            sums += self._fill(shard, teacher, data_preprocessor, dataset,
                               mine, show_progress=rank == 0)
        self._report(sums)
        barrier()
        if rank == 0:
            seconds = time.perf_counter() - start
            counts = Counter(r['rank'] for r in bank.progress()
                             for _ in r['starts'])
            bank.commit(build=dict(seconds=round(seconds, 3),
                                   ranks=get_world_size(),
                                   resumed=bool(taken_over)))
            print_log(
                f'Boundary bank: attacked in {seconds:.1f} s by '
                f'{get_world_size()} rank(s); batches by rank: ' +
                ', '.join(f'{r}: {n}' for r, n in sorted(counts.items())) +
                '.', 'current')
        barrier()
        return path

    @torch.no_grad()
    def _fill(self, shard: BoundaryBankFile, teacher: nn.Module,
              data_preprocessor: nn.Module, dataset: Dataset,
              starts: List[int], show_progress: bool) -> Tensor:
        """Attack the batches beginning at ``starts`` into ``shard``.

        After each batch the rows are flushed and the progress recorded
        (:meth:`BoundaryBankFile.save_progress`), so a build killed at any
        point is resumed from its last finished batch.
        """
        indices = [i for start in starts
                   for i in range(start, min(start + self.batch_size,
                                             len(dataset)))]
        loader = DataLoader(
            Subset(dataset, indices), self.batch_size,
            num_workers=self.num_workers, collate_fn=pseudo_collate)
        progress = ProgressBar(len(indices)) if show_progress else None
        sums = torch.zeros(6, dtype=torch.float64)
        for k, data_batch in enumerate(loader):
            data = data_preprocessor(data_batch, False)
            images = data['inputs']
            labels = torch.cat([s.gt_label for s in data['data_samples']])
            index = np.arange(starts[k], starts[k] + len(images))
            clean = torch.stack(data_batch['inputs']).permute(0, 2, 3, 1)
            rows, batch_sums = self._attack_batch(teacher, data_preprocessor,
                                                  images, clean.numpy(),
                                                  labels, index)
            shard.write(index, **rows)
            sums += batch_sums
            shard.save_progress(dict(starts=starts[:k + 1],
                                     sums=sums.tolist(), rank=get_rank()))
            if progress:
                progress.update(len(images))
        return sums

    def _attack_batch(self, teacher: nn.Module, data_preprocessor: nn.Module,
                      images: Tensor, clean: np.ndarray, labels: Tensor,
                      index: np.ndarray
                      ) -> Tuple[Dict[str, np.ndarray], Tensor]:
        """The bank's rows for one batch, and sums for :meth:`_report`.

        ``images`` is the preprocessed batch, ``clean`` the same images as
        the pipeline gives them, ``(B, H, W, C)``.
        """

        def logits_of(pixels: np.ndarray) -> Tensor:
            x = torch.from_numpy(pixels).permute(0, 3, 1, 2)
            return teacher(from_pixels(x.to(images.device), data_preprocessor),
                           mode='tensor').float()

        bounds = pixel_bounds(data_preprocessor)
        logits = teacher(images, mode='tensor').float()
        correct = logits.argmax(1) == labels
        targets, weights = self._targets(labels, logits, index)
        wrong = ~correct.cpu().numpy()
        columns, sums = [], torch.zeros(6, dtype=torch.float64)
        for j in range(targets.size(1)):
            pair = torch.stack((labels, targets[:, j]), 1)

            def margin(z: Tensor) -> Tensor:
                b_and_k = z.gather(1, pair)
                return b_and_k[:, 0] - b_and_k[:, 1]

            # The attack enables gradients for its own steps; its last
            # pass on each sample gives the teacher's logits where it ended.
            adv, reached, steps, attacked = self.attack.attack_with_logits(
                lambda x: teacher(x, mode='tensor').float(), images, labels,
                targets[:, j], bounds)
            pixels = to_pixels(adv, data_preprocessor).permute(0, 2, 3, 1)
            pixels = pixels.cpu().numpy()
            # Images the teacher gets wrong are never used: keep them clean.
            pixels[wrong] = clean[wrong]
            delta, scale = encode(pixels, clean)
            scale, stored_logits = self._keep_sides(
                logits_of, clean, delta, scale, labels, correct,
                reached & correct)
            # Judge the image the student will see.
            reached_stored = stored_logits.argmax(1) != labels
            columns.append((delta, scale,
                            torch.where(correct[:, None], stored_logits,
                                        logits),
                            reached_stored & correct, steps * correct))
            sums += torch.stack([
                correct.sum(), (reached & correct).sum(),
                (reached_stored & correct).sum(),
                margin(logits)[correct].sum(),
                margin(attacked)[correct].sum(),
                margin(stored_logits)[correct].sum()
            ]).double().cpu()
        delta_, scale_, logits_, reached_, steps_ = zip(*columns)
        rows = dict(
            logits=torch.stack(logits_, 1),
            targets=targets, weights=weights, correct=correct,
            reached=torch.stack(reached_, 1),
            steps=torch.stack(steps_, 1).to(torch.int16))
        rows = {k: v.cpu().numpy() for k, v in rows.items()}
        return dict(rows, delta=np.stack(delta_, 1), scale=np.stack(scale_, 1),
                    clean=clean), sums

    @staticmethod
    def _keep_sides(logits_of: Callable[[np.ndarray], Tensor],
                    clean: np.ndarray, delta: np.ndarray, scale: np.ndarray,
                    labels: Tensor, attacked: Tensor, crossed: Tensor
                    ) -> Tuple[np.ndarray, Tensor]:
        """Scales that keep each attacked sample, as stored, on the side
        of the boundary where the attack left it, and the teacher's logits
        on the stored images.

        The attack leaves samples just past the boundary, or just short of
        it where it ran out of steps, so rounding the change to levels can
        carry a sample over. Such a
        sample's change is stretched (crossed) or shrunk (short), along its
        own direction, by the first factor of ``STRETCH`` that brings it
        back (a teacher pass over those few samples per factor): the
        stored share past the boundary stays the attack's.
        """
        logits = logits_of(decode(clean, delta, scale))
        toward = np.where(crossed.cpu().numpy(), 1., -1.)
        for factor in STRETCH:
            moved_over = (logits.argmax(1) != labels) != crossed
            wrong = (attacked & moved_over).cpu().numpy()
            if not wrong.any():
                break
            changed = (scale[wrong] * factor**toward[wrong]).astype(
                np.float32)
            moved = logits_of(decode(clean[wrong], delta[wrong], changed))
            back = ((moved.argmax(1) != labels[wrong]) ==
                    crossed[wrong]).cpu().numpy()
            rows = np.flatnonzero(wrong)[back]
            scale[rows] = changed[back]
            logits[torch.from_numpy(rows).to(logits.device)] = moved[
                torch.from_numpy(back).to(moved.device)]
        return scale, logits

    @staticmethod
    def _report(sums: Tensor) -> None:
        """Log how storage moved the samples, over all ranks."""
        all_reduce(sums, op='sum')
        count, reached, reached_stored, clean, adv, stored = sums.tolist()
        count = max(count, 1)
        print_log(
            f'Boundary bank: {100 * reached / count:.1f}% of the attacked '
            f'images reached the boundary, {100 * reached_stored / count:.1f}'
            f'% as stored ({BITS}-bit change); mean teacher margin z_b - z_k: '
            f'clean {clean / count:.3f}, attacked {adv / count:.3f}, stored '
            f'{stored / count:.3f}.', 'current')

    def _targets(self, labels: Tensor, logits: Tensor,
                 index: np.ndarray) -> Tuple[Tensor, Tensor]:
        """(targets, weights), both (N, K), of the images ``index``."""
        probs = logits.double().softmax(1).scatter(1, labels[:, None], 0.)
        if self.top_k is not None:
            weights, targets = probs.topk(self.top_k, dim=1)
            return targets, weights.float()
        # One draw from the teacher's softmax over c != y, as online, but
        # from a stream of its own per (seed, image): the same target
        # whichever process and batch the image falls in.
        draws = torch.tensor(
            [np.random.default_rng((self.attack.seed, int(i))).random()
             for i in index],
            dtype=torch.float64, device=probs.device)
        cumulative = probs.cumsum(1)
        target = torch.searchsorted(cumulative,
                                    draws[:, None] * cumulative[:, -1:],
                                    right=True).clamp_max(probs.size(1) - 1)
        # Where the draw lands past the last class of nonzero probability
        # by rounding, take that class, never y.
        target = torch.where(probs.gather(1, target) > 0, target,
                             (probs > 0).cumsum(1).argmax(1, keepdim=True))
        return target, torch.ones_like(target, dtype=torch.float32)
