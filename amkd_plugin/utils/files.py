# Copyright (c) amkd-mmrazor contributors.
"""Files: written so that a kill never leaves half of one, and hashed."""
import hashlib
import os
import os.path as osp
from pathlib import Path
from typing import Union


def write_atomically(path: Union[str, Path], data: bytes) -> None:
    """Write ``data`` to ``path``: all of it, or leave ``path`` as it was.

    The bytes go to ``<path>.tmp`` beside it, are flushed to disk, then
    renamed over ``path``, which POSIX makes atomic. A ``.tmp`` left by a
    kill is overwritten by the next write of the same path.
    """
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    partial = f'{path}.tmp'
    try:
        with open(partial, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, path)
    except BaseException:
        if osp.exists(partial):
            os.remove(partial)
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
