"""Frozen experiment configuration. Its `key()` (a hash of every field that changes the result)
is the cache and database key; `validate()` turns bad input into one clear error."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from pruning_core.core.errors import PrunescopeError


@dataclass(frozen=True)
class ExperimentConfig:
    model: str = "default"
    task: str = "rotten_tomatoes"
    method: str = "sparsegpt"
    sparsity: float = 0.5
    pattern: str = "unstructured"
    calib_size: int = 128
    seq_len: int = 64
    seed: int = 0
    eval_size: int | None = None
    options: tuple[tuple[str, Any], ...] = ()  # the method's own knobs, sorted (name, value) pairs
    device: str = "auto"  # where it runs; not part of the key
    # allow a model folder without a trained classification head (a seeded random head): a permission,
    # not part of the key (such a folder is refused without it, so its runs cannot collide)
    fresh_head: bool = False

    KEY_EXCLUDES = ("device", "fresh_head")
    LIMITS = {"calib_size": (1, 100_000), "seq_len": (4, 8192), "seed": (0, 2**32 - 1)}
    MAX_EVAL_SIZE = 10_000_000

    @classmethod
    def create(cls, options: dict | None = None, **kw) -> "ExperimentConfig":
        """Build and validate; `options` given as a dict, completed with the method's defaults
        (so equal experiments get equal keys)."""
        from pruning_core.prune import methods

        method = kw.get("method", cls.method)
        if kw.get("pattern") is None:  # the method's own pattern unless one is asked for
            kw["pattern"] = "structured" if methods.get(method).structured else "unstructured"
        full = asdict(methods.get(method).options(options or {}))
        return cls(options=tuple(sorted(full.items())), **kw).validate()

    def options_dict(self) -> dict[str, Any]:
        return dict(self.options)

    def validate(self) -> "ExperimentConfig":
        """Check every field without loading anything heavy; raise PrunescopeError on the first problem."""
        from pruning_core.data import tasks as data
        from pruning_core.prune import masks
        from pruning_core.prune import methods
        from pruning_core.model import models

        method = methods.get(self.method)
        if method.structured or self.pattern == "structured":
            if not method.structured:
                structured = ", ".join(n for n, m in methods.METHODS.items() if m.structured)
                raise PrunescopeError(f"pattern 'structured' belongs to the structured methods ({structured}); "
                                      f"'{self.method}' prunes single weights: use unstructured or N:M")
            if self.pattern != "structured":
                raise PrunescopeError(f"'{self.method}' removes whole units: its pattern is 'structured', "
                                      f"not '{self.pattern}'")
            if not isinstance(self.sparsity, (int, float)) or not 0 <= self.sparsity < 1:
                raise PrunescopeError(f"sparsity ({method.budget_meaning}) must be in [0, 1); got {self.sparsity}")
            method.options(self.options_dict())
        else:
            pat = masks.parse_pattern(self.pattern)
            masks.check_sparsity(self.sparsity, pat)
            method.check_pattern(pat, method.options(self.options_dict()))
        task_labels = len(data.SHIPPED[self.task].label_names) if self.task in data.SHIPPED else None
        if self.task not in data.SHIPPED and self.task not in data.HUB:
            # a local file or folder: missing, unreadable or without text,label fails here
            task_labels = data.load(self.task).num_labels
        for name, (lo, hi) in self.LIMITS.items():
            if not _int_in(getattr(self, name), lo, hi):
                raise PrunescopeError(f"{name} must be an integer in [{lo}, {hi:,}]; got {getattr(self, name)!r}")
        if self.eval_size is not None and not _int_in(self.eval_size, 1, self.MAX_EVAL_SIZE):
            raise PrunescopeError(f"eval_size must be a positive integer (at most {self.MAX_EVAL_SIZE:,}) or "
                                  f"None; got {self.eval_size!r}")
        if not isinstance(self.fresh_head, bool):
            raise PrunescopeError(f"fresh_head must be true or false; got {self.fresh_head!r}")
        models.check_device_name(self.device)
        models.check(self.model, self.task, self.fresh_head, task_labels)
        return self

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["options"] = self.options_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ExperimentConfig":
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        kw["options"] = tuple(sorted((kw.get("options") or {}).items()))
        return cls(**kw)

    def key(self) -> str:
        """Stable hash of the fields that determine the result, and of the content of the local model
        and task files they name (so a re-trained model or an edited CSV gets a new key)."""
        from pruning_core.core import fingerprint
        from pruning_core.model import models

        d = {k: v for k, v in self.to_dict().items() if k not in self.KEY_EXCLUDES}
        try:
            model_path = Path(models.resolve(self.model, self.task)).expanduser()
        except PrunescopeError:
            model_path = Path(self.model).expanduser()
        from pruning_core.data.tasks import HUB, SHIPPED

        local_task = self.task not in SHIPPED and self.task not in HUB
        d["files"] = [fingerprint.of_path(model_path),
                      fingerprint.of_path(Path(self.task).expanduser()) if local_task else ""]
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def with_(self, **kw) -> "ExperimentConfig":
        return replace(self, **kw)


def _int_in(value, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi
