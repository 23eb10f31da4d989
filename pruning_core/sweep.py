"""Grids of experiment configs: read what the store has, compute what it lacks, save as it goes.

A sweep is resumable by construction: each finished run is one atomic row in the store, so a
killed sweep restarts where it stopped. Shipped demo sweeps (assets/demo/*.jsonl, results without
masks) can be imported into a store so the Compare page shows full curves on a fresh machine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterable

from pruning_core.config import ExperimentConfig
from pruning_core.paths import ASSETS_DIR
from pruning_core.store import Store

DEMO_DIR = ASSETS_DIR / "demo"
SPARSITIES = tuple(round(0.1 * i, 1) for i in range(1, 10))


def grid(task: str, methods: Iterable[str], patterns: Iterable[str] = ("unstructured",),
         sparsities: Iterable[float] = SPARSITIES, **common) -> list[ExperimentConfig]:
    """Configs for every method x pattern x sparsity (N:M patterns run at their own sparsity once)."""
    from pruning_core.masks import parse_pattern

    out = []
    for m in methods:
        for p in patterns:
            nm = parse_pattern(p).sparsity
            for s in ([nm] if nm is not None else sparsities):
                out.append(ExperimentConfig.create(task=task, method=m, pattern=p, sparsity=float(s), **common))
    return out


def run_grid(configs: list[ExperimentConfig], store: Store, recompute: bool = False,
             on_progress: Callable[[int, int, ExperimentConfig, bool], None] | None = None) -> list[dict]:
    """Result JSON for every config, in order: read from the store, or computed and saved.
    `on_progress(done, total, config, computed)` is called after each one."""
    from pruning_core.experiment import run_experiment

    results = []
    for i, cfg in enumerate(configs):
        res = None if recompute else store.load(cfg.key())
        computed = res is None
        if computed:
            exp = run_experiment(cfg)
            res = exp.to_json()
            store.save(res, exp.prune.masks)
        results.append(res)
        if on_progress:
            on_progress(i + 1, len(configs), cfg, computed)
    return results


def _write_jsonl(rows: Iterable[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _import_jsonl(paths: Iterable[Path], present: Callable[[str], bool], save: Callable[[dict], None]) -> int:
    """Save every JSON line whose "key" is not `present`; returns how many were added."""
    added = 0
    for path in paths:
        for line in Path(path).read_text().splitlines():
            row = json.loads(line)
            if not present(row["key"]):
                save(row)
                added += 1
    return added


def export_demo(results: list[dict], path: Path) -> None:
    """Write results (no masks) as JSON lines for shipping in assets/demo."""
    _write_jsonl(results, path)


def import_demo(store: Store, paths: Iterable[Path] | None = None) -> int:
    """Load shipped demo results into `store` where it lacks them; returns how many were added."""
    return _import_jsonl(paths if paths is not None else sorted(DEMO_DIR.glob("sweep_*.jsonl")),
                         store.has, store.save)


# ---- robustness grids: methods x sparsities x recipes, attacks stored per example -----------------

ROBUSTNESS_SPARSITIES = (0.0, 0.3, 0.5, 0.7, 0.9)


def attack_grid(task: str, methods: Iterable[str], sparsities: Iterable[float] = ROBUSTNESS_SPARSITIES,
                recipes: Iterable[str] = ("deepwordbug",), n: int = 100, seed: int = 0,
                query_budget: int | None = None, pattern: str = "unstructured", **common) -> list:
    """AttackConfigs for every recipe x method x sparsity; sparsity 0 is the dense model, attacked once
    per recipe (every method shares it)."""
    from pruning_core.robustness import AttackConfig

    out, seen = [], set()
    for recipe in recipes:
        for m in methods:
            for s in sparsities:
                run = ExperimentConfig.create(task=task, method=m, pattern=pattern if s else "unstructured",
                                              sparsity=float(s), **common)
                cfg = AttackConfig(run, recipe, n, seed, query_budget).validate()
                key = cfg.key()
                if key not in seen:
                    seen.add(key)
                    out.append(cfg)
    return out


def run_attack_grid(configs: list, store: Store, on_progress: Callable | None = None,
                    on_example: Callable | None = None) -> list:
    """AttackOutcome for every config, in order: stored ones read, missing (or unfinished) ones attacked.
    `on_progress(done, total, config)` after each attack; `on_example(done, total, record)` inside one."""
    from pruning_core.robustness import run_attack

    outs = []
    for i, cfg in enumerate(configs):
        outs.append(run_attack(cfg, store, on_example=on_example))
        if on_progress:
            on_progress(i + 1, len(configs), cfg)
    return outs


def export_demo_attacks(outcomes: list, path: Path) -> None:
    """Write finished attacks (summary and every example) as JSON lines for shipping in assets/demo."""
    _write_jsonl((o.to_json() for o in outcomes), path)


def import_demo_attacks(store: Store, paths: Iterable[Path] | None = None) -> int:
    """Load shipped demo attacks (assets/demo/robustness_*.jsonl) where the store lacks them."""
    return _import_jsonl(paths if paths is not None else sorted(DEMO_DIR.glob("robustness_*.jsonl")),
                         store.attack_done, store.save_attack)
