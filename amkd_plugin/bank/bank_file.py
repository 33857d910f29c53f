# Copyright (c) amkd-mmrazor contributors.
"""On-disk format of a boundary bank: memory-mapped ``.npy`` arrays."""
import json
import os
import os.path as osp
import re
import shutil
import socket
import uuid
import zlib
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from amkd_plugin.utils import (DiskFullError, UserValueError, reserve,
                               write_atomically)

# name -> (dtype, shape after the leading N) of every array of a bank.
# ``None`` in a shape stands for K, ``'packed'`` for the bytes of one
# image's packed levels, ``'classes'`` for the teacher's class count.
ARRAY_SPECS = {
    'delta': (np.uint8, (None, 'packed')),
    'scale': (np.float32, (None, )),
    'checksum': (np.uint32, ()),
    'logits': (np.float32, (None, 'classes')),
    'targets': (np.int64, (None, )),
    'weights': (np.float32, (None, )),
    'correct': (np.bool_, ()),
    'reached': (np.bool_, (None, )),
    'steps': (np.int16, (None, )),
}
META_FILE = 'meta.json'
# An unfinished bank's writers: each its own folder of arrays, its layout
# and its record of what it has written.
SHARD_PREFIX = 'shard-'
LAYOUT_FILE = 'layout.json'
PROGRESS_FILE = 'progress.json'
# 5: the attack's change in 6-bit levels, packed (4: in int8, over the
# dataset's own size once the logits are added; 3: float32 images and the
# teacher's logits; 2: float32 images; 1: uint8 images, whose rounding put
# half of the Fashion-MNIST boundary samples back on their own side).
FORMAT_VERSION = 5
# Bits per stored value of the change: the most that keep a whole bank,
# logits and all, within the dataset's own uint8 size at 100 classes of
# 32x32x3 (7 bits: 1.01 bytes per value).
BITS = 6
# Levels of the change on each side of zero.
LEVELS = 2**(BITS - 1) - 1

Rng = Union[np.random.Generator, np.random.RandomState]


def damaged(path: str, what: str) -> UserValueError:
    """The error for a committed bank whose files contradict its meta.json,
    with what the user can do about it."""
    return UserValueError(
        f'Boundary bank {path} is damaged: {what}. Delete the folder and '
        'train again, which rebuilds it, or rebuild it ahead with `python '
        'tools/build_boundary_bank.py CONFIG` and the training\'s options.')


def encode(images: np.ndarray,
           clean: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """What the attack changed, as stored: levels and a scale each.

    ``delta = round((images - clean) / scale)`` with ``scale`` the largest
    change of the sample over :data:`LEVELS`, so each value is off by at
    most ``scale / 2``; :func:`decode` inverts it, :func:`pack` stores the
    levels in :data:`BITS` bits each.

    Args:
        images (np.ndarray): ``(..., H, W, C)`` float32 boundary pixels.
        clean (np.ndarray): The clean images they were made from,
            broadcastable to ``images``.

    Returns:
        tuple: ``delta`` (int8 in ``[-LEVELS, LEVELS]``, the shape of
        ``images``) and ``scale``
        (float32, ``images.shape[:-3]``; 0 for an unchanged image).
    """
    change = images.astype(np.float32) - clean.astype(np.float32)
    scale = (np.abs(change).max(axis=(-3, -2, -1)) / LEVELS).astype(
        np.float32)
    levels = np.divide(change, scale[..., None, None, None],
                       out=np.zeros_like(change),
                       where=scale[..., None, None, None] > 0)
    return np.rint(levels).clip(-LEVELS, LEVELS).astype(np.int8), scale


def decode(clean: np.ndarray, delta: np.ndarray,
           scale: np.ndarray) -> np.ndarray:
    """The stored boundary image: ``clip(clean + scale * delta, 0, 255)``.

    The builder judges exactly these floats with the teacher, and training
    reads exactly these, on any machine (float32 products and sums, one
    rounding each).

    Args:
        clean (np.ndarray): ``(..., H, W, C)`` clean pixels (any dtype).
        delta (np.ndarray): int8 levels, broadcastable with ``clean``.
        scale (np.ndarray): float32 scales, ``delta.shape[:-3]``.

    Returns:
        np.ndarray: float32 pixels in 0..255.
    """
    change = delta.astype(np.float32) * np.asarray(
        scale, np.float32)[..., None, None, None]
    return np.clip(clean.astype(np.float32) + change, 0, 255)


def pack(delta: np.ndarray) -> np.ndarray:
    """Levels of :func:`encode`, :data:`BITS` bits each, big-endian.

    Args:
        delta (np.ndarray): ``(..., H, W, C)`` int8 in
            ``[-LEVELS, LEVELS]``.

    Returns:
        np.ndarray: ``(..., ceil(H * W * C * BITS / 8))`` uint8.
    """
    flat = delta.reshape(*delta.shape[:-3], -1)
    offset = (flat.astype(np.int16) + LEVELS).astype(np.uint8)
    bits = np.unpackbits(offset[..., None], axis=-1)[..., 8 - BITS:]
    return np.packbits(bits.reshape(*flat.shape[:-1], -1), axis=-1)


def unpack(packed: np.ndarray, image_shape: Sequence[int]) -> np.ndarray:
    """The int8 levels that :func:`pack` stored.

    Args:
        packed (np.ndarray): ``(..., P)`` uint8 of :func:`pack`.
        image_shape (Sequence[int]): The image shape (H, W, C).

    Returns:
        np.ndarray: ``(..., H, W, C)`` int8.
    """
    count = int(np.prod(image_shape))
    bits = np.unpackbits(packed, axis=-1, count=count * BITS)
    bits = bits.reshape(*packed.shape[:-1], count, BITS)
    offset = np.packbits(bits, axis=-1)[..., 0] >> (8 - BITS)
    return (offset.astype(np.int16) - LEVELS).astype(np.int8).reshape(
        *packed.shape[:-1], *image_shape)


def checksum(clean: np.ndarray) -> np.ndarray:
    """CRC-32 of each clean ``(H, W, C)`` image of ``(B, H, W, C)``: ties a
    stored change to the image it is added to."""
    return np.array([zlib.crc32(np.ascontiguousarray(image).tobytes())
                     for image in clean], dtype=np.uint32)


def draw_targets(weights: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Which of the K banked targets each row uses.

    Target j of a row is taken with probability ``weights[j]`` over the
    row's sum (clipped at 0; uniformly if the sum is 0), by inverting the
    cumulative weights at ``draws``.

    Args:
        weights (np.ndarray): ``(M, K)`` target weights.
        draws (np.ndarray): ``(M,)`` uniform numbers in [0, 1).

    Returns:
        np.ndarray: ``(M,)`` int64 column indices.
    """
    cumulative = np.cumsum(np.clip(weights.astype(np.float64), 0, None), 1)
    empty = ~(cumulative[:, -1] > 0)
    cumulative[empty] = np.arange(1.0, weights.shape[1] + 1)
    below = cumulative <= (np.asarray(draws, np.float64) *
                           cumulative[:, -1])[:, None]
    return np.minimum(below.sum(1), weights.shape[1] - 1).astype(np.int64)


class BoundaryBankFile:
    """A boundary bank: one boundary image per (dataset index, target) pair.

    A bank is a directory of ``.npy`` files, read through memory maps so that
    every dataloader worker shares the page cache instead of a private copy
    (N = dataset length, K = targets per image, (H, W, C) = the dataset's
    own image shape)::

        delta    (N, K, P)       uint8    what the attack changed in the
                                          clean image, in levels of
                                          :data:`BITS` bits, packed
                                          (:func:`pack`)
        scale    (N, K)          float32  ... this many pixel values
                                          each (:func:`encode`,
                                          :func:`decode`)
        checksum (N,)            uint32   CRC-32 of the clean image the
                                          change is added to
        logits   (N, K, C)       float32  the teacher's logits on the
                                          stored image (C classes)
        targets  (N, K)          int64    target class of each image
        weights  (N, K)          float32  teacher probability of each target
        correct  (N,)            bool     teacher classified the clean image
        reached  (N, K)          bool     the stored image is past the
                                          boundary
        steps    (N, K)          int16    attack passes used
        meta.json                         shapes, format version and the
                                          builder's ``meta``; written LAST

    A boundary image is the clean image, which the training pipeline has
    anyway, plus the stored change: three quarters of a byte per pixel
    value, so that with the teacher's logits and the rest the bank stays
    within the dataset's own uint8 size. Training reads
    ``correct`` for every image of a batch and the rows of the few it
    selects (:meth:`read`).

    A bank is complete iff ``meta.json`` exists, so a crash never leaves a
    directory that :meth:`open` accepts (only a ``*.partial-*`` folder, which
    is safe to delete).

    Writing (one or many processes, on one or many machines):

    1. Rank 0 calls :meth:`create`, which makes the writable arrays in a
       temporary directory ``<path>.partial-<host>-<pid>-<random>`` (a
       private name, so concurrent builders never share files).
    2. Rank 0 broadcasts :attr:`partial_path`; every rank, rank 0 too,
       calls :meth:`create_shard` there for the batches it attacks: a
       folder of arrays of its own, which no other process writes.
    3. Every rank writes its rows into its shard (:meth:`write`), recording
       each finished batch (:meth:`save_progress`); barrier.
    4. Rank 0 calls :meth:`commit`: copy every shard's recorded batches
       into the arrays, flush, write ``meta.json``, then rename the
       directory to ``path`` atomically. If a concurrent builder committed
       ``path`` first, its bank is kept and ours is deleted.

    Memory maps of one file stay coherent between the processes of one
    machine only (NFS does not promise coherent ``mmap`` writes, and
    neighbouring rows share pages), so no two processes write one file:
    ranks on other machines write their shards on the shared filesystem,
    and rank 0 reads them after the barrier.

    Do not construct directly; use :meth:`create`, :meth:`open_partial` or
    :meth:`open`.

    Args:
        path (str): The directory the arrays live in.
        arrays (dict[str, np.ndarray]): The memory-mapped arrays.
        meta (dict): The builder's metadata.
        writable (bool): Whether the arrays are writable.
        final_path (str, optional): Where :meth:`commit` moves a writable
            bank. Defaults to None.
    """

    def __init__(self,
                 path: str,
                 arrays: Dict[str, np.ndarray],
                 meta: dict,
                 writable: bool,
                 final_path: Optional[str] = None) -> None:
        self.path = path
        self._arrays = arrays
        self._meta = meta
        self._writable = writable
        self._final_path = final_path
        # A shard's row of each dataset index (-1: another writer's).
        self._rows: Optional[np.ndarray] = None

    # --- shape helpers ---------------------------------------------------

    @staticmethod
    def _shapes(num: int, num_targets: int, image_shape: Sequence[int],
                num_classes: int) -> Dict[str, Tuple[int, ...]]:
        """The expected shape of every array."""
        packed = -(-int(np.prod(image_shape)) * BITS // 8)
        dims = {None: [num_targets], 'packed': [packed],
                'classes': [num_classes]}
        return {
            name: (num, *(d for dim in tail for d in dims[dim]))
            for name, (_, tail) in ARRAY_SPECS.items()
        }

    @classmethod
    def nbytes(cls, num: int, num_targets: int, image_shape: Sequence[int],
               num_classes: int) -> int:
        """The bytes of a bank of these shapes (its arrays, headers aside):
        what it takes on disk, e.g. for a dataset not at hand."""
        return sum(
            int(np.prod(shape)) * np.dtype(ARRAY_SPECS[name][0]).itemsize
            for name, shape in cls._shapes(num, num_targets, image_shape,
                                           num_classes).items())

    @staticmethod
    def _partial_of(path: str) -> str:
        """A fresh folder next to ``path`` (same filesystem, so the final
        rename is atomic) for one writer's arrays until :meth:`commit`."""
        return (f'{path}.partial-{socket.gethostname()}-{os.getpid()}-'
                f'{uuid.uuid4().hex[:8]}')

    @staticmethod
    def stale_partials(root: str, of: Optional[str] = None) -> List[str]:
        """The unfinished builds in ``root`` whose process is gone.

        A build killed before :meth:`commit` leaves its
        ``<bank>.partial-<host>-<pid>-*`` folder (:meth:`_partial_of`).
        Only folders of this machine are judged (another machine's
        processes cannot be seen from here); one whose process still runs,
        or whose pid a new process took, is not stale.

        Args:
            root (str): The folder of the banks.
            of (str, optional): Only the builds of this bank (its folder
                name). Defaults to None: every bank's.
        """
        host = re.escape(socket.gethostname())
        bank = '.+' if of is None else re.escape(of)
        return [
            osp.join(root, name)
            for name in (sorted(os.listdir(root)) if osp.isdir(root) else [])
            if (match := re.fullmatch(
                rf'{bank}\.partial-{host}-(\d+)-[0-9a-f]{{8}}', name))
            and not _process_runs(int(match.group(1)))
        ]

    @classmethod
    def remove_stale_partials(cls, root: str,
                              keep: Optional[str] = None) -> List[str]:
        """Remove the :meth:`stale_partials` of ``root`` except ``keep``;
        returns those removed."""
        removed = [path for path in cls.stale_partials(root) if path != keep]
        for path in removed:
            shutil.rmtree(path, ignore_errors=True)
        return removed

    # --- creation and writing --------------------------------------------

    @classmethod
    def create(cls,
               path: str,
               num: int,
               num_targets: int,
               image_shape: Sequence[int],
               num_classes: int,
               meta: Optional[dict] = None) -> 'BoundaryBankFile':
        """Make a writable, zero-filled bank in a private temporary folder.

        Args:
            path (str): Where :meth:`commit` will put the complete bank.
            num (int): Dataset length N.
            num_targets (int): Targets per image K.
            image_shape (Sequence[int]): The dataset's image shape
                (H, W, C), as in ``results['img'].shape``.
            num_classes (int): The teacher's class count C.
            meta (dict, optional): JSON-serialisable metadata of the
                builder (dataset, teacher, attack settings ...). Defaults to
                None.

        Returns:
            BoundaryBankFile: The writable bank; see :attr:`partial_path`.
        """
        if (num <= 0 or num_targets <= 0 or num_classes <= 0
                or len(image_shape) != 3):
            raise ValueError(
                'Need num > 0, num_targets > 0, num_classes > 0 and '
                f'image_shape (H, W, C); got {num}, {num_targets}, '
                f'{num_classes}, {tuple(image_shape)}.')
        partial = cls._partial_of(path)
        arrays = cls._new_arrays(
            partial, cls._shapes(num, num_targets, image_shape, num_classes),
            path)
        full_meta = dict(
            format_version=FORMAT_VERSION,
            num=int(num),
            num_targets=int(num_targets),
            image_shape=[int(d) for d in image_shape],
            num_classes=int(num_classes),
            meta=dict(meta or {}))
        # Other ranks read the shapes from here in open_partial; meta.json
        # itself is written only by commit().
        with open(osp.join(partial, 'partial_meta.json'), 'w') as f:
            json.dump(full_meta, f)
        return cls(partial, arrays, full_meta, writable=True, final_path=path)

    @staticmethod
    def _new_arrays(folder: str, shapes: Dict[str, Tuple[int, ...]],
                    path: str) -> Dict[str, np.ndarray]:
        """Writable, zero-filled arrays of ``shapes`` in a new ``folder``,
        their disk space reserved (for the bank at ``path``)."""
        os.makedirs(folder)
        arrays = {
            name: np.lib.format.open_memmap(
                osp.join(folder, f'{name}.npy'), mode='w+',
                dtype=ARRAY_SPECS[name][0], shape=shape)
            for name, shape in shapes.items()
        }
        # The maps are sparse: a full disk would meet the build as SIGBUS
        # at some image; reserved now, it is one line before any attack.
        needed = sum(array.nbytes for array in arrays.values())
        try:
            for name in arrays:
                reserve(osp.join(folder, f'{name}.npy'), '')
        except DiskFullError:
            arrays.clear()  # unmap before the folder goes
            shutil.rmtree(folder, ignore_errors=True)
            raise DiskFullError(
                path, needed, 'Free space there, or build the bank on a '
                'larger disk (--work-dir), then run the same command again.'
            ) from None
        return arrays

    @classmethod
    def create_shard(cls, partial_path: str, writer: str,
                     starts: Sequence[int],
                     batch_size: int) -> 'BoundaryBankFile':
        """A writer's own arrays in an unfinished bank, for its batches.

        Args:
            partial_path (str): :attr:`partial_path` of the bank.
            writer (str): A name unique to the writing process.
            starts (Sequence[int]): The first dataset index of each batch
                it writes.
            batch_size (int): Images per batch (the last may be short).

        Returns:
            BoundaryBankFile: Writable; :meth:`write` takes dataset
            indices of those batches.
        """
        with open(osp.join(partial_path, 'partial_meta.json')) as f:
            full_meta = json.load(f)
        num = full_meta['num']
        lengths = [min(start + batch_size, num) - start for start in starts]
        folder = osp.join(partial_path, SHARD_PREFIX + writer)
        shapes = cls._shapes(max(sum(lengths), 1), full_meta['num_targets'],
                             full_meta['image_shape'],
                             full_meta['num_classes'])
        arrays = cls._new_arrays(folder, shapes, partial_path)
        write_atomically(osp.join(folder, LAYOUT_FILE), json.dumps(
            dict(starts=list(starts), lengths=lengths)).encode())
        shard = cls(folder, arrays, full_meta, writable=True)
        shard._rows = _rows_of(num, starts, lengths)
        return shard

    @classmethod
    def open_partial(cls,
                     partial_path: str,
                     final_path: Optional[str] = None) -> 'BoundaryBankFile':
        """Take over an uncommitted bank whose process is gone
        (:meth:`stale_partials`), to finish it.

        Args:
            partial_path (str): :attr:`partial_path` of the creating
                process.
            final_path (str, optional): Where this process may
                :meth:`commit` it. Defaults to None: it may not.

        Returns:
            BoundaryBankFile: The writable bank, with its shards.
        """
        with open(osp.join(partial_path, 'partial_meta.json')) as f:
            full_meta = json.load(f)
        arrays = cls._load_arrays(partial_path, full_meta, mmap_mode='r+')
        return cls(partial_path, arrays, full_meta, writable=True,
                   final_path=final_path)

    @property
    def partial_path(self) -> str:
        """The temporary directory a writable bank lives in."""
        if not self._writable:
            raise ValueError(f'{self.path} is a committed, read-only bank.')
        return self.path

    def write(self, indices: np.ndarray, delta: np.ndarray,
              scale: np.ndarray, clean: np.ndarray, logits: np.ndarray,
              targets: np.ndarray, weights: np.ndarray, correct: np.ndarray,
              reached: np.ndarray, steps: np.ndarray) -> None:
        """Store the rows of some dataset indices.

        Args:
            indices (np.ndarray): ``(B,)`` dataset indices; disjoint from
                those any other process writes.
            delta (np.ndarray): ``(B, K, H, W, C)`` int8 levels of the
                change to the clean image (:func:`encode`), packed here.
            scale (np.ndarray): ``(B, K)`` float32 pixel values per level.
            clean (np.ndarray): ``(B, H, W, C)`` the clean images, as the
                pipeline gives them (for :attr:`checksum` only).
            logits (np.ndarray): ``(B, K, C)`` the teacher's logits on the
                stored images.
            targets (np.ndarray): ``(B, K)`` target classes.
            weights (np.ndarray): ``(B, K)`` teacher target probabilities.
            correct (np.ndarray): ``(B,)`` whether the teacher was right.
            reached (np.ndarray): ``(B, K)`` whether the stored image is
                past the boundary.
            steps (np.ndarray): ``(B, K)`` attack passes used.
        """
        if not self._writable:
            raise ValueError(f'{self.path} is a committed, read-only bank.')
        indices = np.asarray(indices, dtype=np.int64)
        clean = np.asarray(clean)
        if clean.shape != (len(indices), *self.image_shape):
            raise ValueError(
                f'clean must have shape {(len(indices), *self.image_shape)}, '
                f'got {clean.shape}.')
        delta = np.asarray(delta)
        if delta.dtype != np.int8:
            # A silent cast could wrap a level around or round a sample
            # off the boundary; encoding is the builder's job.
            raise TypeError(f'delta must be int8, got {delta.dtype}.')
        expected = (len(indices), self.num_targets, *self.image_shape)
        if delta.shape != expected:
            raise ValueError(
                f'delta must have shape {expected}, got {delta.shape}.')
        if delta.size and np.abs(delta.astype(np.int16)).max() > LEVELS:
            raise ValueError(f'delta must be within +-{LEVELS} ({BITS} '
                             'bits a level, encode()).')
        values = dict(
            delta=pack(delta),
            scale=scale,
            checksum=checksum(clean),
            logits=logits,
            targets=targets,
            weights=weights,
            correct=correct,
            reached=reached,
            steps=steps)
        # Check everything first so a bad call writes nothing.
        for name, value in values.items():
            value = values[name] = np.asarray(value)
            expected = (len(indices), ) + self._arrays[name].shape[1:]
            if value.shape != expected:
                raise ValueError(f'{name} must have shape {expected}, got '
                                 f'{value.shape}.')
        if values['scale'].dtype != np.float32:
            raise TypeError(
                f'scale must be float32, got {values["scale"].dtype}.')
        rows = indices
        if self._rows is not None:
            rows = self._rows[indices]
            if (rows < 0).any():
                raise ValueError(
                    f'Dataset index {int(indices[rows < 0][0])} is not in a '
                    f'batch of shard {self.path}.')
        for name, value in values.items():
            self._arrays[name][rows] = value

    def flush(self) -> None:
        """Write this process's changes to disk (before the barrier)."""
        for array in self._arrays.values():
            if isinstance(array, np.memmap):
                array.flush()

    def save_progress(self, progress: dict) -> None:
        """Flush this shard, then record what it holds so far.

        The record is written atomically after the flush, so it never
        claims rows that are not on disk, and the commit and a build that
        takes over (:meth:`open_partial`) read every shard's last record
        with :meth:`progress`.

        Args:
            progress (dict): JSON-serialisable: ``starts``, the batches
                written, and the builder's own content.
        """
        # flush() is msync(MS_SYNC): on a shared filesystem too, the rows
        # are in the file before the record claims them.
        self.flush()
        write_atomically(osp.join(self.path, PROGRESS_FILE),
                         json.dumps(progress).encode())

    def progress(self) -> List[dict]:
        """The last record of every shard of this unfinished bank, each
        with its folder's name as ``shard``."""
        records = []
        for name in sorted(os.listdir(self.partial_path)):
            record = osp.join(self.partial_path, name, PROGRESS_FILE)
            if name.startswith(SHARD_PREFIX) and osp.isfile(record):
                with open(record) as f:
                    records.append(dict(json.load(f), shard=name))
        return records

    def _merge_shards(self) -> None:
        """Copy every shard's recorded batches into the bank's arrays, then
        remove the shards."""
        for record in self.progress():
            folder = osp.join(self.path, record['shard'])
            with open(osp.join(folder, LAYOUT_FILE)) as f:
                layout = json.load(f)
            offsets = dict(zip(layout['starts'],
                               np.cumsum([0, *layout['lengths']]).tolist()))
            lengths = dict(zip(layout['starts'], layout['lengths']))
            for name in ARRAY_SPECS:
                shard = np.load(osp.join(folder, f'{name}.npy'),
                                mmap_mode='r')
                for start in record['starts']:
                    row, length = offsets[start], lengths[start]
                    self._arrays[name][start:start + length] = shard[
                        row:row + length]
        for name in os.listdir(self.path):
            if name.startswith(SHARD_PREFIX):
                shutil.rmtree(osp.join(self.path, name))

    def commit(self, build: Optional[dict] = None) -> 'BoundaryBankFile':
        """Finish the bank and move it to its final path, atomically.

        Call once, in the creating process, after every writer flushed.

        Args:
            build (dict, optional): JSON-serialisable account of the build
                (its wall time, process count ...), kept as
                :attr:`build`. Defaults to None.

        Returns:
            BoundaryBankFile: The committed bank at ``path``, read-only (a
            concurrent builder's bank if it committed first).
        """
        if self._final_path is None:
            raise ValueError('Only the process that created the bank may '
                             'commit it.')
        self._merge_shards()
        self.flush()
        self._meta['build'] = dict(build or {})
        partial, final = self.path, self._final_path
        self._arrays = {}
        self._writable = False
        with open(osp.join(partial, META_FILE), 'w') as f:
            json.dump(self._meta, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.remove(osp.join(partial, 'partial_meta.json'))
        try:
            # rename() fails if a non-empty ``final`` exists, so exactly one
            # of several concurrent builders wins.
            os.rename(partial, final)
        except OSError:
            if not self.exists(final):
                raise FileExistsError(
                    f'{final} exists but is no complete boundary bank (no '
                    f'{META_FILE}); delete it and build again. The new bank '
                    f'is left in {partial}.')
            shutil.rmtree(partial)
        return self.open(final)

    # --- reading ---------------------------------------------------------

    @staticmethod
    def exists(path: str) -> bool:
        """Whether ``path`` holds a complete (committed) bank."""
        return osp.isfile(osp.join(path, META_FILE))

    @classmethod
    def _load_arrays(cls, path: str, full_meta: dict,
                     mmap_mode: str) -> Dict[str, np.ndarray]:
        """Memory-map every array and check it against ``full_meta``."""
        try:
            shapes = cls._shapes(full_meta['num'], full_meta['num_targets'],
                                 full_meta['image_shape'],
                                 full_meta['num_classes'])
        except (KeyError, TypeError) as error:
            raise damaged(path, f'its metadata lacks {error}')
        arrays = {}
        for name, (dtype, _) in ARRAY_SPECS.items():
            file = osp.join(path, f'{name}.npy')
            if not osp.isfile(file):
                raise damaged(path, f'{name}.npy is missing')
            try:
                # A truncated file fails here, when it is mapped, rather
                # than when a dataloader worker reaches the lost rows.
                array = np.load(file, mmap_mode=mmap_mode)
            except (ValueError, OSError, EOFError) as error:
                raise damaged(
                    path, f'{name}.npy cannot be mapped ({error}); '
                    'truncated?')
            if array.shape != shapes[name] or array.dtype != dtype:
                raise damaged(
                    path, f'{name}.npy is {array.dtype}{array.shape}, '
                    f'expected {np.dtype(dtype)}{shapes[name]}')
            arrays[name] = array
        return arrays

    @classmethod
    def open(cls, path: str) -> 'BoundaryBankFile':
        """Open a complete bank read-only.

        Args:
            path (str): The bank directory.

        Returns:
            BoundaryBankFile: The read-only bank.

        Raises:
            FileNotFoundError: If ``path`` has no ``meta.json`` (missing or
                half-written bank).
            UserValueError: If an array is missing, cannot be mapped
                (truncated) or disagrees with ``meta.json`` in shape or
                dtype, or ``meta.json`` itself is unreadable.
        """
        if not cls.exists(path):
            state = ('is half-written (no meta.json)'
                     if osp.isdir(path) else 'does not exist')
            raise FileNotFoundError(
                f'Boundary bank {path} {state}. Build it with '
                f'tools/build_boundary_bank.py or the algorithm\'s bank '
                f'switch.')
        try:
            with open(osp.join(path, META_FILE)) as f:
                full_meta = json.load(f)
        except ValueError as error:
            raise damaged(path, f'{META_FILE} is not JSON ({error})')
        if full_meta.get('format_version') != FORMAT_VERSION:
            raise damaged(
                path, f'it has format version '
                f'{full_meta.get("format_version")} and this code reads '
                f'{FORMAT_VERSION}')
        arrays = cls._load_arrays(path, full_meta, mmap_mode='r')
        return cls(path, arrays, full_meta, writable=False)

    @property
    def num(self) -> int:
        """Dataset length N."""
        return self._meta['num']

    @property
    def num_targets(self) -> int:
        """Targets per image K."""
        return self._meta['num_targets']

    @property
    def image_shape(self) -> Tuple[int, int, int]:
        """The stored image shape (H, W, C)."""
        return tuple(self._meta['image_shape'])

    @property
    def meta(self) -> dict:
        """The builder's metadata given to :meth:`create`."""
        return self._meta['meta']

    @property
    def build(self) -> dict:
        """How the bank was built, as given to :meth:`commit`."""
        return self._meta.get('build', {})

    def __getitem__(self, name: str) -> np.ndarray:
        """The whole memory-mapped array ``name`` (e.g. ``'targets'``)."""
        return self._arrays[name]

    def _check_index(self, indices: np.ndarray) -> None:
        outside = indices[(indices < 0) | (indices >= self.num)]
        if len(outside):
            raise IndexError(
                f'Dataset index {int(outside[0])} is outside boundary bank '
                f'{self.path} of {self.num} images; was it built for another '
                'dataset or split?')

    def draw(self, indices: np.ndarray, draws: np.ndarray) -> np.ndarray:
        """Which of the K banked targets each index uses this time
        (:func:`draw_targets` of its weights; 0 when K is 1).

        Args:
            indices (np.ndarray): ``(M,)`` dataset indices.
            draws (np.ndarray): ``(M,)`` uniform numbers in [0, 1).
        """
        indices = np.asarray(indices, dtype=np.int64)
        self._check_index(indices)
        if self.num_targets == 1:
            return np.zeros(len(indices), dtype=np.int64)
        return draw_targets(self._arrays['weights'][indices], draws)

    def read(self, indices: np.ndarray, columns: np.ndarray,
             clean: np.ndarray) -> dict:
        """The stored boundary samples ``(indices[i], columns[i])``.

        Reads their rows only, so a step that uses a quarter of its batch
        reads a quarter of the bank's bytes.

        Args:
            indices (np.ndarray): ``(M,)`` dataset indices.
            columns (np.ndarray): ``(M,)`` which of the K targets
                (:meth:`draw`).
            clean (np.ndarray): ``(M, H, W, C)`` their clean images as the
                pipeline loads them (un-augmented).

        Returns:
            dict: ``images`` (``(M, H, W, C)`` float32, :func:`decode`),
            ``logits`` (``(M, C)`` float32, the teacher's on them),
            ``targets`` (int64), ``reached`` (bool), each ``(M,)`` but
            ``images`` and ``logits``.

        Raises:
            UserValueError: If a clean image is not the one the bank was
                built from.
        """
        indices = np.asarray(indices, dtype=np.int64)
        columns = np.asarray(columns, dtype=np.int64)
        self._check_index(indices)
        clean = np.asarray(clean)
        if clean.shape[1:] != self.image_shape:
            raise UserValueError(
                f'The images have shape {clean.shape[1:]} but boundary bank '
                f'{self.path} stores {self.image_shape}: the bank was built '
                'with another loading pipeline or dataset.')
        wrong = checksum(clean) != self._arrays['checksum'][indices]
        if wrong.any():
            raise UserValueError(
                f'The image of sample {int(indices[wrong][0])} is not the '
                f'one boundary bank {self.path} was built from: the bank was '
                'built with another loading pipeline or dataset. Delete it '
                'to rebuild it.')
        rows = (indices, columns)
        return dict(
            images=decode(clean, self.levels(indices, columns),
                          self._arrays['scale'][rows]),
            logits=np.array(self._arrays['logits'][rows]),
            targets=np.array(self._arrays['targets'][rows]),
            reached=np.array(self._arrays['reached'][rows]))

    def levels(self, indices: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """The stored change of ``(indices[i], columns[i])`` in levels:
        ``(M, H, W, C)`` int8 (:func:`unpack`)."""
        return unpack(self._arrays['delta'][indices, columns],
                      self.image_shape)

    def sample(self, index: int, clean: np.ndarray,
               rng: Optional[Rng] = None) -> dict:
        """Draw one of the K boundary images of a dataset index.

        Target j is drawn with probability ``weights[index, j]`` over the
        sum of the K weights (uniformly if they sum to zero).

        Args:
            index (int): The dataset index.
            clean (np.ndarray): ``(H, W, C)`` its clean image.
            rng (np.random.Generator | np.random.RandomState, optional):
                Source of the draw. Defaults to None, numpy's global state.

        Returns:
            dict: ``boundary_img`` (``(H, W, C)`` float32),
            ``boundary_logits`` (``(C,)`` float32, the teacher's logits on
            it), ``boundary_target`` (int), ``boundary_correct`` and
            ``boundary_reached`` (bool).
        """
        index = np.array([index], dtype=np.int64)
        # ``random()`` exists on Generator, RandomState and np.random.
        draws = (np.zeros(1) if self.num_targets == 1 else np.array(
            [(np.random if rng is None else rng).random()]))
        read = self.read(index, self.draw(index, draws), clean[None])
        return dict(
            boundary_img=read['images'][0],
            boundary_logits=read['logits'][0],
            boundary_target=int(read['targets'][0]),
            boundary_correct=bool(self._arrays['correct'][index[0]]),
            boundary_reached=bool(read['reached'][0]))


class BankReader:
    """What reads a bank keeps: its path, bound by ``BoundaryBankHook``,
    and the bank, opened on first use in each process (each dataloader
    worker maps the files itself) and never pickled (a memory map would
    copy the whole array into the pickle)."""

    bank_path: Optional[str] = None
    _bank: Optional[BoundaryBankFile] = None

    def bind(self, bank_path: Optional[str]) -> None:
        """Use the bank at ``bank_path`` from now on (None unbinds).

        Args:
            bank_path (str, optional): The boundary bank directory.
        """
        self.bank_path = bank_path
        self._bank = None

    @property
    def bank(self) -> BoundaryBankFile:
        """The bound bank, opened here on first use."""
        if self._bank is None:
            self._bank = BoundaryBankFile.open(self.bank_path)
        return self._bank

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state['_bank'] = None
        return state


def _rows_of(num: int, starts: Sequence[int],
             lengths: Sequence[int]) -> np.ndarray:
    """Each dataset index's row in a shard of these batches, -1 if none."""
    rows = np.full(num, -1, dtype=np.int64)
    row = 0
    for start, length in zip(starts, lengths):
        rows[start:start + length] = np.arange(row, row + length)
        row += length
    return rows


def _process_runs(pid: int) -> bool:
    """Whether a process with this pid runs on this machine."""
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's
        pass
    return True
