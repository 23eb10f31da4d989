"""Prune a config and store it: the one path the foreground `prunescope prune` and a background prune job
both take, so both compute and store exactly the same thing."""

from __future__ import annotations

from typing import Callable

from pruning_core.experiments.config import ExperimentConfig
from pruning_core.experiments.experiment import run_experiment


def prune_and_store(cfg: ExperimentConfig, store=None, on_record: Callable | None = None,
                    on_stage: Callable[[str], None] | None = None, recompute: bool = False) -> tuple[dict, bool]:
    """The stored run of `cfg` (unless `recompute`), else prune it (records to `on_record`, stages to
    `on_stage`) and save it with its masks in one transaction. Returns (run JSON, computed now).
    `store=None` computes without reading or writing any store."""
    out = None if store is None or recompute else store.load(cfg.key())
    if out is not None:
        return out, False
    res = run_experiment(cfg, on_record=on_record, on_stage=on_stage)
    out = res.to_json()
    if store is not None:
        store.save(out, res.prune.masks)
    return out, True
