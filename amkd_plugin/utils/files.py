# Copyright (c) amkd-mmrazor contributors.
"""Writing files so that a kill never leaves half of one."""
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
