# Copyright (c) amkd-mmrazor contributors.
from pathlib import Path
from typing import Union

from mmengine.fileio import LocalBackend, register_backend

from amkd_plugin.utils import write_atomically


@register_backend('atomic_local')
class AtomicLocalBackend(LocalBackend):
    """MMEngine's local file backend with all-or-nothing writes.

    MMEngine's ``LocalBackend.put`` writes a checkpoint in place, so a
    process killed while saving (preempted, out of memory, Ctrl-C) leaves
    a truncated newest checkpoint that ``--resume`` then fails on. Here
    every write goes through :func:`write_atomically`: the target is the
    old file or the new one, never a part.

    ``configs/_base_/default_runtime.py`` gives it to the ``CheckpointHook``
    (``backend_args=dict(backend='atomic_local')``); set other
    ``backend_args`` there for a remote ``out_dir``.
    """

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        write_atomically(filepath, obj)

    def put_text(self,
                 obj: str,
                 filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        self.put(obj.encode(encoding), filepath)
