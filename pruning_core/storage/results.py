"""Stored results as flat tables (one row per run) for export: CSV, Parquet, JSON.

`runs_table` is what `prunescope results` prints and writes, and what the dashboard's download offers:
the config of each run, its headline measures (README's Measures names), its cost, and the measures of every
finished attack on its pruned model (and on its dense model), one column group per recipe.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from pruning_core.core.errors import PrunescopeError
from pruning_core.core.paths import check_output_file, write_output
from pruning_core.storage.store import Store

FORMATS = ("csv", "parquet", "json")
RUN_COLUMNS = ("key", "created", "model", "task", "method", "pattern", "sparsity", "options", "calib_size",
               "seq_len", "seed", "eval_size", "eval_examples", "accuracy", "dense_accuracy", "achieved_sparsity",
               "encoder_sparsity", "flops_reduction", "logits_kl", "cls_error", "heldout_error", "prune_seconds",
               "eval_seconds", "peak_total_mb", "peak_memory_mb", "calib_examples", "calib_tokens", "device", "cpu", "threads", "load_per_core")
ATTACK_MEASURES = ("clean_accuracy", "accuracy_under_attack", "attack_success_rate")
FILTERS = ("model", "task", "method", "pattern", "sparsity")
TEXT_COLUMNS = ("key", "model", "task", "method", "pattern", "options", "device", "cpu")
INT_COLUMNS = ("calib_size", "seq_len", "seed", "eval_size", "eval_examples", "calib_examples", "calib_tokens",
               "threads")

# SQL for the columns that live inside the stored result JSON (no need to parse whole results)
_JSON = {
    "options": "$.config.options", "calib_size": "$.config.calib_size", "seq_len": "$.config.seq_len",
    "seed": "$.config.seed", "eval_size": "$.config.eval_size", "eval_examples": "$.eval_examples",
    "encoder_sparsity": "$.encoder_sparsity", "flops_reduction": "$.structure.flops_reduction",
    "logits_kl": "$.logits_kl", "cls_error": "$.cls_error", "heldout_error": "$.heldout_error",
    "eval_seconds": "$.eval_seconds", "peak_total_mb": "$.peak_total_mb", "peak_memory_mb": "$.peak_memory_mb",
    "calib_examples": "$.calib_examples", "calib_tokens": "$.calib_tokens", "device": "$.device",
    "cpu": "$.environment.cpu", "threads": "$.environment.threads", "load_per_core": "$.environment.load_per_core",
}


def _select(store: Store, filters: dict) -> pd.DataFrame:
    unknown = set(filters) - set(FILTERS)
    if unknown:
        raise PrunescopeError(f"unknown filter(s) {', '.join(sorted(unknown))}; filter by {', '.join(FILTERS)}")
    cols = [f"json_extract(result, '{_JSON[c]}') AS {c}" if c in _JSON else c for c in RUN_COLUMNS]
    where, params = [], []
    for k, v in filters.items():
        if v is None:
            continue
        where.append("abs(sparsity - ?) < 1e-9" if k == "sparsity" else f"{k} = ?")
        params.append(float(v) if k == "sparsity" else v)
    sql = (f"SELECT {', '.join(cols)} FROM runs" + (f" WHERE {' AND '.join(where)}" if where else "")
           + " ORDER BY model, task, method, pattern, sparsity, key")
    df = store.query(sql, params)
    df["options"] = [json.dumps(json.loads(o), sort_keys=True) if o else "{}" for o in df["options"]]
    for c in df.columns:  # missing values as NA/NaN, so the table round-trips through CSV and Parquet
        if c in INT_COLUMNS:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("Int64")
        elif c not in TEXT_COLUMNS:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    return df


def runs_table(store: Store, attacks: bool = True, **filters) -> pd.DataFrame:
    """One row per stored run (filters: model=, task=, method=, pattern=, sparsity=), ordered by
    model, task, method, pattern, sparsity. With `attacks`, for each recipe that attacked a run's pruned
    model: `<recipe>_clean_accuracy`, `<recipe>_accuracy_under_attack`, `<recipe>_attack_success_rate`,
    `<recipe>_n` (the largest finished attack), and `<recipe>_dense_accuracy_under_attack` (its dense model)."""
    df = _select(store, filters)
    if attacks and len(df):
        df = _with_attacks(store, df)
    return df


def _with_attacks(store: Store, df: pd.DataFrame) -> pd.DataFrame:
    from pruning_core.experiments.config import ExperimentConfig
    from pruning_core.robustness import AttackConfig

    rows = store.query("SELECT target, recipe, n, clean_accuracy, accuracy_under_attack, attack_success_rate "
                       "FROM attacks WHERE complete = 1 ORDER BY n, created")
    if not len(rows):
        return df
    best: dict[tuple[str, str], tuple] = {}
    rows = rows.astype(object).where(rows.notna(), None)  # SQL NULL stays None
    for target, recipe, n, *measures in rows.itertuples(index=False):  # later (larger, newer) attacks win
        best[(target, recipe)] = (n, *measures)
    recipes = sorted({r for _, r in best})
    extra: dict[str, list] = {f"{r}_{m}": [] for r in recipes for m in (*ATTACK_MEASURES, "n",
                                                                           "dense_accuracy_under_attack")}
    for _, row in df.iterrows():
        cfg = ExperimentConfig(model=row["model"], task=row["task"], method=row["method"], sparsity=row["sparsity"],
                               pattern=row["pattern"], calib_size=int(row["calib_size"]), seq_len=int(row["seq_len"]),
                               seed=int(row["seed"]), eval_size=None,
                               options=tuple(sorted(json.loads(row["options"]).items())))
        pruned = AttackConfig(cfg).target_key()
        dense = AttackConfig(cfg.with_(sparsity=0.0, pattern="unstructured")).target_key()
        for r in recipes:
            hit, base = best.get((pruned, r)), best.get((dense, r))
            for i, m in enumerate(ATTACK_MEASURES):
                extra[f"{r}_{m}"].append(hit[i + 1] if hit else None)
            extra[f"{r}_n"].append(hit[0] if hit else None)
            extra[f"{r}_dense_accuracy_under_attack"].append(base[2] if base else None)
    out = pd.concat([df, pd.DataFrame(extra, index=df.index)], axis=1)
    return out[[c for c in out.columns if c in df.columns or out[c].notna().any()]]  # no all-empty groups


def write_table(df: pd.DataFrame, out: Path | None, fmt: str | None = None) -> str | None:
    """Write `df` to `out` as csv, parquet or json (records); the format defaults to `out`'s suffix.
    Without `out`, returns the CSV or JSON text (Parquet needs a file)."""
    if fmt is None:
        fmt = (out.suffix.lstrip(".").lower() if out is not None else "csv") or "csv"
    if fmt not in FORMATS:
        raise PrunescopeError(f"unknown format '{fmt}'; choose one of {', '.join(FORMATS)}")
    if fmt == "parquet":
        if out is None:
            raise PrunescopeError("parquet is a binary format: give --out FILE.parquet")
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise PrunescopeError("parquet needs pyarrow: pip install pyarrow") from None
        write_output(out, lambda tmp: df.to_parquet(tmp, index=False), "--out")
        return None
    if out is not None:
        check_output_file(out, "--out")  # before the table is formatted
    text = df.to_csv(index=False) if fmt == "csv" else df.to_json(orient="records", indent=1)
    if out is None:
        return text
    write_output(out, lambda tmp: tmp.write_text(text), "--out")
    return None


def read_table(path: Path) -> pd.DataFrame:
    """Read back a table written by `write_table` (by suffix)."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix == ".json":
        return pd.read_json(path, orient="records")
    return pd.read_csv(path, keep_default_na=True)
