# Copyright (c) amkd-mmrazor contributors.
"""Build this plugin's MMRazor parts from any default scope."""
from typing import Any, Dict

from mmengine.registry import Registry


def build_in_mmrazor(registry: Registry, cfg: Dict) -> Any:
    """Build ``cfg`` from an MMRazor registry whatever the current scope.

    A part nested in another (the attack inside ``BoundaryFidelity``) is
    built while the runner's default scope is current, which is
    ``mmpretrain`` for a classifier config; unprefixed types then miss
    MMRazor's registries. Here they mean MMRazor's, unless ``cfg`` names
    its own ``_scope_``.
    """
    return registry.build({'_scope_': 'mmrazor', **cfg})
