"""Pruning methods, registered by name in a plain dict (one module per method)."""

from __future__ import annotations

from pruning_core.core.errors import PrunescopeError
from pruning_core.prune.methods.akrp import AKRP
from pruning_core.prune.methods.base import Method
from pruning_core.prune.methods.kprune import KPrune
from pruning_core.prune.methods.kwon import Kwon
from pruning_core.prune.methods.magnitude import Magnitude
from pruning_core.prune.methods.pat import PAT
from pruning_core.prune.methods.reconstruction import Reconstruction
from pruning_core.prune.methods.sparsegpt import SparseGPT
from pruning_core.prune.methods.wanda import Wanda

METHODS: dict[str, type[Method]] = {m.name: m for m in (Magnitude, Wanda, SparseGPT, AKRP, Reconstruction, KPrune, Kwon,
                                                     PAT)}


def get(name: str) -> Method:
    """An instance of the method registered as `name`."""
    if name not in METHODS:
        raise PrunescopeError(f"unknown method '{name}'; choose one of {', '.join(METHODS)}")
    return METHODS[name]()
