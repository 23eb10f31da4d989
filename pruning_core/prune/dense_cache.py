"""The dense shadow, computed once per calibration: an in-process LRU cache of every block's `DensePass`.

The dense half of the engine's work (each block's dense outputs, every module's dense output over real
tokens, the held-out set's dense block outputs, the first block's Gram statistics) depends only on the
dense model and the texts, never on the method or the sparsity. So a run given a `dense_key` (what
names the dense weights, e.g. model, task and device) keeps them here, under that key plus the token
ids and masks of the calibration and held-out sets, and a later run on the same calibration reuses
them instead of running the dense blocks again.

Entries are per block; past the cap, `PRUNESCOPE_DENSE_CACHE_MB` megabytes (default 1024; 0 turns
the cache off), other runs' least recently used blocks are dropped, and a run that alone fills the cap
keeps its first blocks (see `put`). A block not kept is simply recomputed. Nothing is written to disk. Cached tensors are shared between runs: the engine only reads them.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from typing import Any, Hashable

import torch

from pruning_core.data.calibration import CalibrationSet

DEFAULT_MB = 1024
_ENTRIES: "OrderedDict[tuple, tuple[Any, int]]" = OrderedDict()  # (run key, block) -> (DensePass, bytes)
_LOCK = threading.Lock()
STATS = {"hits": 0, "misses": 0}


def cap_bytes() -> int:
    """The cache's size cap from PRUNESCOPE_DENSE_CACHE_MB (megabytes; 0 = off)."""
    try:
        mb = float(os.environ.get("PRUNESCOPE_DENSE_CACHE_MB", DEFAULT_MB))
    except ValueError:
        mb = DEFAULT_MB
    return max(0, int(mb * 2**20))


def fingerprint(cset: CalibrationSet | None) -> str | None:
    """A digest of a calibration set's micro-batches (token ids and attention masks, in order)."""
    if cset is None:
        return None
    h = hashlib.sha1()
    for ids, mask in cset.batches:
        h.update(str(tuple(ids.shape)).encode())
        h.update(ids.cpu().contiguous().numpy().tobytes())
        h.update(mask.cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def run_key(dense_key: Hashable, calib: CalibrationSet, heldout: CalibrationSet | None, device, dtype) -> tuple:
    """The key of one run's dense shadow: the dense model's key, the texts' digests, device and dtype."""
    return (dense_key, fingerprint(calib), fingerprint(heldout), calib.seq_len, str(device), str(dtype))


def nbytes(obj) -> int:
    """Bytes of the tensors inside nested lists, tuples, dicts and dataclass-like objects."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(nbytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(nbytes(v) for v in obj)
    if hasattr(obj, "__dict__"):
        return nbytes(vars(obj))
    return 0


def get(key: Hashable):
    """The cached value of `key` (now the most recently used), or None."""
    with _LOCK:
        hit = _ENTRIES.get(key)
        if hit is None:
            STATS["misses"] += 1
            return None
        _ENTRIES.move_to_end(key)
        STATS["hits"] += 1
        return hit[0]


def has(key: Hashable) -> bool:
    """Whether `key` is kept (not counted as a hit or a miss)."""
    with _LOCK:
        return key in _ENTRIES


def put(key: tuple, value) -> None:
    """Keep `value` under `key` = (run key, block): beyond the cap, the least recently used entries of other
    runs are dropped first; if the run's own earlier blocks fill the cap, `value` is not kept (dropping
    them would make every later run miss every block, as a scan through an LRU does)."""
    cap, size = cap_bytes(), nbytes(value)
    with _LOCK:
        _ENTRIES.pop(key, None)
        total = sum(s for _, s in _ENTRIES.values()) + size
        for old in [k for k in _ENTRIES if k[:-1] != key[:-1]]:
            if total <= cap:
                break
            total -= _ENTRIES.pop(old)[1]
        if total <= cap:
            _ENTRIES[key] = (value, size)


def size_mb() -> float:
    with _LOCK:
        return sum(s for _, s in _ENTRIES.values()) / 2**20


def clear() -> None:
    """Forget every cached dense pass."""
    with _LOCK:
        _ENTRIES.clear()
        STATS.update(hits=0, misses=0)
