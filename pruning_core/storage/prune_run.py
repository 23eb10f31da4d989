"""Prune a config and store it: the one path the foreground `prunescope prune` and a background prune job
both take, so both compute and store exactly the same thing."""

from __future__ import annotations

import statistics
from typing import Callable

from pruning_core.core.errors import PrunescopeError
from pruning_core.experiments.config import ExperimentConfig
from pruning_core.experiments.experiment import run_experiment


def timed_runs(out: dict) -> int:
    """How many prunes a stored run's prune time was measured over (1 for a run without repeats)."""
    return len(out.get("prune_seconds_runs") or [out.get("prune_seconds")])


def prune_and_store(cfg: ExperimentConfig, store=None, on_record: Callable | None = None,
                    on_stage: Callable[[str], None] | None = None, recompute: bool = False,
                    repeats: int = 1) -> tuple[dict, bool]:
    """The stored run of `cfg` (unless `recompute`, or it was timed over fewer than `repeats` prunes), else
    prune it (records to `on_record`, stages to `on_stage`) and save it with its masks in one transaction.
    With `repeats` K > 1 the config is pruned K times (the first one reported live and stored as usual) and
    the run keeps every prune time (`prune_seconds_runs`) and their median (`prune_seconds_median`).
    Returns (run JSON, computed now). `store=None` computes without reading or writing any store."""
    if not isinstance(repeats, int) or repeats < 1:
        raise PrunescopeError(f"repeats must be an integer of at least 1; got {repeats!r}")
    out = None if store is None or recompute else store.load(cfg.key())
    if out is not None and timed_runs(out) >= repeats:
        return out, False
    res = run_experiment(cfg, on_record=on_record, on_stage=on_stage)
    out = res.to_json()
    if repeats > 1:
        times = [out["prune_seconds"]]
        for i in range(1, repeats):
            if on_stage:
                on_stage(f"timing repeat {i + 1} of {repeats}")
            times.append(run_experiment(cfg).prune.prune_seconds)
        out["prune_seconds_runs"] = times
        out["prune_seconds_median"] = statistics.median(times)
    if store is not None:
        store.save(out, res.prune.masks)
    return out, True
