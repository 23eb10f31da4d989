"""The settings of the shipped demos as page settings (widget keys -> values), read from assets/demo so the
pages open on exactly what was shipped: the Robustness page's default view (the BBC News grid) and the
Demo path's presets. Pure functions (no Streamlit)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from pruning_core import PrunescopeError
from pruning_core.storage.demo import DEMO_DIR

ROBUSTNESS_DEMO = DEMO_DIR / "robustness_bbc_news.jsonl"
SWEEP_DEMO_TASK = "rotten_tomatoes"
SWEEP_PRESET = {"methods": ("magnitude", "wanda", "sparsegpt"), "sparsities": (0.5, 0.7)}


@lru_cache(maxsize=8)
def robustness_view(path: Path = ROBUSTNESS_DEMO) -> dict:
    """The Robustness page's sidebar (its `rob_*` keys) set to the grid of a shipped attack file: task, methods,
    sparsities (0 = the dense model), recipe, examples, budget, seed, visible-only and the calibration used."""
    path = Path(path)
    if not path.exists():
        raise PrunescopeError(f"no shipped robustness demo at {path}")
    configs = [json.loads(line)["config"] for line in path.read_text().splitlines() if line.strip()]
    if not configs:
        raise PrunescopeError(f"{path.name} holds no attacks")
    first, runs = configs[0], [c["run"] for c in configs]
    methods = sorted({r["method"] for r in runs if r["sparsity"] > 0})
    return {"rob_task": first["run"]["task"], "rob_methods": methods,
            "rob_sparsities": sorted({float(r["sparsity"]) for r in runs}), "rob_recipe": first["recipe"],
            "rob_n": int(first["n"]), "rob_budget": int(first.get("query_budget") or 0),
            "rob_visible": bool(first.get("visible_only", False)), "rob_seeds": str(int(first["seed"])),
            "rob_calib": int(first["run"]["calib_size"]), "rob_seq": int(first["run"]["seq_len"])}


def compare_view(task: str = SWEEP_DEMO_TASK) -> dict:
    """The Compare page's sidebar (its `cmp_*` keys) on preset (a): the one-shot methods at 50% and 70%,
    unstructured, with the shipped sweep's calibration (128 texts of 64 tokens) and the whole test split."""
    return {"cmp_task": task, "cmp_methods": list(SWEEP_PRESET["methods"]), "cmp_patterns": ["unstructured"],
            "cmp_sparsities": list(SWEEP_PRESET["sparsities"]), "cmp_calib": 128, "cmp_seq": 64, "cmp_eval": 0}
