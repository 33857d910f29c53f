# Copyright (c) amkd-mmrazor contributors.
import os
import os.path as osp
from pathlib import Path
from typing import Union

from mmengine.fileio import LocalBackend, register_backend


@register_backend('atomic_local')
class AtomicLocalBackend(LocalBackend):
    """MMEngine's local file backend with all-or-nothing writes.

    MMEngine's ``LocalBackend.put`` writes a checkpoint in place, so a
    process killed while saving (preempted, out of memory, Ctrl-C) leaves
    a truncated newest checkpoint that ``--resume`` then fails on. Here a
    file is written beside its target as ``<name>.tmp``, flushed to disk,
    then renamed over the target, which POSIX makes atomic: the target is
    the old file or the new one, never a part. A ``.tmp`` left by a kill is
    overwritten by the next save of the same name.

    ``configs/_base_/default_runtime.py`` gives it to the ``CheckpointHook``
    (``backend_args=dict(backend='atomic_local')``); set other
    ``backend_args`` there for a remote ``out_dir``.
    """

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        os.makedirs(osp.dirname(osp.abspath(filepath)), exist_ok=True)
        partial = f'{filepath}.tmp'
        try:
            with open(partial, 'wb') as f:
                f.write(obj)
                f.flush()
                os.fsync(f.fileno())
            os.replace(partial, filepath)
        except BaseException:
            if osp.exists(partial):
                os.remove(partial)
            raise

    def put_text(self,
                 obj: str,
                 filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        self.put(obj.encode(encoding), filepath)
