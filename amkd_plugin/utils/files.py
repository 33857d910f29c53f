# Copyright (c) amkd-mmrazor contributors.
"""Files: written so that a kill never leaves half of one, hashed, and
the lock of a training's work dir."""
import errno
import fcntl
import hashlib
import io
import os
import os.path as osp
from pathlib import Path
from typing import Union

import torch

from .errors import DiskFullError, UserInputError


def write_atomically(path: Union[str, Path], data: bytes) -> None:
    """Write ``data`` to ``path``: all of it, or leave ``path`` as it was.

    The bytes go to ``<path>.tmp`` beside it, are flushed to disk, then
    renamed over ``path``, which POSIX makes atomic. A ``.tmp`` left by a
    kill is overwritten by the next write of the same path; a full disk
    raises :class:`DiskFullError` (the path, the bytes it needed) with no
    ``.tmp`` left.
    """
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    partial = f'{path}.tmp'
    try:
        with open(partial, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, path)
    except BaseException as error:
        if osp.exists(partial):
            os.remove(partial)
        if is_disk_full(error):
            raise DiskFullError(
                str(path), len(data),
                f'{path} was left as it was. Free space there, then run the '
                'same command again (with --resume for a training).'
            ) from None
        raise


def save_atomically(obj, path: Union[str, Path]) -> None:
    """``torch.save(obj, path)`` through :func:`write_atomically`."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_atomically(path, buffer.getvalue())


def is_disk_full(error: BaseException) -> bool:
    """Whether ``error`` is a write that found no room (or no quota)."""
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC,
                                                          errno.EDQUOT)


def reserve(path: Union[str, Path], fix: str) -> None:
    """Allocate the blocks of the whole file ``path`` now.

    A memory-mapped file is sparse until written: a write through the map
    that finds the disk full kills the process with SIGBUS, no message.
    Reserved first, it fails here instead, as one line.

    Raises:
        DiskFullError: If the file system has no room for it.
    """
    with open(path, 'r+b') as f:
        size = os.fstat(f.fileno()).st_size
        try:
            os.posix_fallocate(f.fileno(), 0, size)
        except OSError as error:
            if is_disk_full(error):
                raise DiskFullError(str(path), size, fix) from None
            raise


def sha256(path: Union[str, Path]) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks.

    Args:
        path (str | Path): The file.

    Returns:
        str: Its digest.
    """
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


_HELD = []  # the open lock files: closing one would release its lock


def lock_work_dir(work_dir: str, command: str) -> None:
    """Hold ``<work_dir>/train.lock`` until this process ends.

    Two trainings in one work dir write the same checkpoint names and logs
    over each other. An advisory ``flock`` that the kernel releases when
    its holder dies, by any signal, so a lock left by a dead training never
    blocks the next.

    Args:
        work_dir (str): The training's work dir (created if missing).
        command (str): This training's command, for the other's message.

    Raises:
        UserInputError: If a live process holds the lock.
    """
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, 'train.lock')
    handle = open(path, 'a+')
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or 'another process'
        handle.close()
        raise UserInputError(
            f'{work_dir} is in use by a live training ({holder}); wait for '
            'it to end, stop it, or give this one another --work-dir.'
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f'pid {os.getpid()}: {command}\n')
    handle.flush()
    _HELD.append(handle)
