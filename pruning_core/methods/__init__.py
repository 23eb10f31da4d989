"""Pruning methods, registered by name in a plain dict (one module per method)."""

from __future__ import annotations

from pruning_core.errors import PrunescopeError
from pruning_core.methods.akrp import AKRP
from pruning_core.methods.base import Method
from pruning_core.methods.kprune import KPrune
from pruning_core.methods.kwon import Kwon
from pruning_core.methods.magnitude import Magnitude
from pruning_core.methods.pat import PAT
from pruning_core.methods.reconstruction import Reconstruction
from pruning_core.methods.sparsegpt import SparseGPT
from pruning_core.methods.wanda import Wanda

METHODS: dict[str, type[Method]] = {m.name: m for m in (Magnitude, Wanda, SparseGPT, AKRP, Reconstruction, KPrune, Kwon,
                                                     PAT)}


def get(name: str) -> Method:
    """An instance of the method registered as `name`."""
    if name not in METHODS:
        raise PrunescopeError(f"unknown method '{name}'; choose one of {', '.join(METHODS)}")
    return METHODS[name]()
