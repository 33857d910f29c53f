# Copyright (c) amkd-mmrazor contributors.
"""Config fragments: the variants of a study, merged onto any pair config."""
import ast
import os.path as osp
from typing import Sequence, Set

from mmengine.config import Config

from .errors import UserInputError


def merge_fragments(config: str, fragments: Sequence[str]) -> Config:
    """``config`` with each fragment merged onto it, in order.

    A fragment is a config file of the keys it changes (e.g.
    ``configs/experiments/sources/online_bss.py``), merged as MMEngine
    merges a child config onto its base: dicts key by key, ``_delete_``
    replacing, lists and values replacing. A fragment may take mixins from
    ``_base_`` files (``{{_base_.raw_kd}}``); the keys those files define
    are the fragment's library, not merged.

    Args:
        config (str): The config to start from, e.g. a pair's.
        fragments (Sequence[str]): Fragment files, merged in order.

    Returns:
        Config: The merged config; its ``filename`` is ``config``'s.
    """
    cfg = Config.fromfile(config)
    for fragment in fragments:
        if not osp.isfile(fragment):
            raise UserInputError(f'No config fragment {fragment}.')
        library = _base_keys(fragment)
        part = Config.fromfile(fragment).to_dict()
        cfg.merge_from_dict(
            {k: v for k, v in part.items() if k not in library},
            allow_list_keys=False)
    return cfg


def _base_keys(fragment: str) -> Set[str]:
    """Top-level keys defined by the ``_base_`` files of ``fragment``."""
    module = ast.parse(open(fragment).read())
    bases = []
    for node in module.body:
        if (isinstance(node, ast.Assign)
                and any(getattr(t, 'id', None) == '_base_'
                        for t in node.targets)):
            value = ast.literal_eval(node.value)
            bases = [value] if isinstance(value, str) else list(value)
    keys = set()
    for base in bases:
        keys |= set(Config.fromfile(
            osp.join(osp.dirname(fragment), base)).keys())
    return keys
