"""Shipped demo results (assets/demo/*.jsonl, runs without masks and finished attacks): written by the
benchmarks, imported into a store so the Compare and Robustness pages show full curves on a fresh machine,
and re-keyed when a key changes without changing what the rows measured."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable

from pruning_core.experiments.config import ExperimentConfig
from pruning_core.core.paths import ASSETS_DIR
from pruning_core.storage.store import Store

DEMO_DIR = ASSETS_DIR / "demo"


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


@lru_cache(maxsize=1)
def demo_keys() -> frozenset[str]:
    """The keys of the shipped demo runs (assets/demo/sweep_*.jsonl): how a store's row is known as a demo run."""
    return frozenset(json.loads(line)["key"] for path in sorted(DEMO_DIR.glob("sweep_*.jsonl"))
                     for line in path.read_text().splitlines() if line.strip())


def export_demo(results: list[dict], path: Path) -> None:
    """Write results (no masks) as JSON lines for shipping in assets/demo."""
    _write_jsonl(results, path)


def import_demo(store: Store, paths: Iterable[Path] | None = None) -> int:
    """Load shipped demo results into `store` where it lacks them; returns how many were added."""
    return _import_jsonl(paths if paths is not None else sorted(DEMO_DIR.glob("sweep_*.jsonl")),
                         store.has, store.save)


def export_demo_attacks(outcomes: list, path: Path) -> None:
    """Write finished attacks (summary and every example) as JSON lines for shipping in assets/demo."""
    _write_jsonl((o.to_json() for o in outcomes), path)


def import_demo_attacks(store: Store, paths: Iterable[Path] | None = None) -> int:
    """Load shipped demo attacks (assets/demo/robustness_*.jsonl) where the store lacks them."""
    return _import_jsonl(paths if paths is not None else sorted(DEMO_DIR.glob("robustness_*.jsonl")),
                         store.attack_done, store.save_attack)


def demo_row_key(row: dict) -> tuple[str, dict | None]:
    """The key today's code computes for a shipped demo row from its stored config (and, for an attack,
    the meta the store files it under): what the dashboard looks the row up by."""
    if "meta" in row:  # an attack
        from pruning_core.robustness import AttackConfig

        cfg = AttackConfig.from_dict(row["config"])
        return cfg.key(), cfg.meta()
    return ExperimentConfig.from_dict(row["config"]).key(), None


def rekey_demo(path: Path) -> list[tuple[str, str]]:
    """Rewrite the keys (and an attack's target) of a shipped demo file as today's code computes them from
    each row's stored config; the measured results are left as they are. Returns the (old, new) keys that
    changed. Only for a key change that leaves results alone (a field added to the key whose default gives
    what the rows measured); a change that alters results (a recipe's `version`, re-trained weights) needs
    the rows recomputed instead. Refuses a row whose config now describes another attack (its meta changed).

        python -c "from pruning_core.storage import demo
        for p in sorted(demo.DEMO_DIR.glob('*.jsonl')): print(p.name, demo.rekey_demo(p))"
    """
    rows = [json.loads(line) for line in Path(path).read_text().splitlines()]
    changed, rewrite = [], False
    for row in rows:
        key, meta = demo_row_key(row)
        if meta is not None:
            if {k: v for k, v in meta.items() if k != "target"} != {k: v for k, v in row["meta"].items()
                                                                     if k != "target"}:
                from pruning_core.core.errors import PrunescopeError

                raise PrunescopeError(f"{Path(path).name}: row {row['key']} has meta {row['meta']}, but its config "
                                      f"now gives {meta}; recompute it instead of re-keying")
            rewrite |= row["meta"]["target"] != meta["target"]
            row["meta"]["target"] = meta["target"]
        if key != row["key"]:
            changed.append((row["key"], key))
            row["key"] = key
    if changed or rewrite:
        _write_jsonl(rows, Path(path))
    return changed
