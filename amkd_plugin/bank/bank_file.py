# Copyright (c) amkd-mmrazor contributors.
"""On-disk format of a boundary bank: memory-mapped ``.npy`` arrays."""
import json
import os
import os.path as osp
import re
import shutil
import socket
import uuid
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from amkd_plugin.utils import (DiskFullError, UserValueError, reserve,
                               write_atomically)

# name -> (dtype, shape after the leading N) of every array of a bank.
# ``None`` in a shape stands for K, ``'img'`` for the (H, W, C) image shape,
# ``'classes'`` for the teacher's class count.
ARRAY_SPECS = {
    'images': (np.float32, (None, 'img')),
    'logits': (np.float32, (None, 'classes')),
    'targets': (np.int64, (None, )),
    'weights': (np.float32, (None, )),
    'correct': (np.bool_, ()),
    'reached': (np.bool_, (None, )),
    'steps': (np.int16, (None, )),
}
META_FILE = 'meta.json'
# Records of what each writer of an unfinished bank has written.
PROGRESS_PREFIX = 'progress-'
# 3: the teacher's logits on each stored image; 2: images in float32 (1:
# uint8, whose rounding put half of the Fashion-MNIST boundary samples
# back on their own side).
FORMAT_VERSION = 3

Rng = Union[np.random.Generator, np.random.RandomState]


def damaged(path: str, what: str) -> UserValueError:
    """The error for a committed bank whose files contradict its meta.json,
    with what the user can do about it."""
    return UserValueError(
        f'Boundary bank {path} is damaged: {what}. Delete the folder and '
        'train again, which rebuilds it, or rebuild it ahead with `python '
        'tools/build_boundary_bank.py CONFIG` and the training\'s options.')


class BoundaryBankFile:
    """A boundary bank: one boundary image per (dataset index, target) pair.

    A bank is a directory of ``.npy`` files, read through memory maps so that
    every dataloader worker shares the page cache instead of a private copy
    (N = dataset length, K = targets per image, (H, W, C) = the dataset's
    own image shape)::

        images   (N, K, H, W, C) float32  boundary image, in the dataset's
                                          pixel space (0..255) and channel
                                          order
        logits   (N, K, C)       float32  the teacher's logits on it, as
                                          stored (C classes)
        targets  (N, K)          int64    target class of each image
        weights  (N, K)          float32  teacher probability of each target
        correct  (N,)            bool     teacher classified the clean image
        reached  (N, K)          bool     the attack reached the boundary
        steps    (N, K)          int16    attack passes used
        meta.json                         shapes, format version and the
                                          builder's ``meta``; written LAST

    A bank is complete iff ``meta.json`` exists, so a crash never leaves a
    directory that :meth:`open` accepts (only a ``*.partial-*`` folder, which
    is safe to delete).

    Writing (one or many processes, one machine):

    1. Rank 0 calls :meth:`create`, which makes the writable arrays in a
       temporary directory ``<path>.partial-<host>-<pid>-<random>`` (a
       private name, so concurrent builders never share files).
    2. Rank 0 broadcasts :attr:`partial_path`; every other rank calls
       :meth:`open_partial` on it.
    3. Every rank writes its own, disjoint dataset indices straight into
       the shared memory maps (:meth:`write`), then :meth:`flush`; barrier.
    4. Rank 0 calls :meth:`commit`: flush, write ``meta.json``, then rename
       the directory to ``path`` atomically. If a concurrent builder
       committed ``path`` first, its bank is kept and ours is deleted.

    Writers of disjoint indices never need merging. Memory maps of one file
    stay coherent between processes of one machine only (NFS does not
    promise coherent ``mmap`` writes, and neighbouring indices share
    pages), so the writers of a bank must share a machine;
    :class:`BoundaryBankBuilder` sees to that.

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

    # --- shape helpers ---------------------------------------------------

    @staticmethod
    def _shapes(num: int, num_targets: int, image_shape: Sequence[int],
                num_classes: int) -> Dict[str, Tuple[int, ...]]:
        """The expected shape of every array."""
        dims = {None: [num_targets], 'img': list(image_shape),
                'classes': [num_classes]}
        return {
            name: (num, *(d for dim in tail for d in dims[dim]))
            for name, (_, tail) in ARRAY_SPECS.items()
        }

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
        os.makedirs(partial)
        shapes = cls._shapes(num, num_targets, image_shape, num_classes)
        arrays = {
            name:
            np.lib.format.open_memmap(
                osp.join(partial, f'{name}.npy'),
                mode='w+',
                dtype=dtype,
                shape=shapes[name])
            for name, (dtype, _) in ARRAY_SPECS.items()
        }
        # The maps are sparse: a full disk would meet the build as SIGBUS
        # at some image; reserved now, it is one line before any attack.
        needed = sum(array.nbytes for array in arrays.values())
        try:
            for name in arrays:
                reserve(osp.join(partial, f'{name}.npy'), '')
        except DiskFullError:
            del arrays
            shutil.rmtree(partial, ignore_errors=True)
            raise DiskFullError(
                path, needed, 'Free space there, or build the bank on a '
                'larger disk (--work-dir), then run the same command again.'
            ) from None
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

    @classmethod
    def open_partial(cls,
                     partial_path: str,
                     final_path: Optional[str] = None) -> 'BoundaryBankFile':
        """Open another process's uncommitted bank to write into it.

        Args:
            partial_path (str): :attr:`partial_path` of the creating
                process.
            final_path (str, optional): Take over a build whose process is
                gone (:meth:`stale_partials`): this process finishes it and
                may :meth:`commit` it to ``final_path``. Defaults to None:
                only the creator commits.

        Returns:
            BoundaryBankFile: A writable bank sharing the creator's files.
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

    def write(self, indices: np.ndarray, images: np.ndarray,
              logits: np.ndarray, targets: np.ndarray, weights: np.ndarray,
              correct: np.ndarray, reached: np.ndarray,
              steps: np.ndarray) -> None:
        """Store the rows of some dataset indices.

        Args:
            indices (np.ndarray): ``(B,)`` dataset indices; disjoint from
                those any other process writes.
            images (np.ndarray): ``(B, K, H, W, C)`` float32 boundary
                images in 0..255.
            logits (np.ndarray): ``(B, K, C)`` the teacher's logits on
                them.
            targets (np.ndarray): ``(B, K)`` target classes.
            weights (np.ndarray): ``(B, K)`` teacher target probabilities.
            correct (np.ndarray): ``(B,)`` whether the teacher was right.
            reached (np.ndarray): ``(B, K)`` whether the boundary was
                reached.
            steps (np.ndarray): ``(B, K)`` attack passes used.
        """
        if not self._writable:
            raise ValueError(f'{self.path} is a committed, read-only bank.')
        indices = np.asarray(indices, dtype=np.int64)
        values = dict(
            images=images,
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
        if values['images'].dtype != np.float32:
            # A silent cast could round a sample off the boundary or wrap
            # it around; conversion and clipping are the builder's job.
            raise TypeError(
                f'images must be float32, got {values["images"].dtype}.')
        for name, value in values.items():
            self._arrays[name][indices] = value

    def flush(self) -> None:
        """Write this process's changes to disk (before the barrier)."""
        for array in self._arrays.values():
            if isinstance(array, np.memmap):
                array.flush()

    def save_progress(self, writer: str, progress: dict) -> None:
        """Flush, then record what ``writer`` has written so far.

        The record is written atomically after the flush, so it never
        claims rows that are not on disk, and a build that takes over (:meth:`open_partial`)
        reads every writer's last record with :meth:`progress`.

        Args:
            writer (str): A name unique to the writing process.
            progress (dict): JSON-serialisable; the builder's own content.
        """
        self.flush()
        write_atomically(
            osp.join(self.partial_path, f'{PROGRESS_PREFIX}{writer}.json'),
            json.dumps(progress).encode())

    def progress(self) -> List[dict]:
        """The last record of every writer of this unfinished bank."""
        records = []
        for name in sorted(os.listdir(self.partial_path)):
            if name.startswith(PROGRESS_PREFIX) and name.endswith('.json'):
                with open(osp.join(self.partial_path, name)) as f:
                    records.append(json.load(f))
        return records

    def commit(self) -> 'BoundaryBankFile':
        """Finish the bank and move it to its final path, atomically.

        Call once, in the creating process, after every writer flushed.

        Returns:
            BoundaryBankFile: The committed bank at ``path``, read-only (a
            concurrent builder's bank if it committed first).
        """
        if self._final_path is None:
            raise ValueError('Only the process that created the bank may '
                             'commit it.')
        self.flush()
        partial, final = self.path, self._final_path
        self._arrays = {}
        self._writable = False
        with open(osp.join(partial, META_FILE), 'w') as f:
            json.dump(self._meta, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        for name in os.listdir(partial):
            if name.startswith(PROGRESS_PREFIX) or name == 'partial_meta.json':
                os.remove(osp.join(partial, name))
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

    def __getitem__(self, name: str) -> np.ndarray:
        """The whole memory-mapped array ``name`` (e.g. ``'targets'``)."""
        return self._arrays[name]

    def sample(self, index: int, rng: Optional[Rng] = None) -> dict:
        """Draw one of the K boundary images of a dataset index.

        Target j is drawn with probability ``weights[index, j]`` over the
        sum of the K weights (uniformly if they sum to zero).

        Args:
            index (int): The dataset index.
            rng (np.random.Generator | np.random.RandomState, optional):
                Source of the draw. Defaults to None, numpy's global state.

        Returns:
            dict: ``boundary_img`` (``(H, W, C)`` float32, a writable
            contiguous copy), ``boundary_logits`` (``(C,)`` float32, the
            teacher's logits on it), ``boundary_target`` (int),
            ``boundary_correct`` and ``boundary_reached`` (bool).
        """
        if not 0 <= index < self.num:
            raise IndexError(
                f'Dataset index {index} is outside boundary bank {self.path} '
                f'of {self.num} images; was it built for another dataset or '
                f'split?')
        j = 0
        if self.num_targets > 1:
            weights = np.clip(
                self._arrays['weights'][index].astype(np.float64), 0, None)
            cumulative = np.cumsum(weights)
            if not cumulative[-1] > 0:
                cumulative = np.arange(1.0, self.num_targets + 1)
            rng = np.random if rng is None else rng
            # ``random()`` exists on Generator, RandomState and np.random.
            draw = rng.random() * cumulative[-1]
            j = min(
                int(np.searchsorted(cumulative, draw, side='right')),
                self.num_targets - 1)
        return dict(
            boundary_img=np.array(self._arrays['images'][index, j]),
            boundary_logits=np.array(self._arrays['logits'][index, j]),
            boundary_target=int(self._arrays['targets'][index, j]),
            boundary_correct=bool(self._arrays['correct'][index]),
            boundary_reached=bool(self._arrays['reached'][index, j]))


def _process_runs(pid: int) -> bool:
    """Whether a process with this pid runs on this machine."""
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's
        pass
    return True
