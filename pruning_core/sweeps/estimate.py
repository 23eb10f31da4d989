"""What a sweep will cost, from what earlier runs in the store cost (for `prunescope sweep --dry-run`).

A config's estimate comes from the stored runs of the same method and pattern kind (unstructured,
N:M or structured), preferring the same task and model:

- **measured**: runs with the same model, task, method, pattern kind, calibration size and length:
  their median prune time, evaluation time and peak memory, as they are.
- **scaled**: otherwise, time per unit of work, a unit being one calibration token slot
  (calib_size x seq_len) times one weight of the encoder's linear layers (read from the model's
  config.json), so a 4x larger calibration set or a 5x larger encoder costs 4x or 5x as much
  (PAT trains for a fixed number of steps: only its sequence length and encoder count).
  Evaluation time scales with evaluation examples x encoder weights; peak memory adds 12 bytes per
  extra parameter, embeddings included (the dense model, its pruned copy and the dense shadow of
  the engine, in float32).
- **no basis**: no stored run of that method and pattern kind.

Linear scaling is a first-order model: it ignores per-layer costs that grow faster than the weights
(SparseGPT's d^3 inverse), thread counts other than the stored runs' and the dense evaluation that a
worker does once per model and task. Attacks scale the stored seconds per attacked example of the
same recipe (same task preferred) by the encoder's linear weights, plus the prune time of their target
(the worker prunes it again).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

from pruning_core.experiments.config import ExperimentConfig

BYTES_PER_EXTRA_PARAM = 12
# Methods whose cost does not grow with the calibration set: PAT trains for a fixed number of steps x batch.
CALIBRATION_FREE = frozenset({"pat"})


@dataclass(frozen=True)
class Estimate:
    """Seconds and peak memory of one config; for an attack, `eval_seconds` is the attack itself."""

    prune_seconds: float | None
    eval_seconds: float | None
    peak_mb: float | None
    basis: str  # "measured (n runs)", "scaled from ...", or "no basis"

    @property
    def seconds(self) -> float | None:
        if self.prune_seconds is None:
            return None
        return self.prune_seconds + (self.eval_seconds or 0.0)


NO_BASIS = Estimate(None, None, None, "no basis")


@lru_cache(maxsize=64)
def model_size(model: str, task: str) -> tuple[int, int] | None:
    """(weights of the encoder's linear layers, all parameters) from the model's config.json, or None
    when it cannot be read without loading the model (a hub id that is not a local folder)."""
    from pruning_core.model import models

    try:
        path = Path(models.resolve(model, task)).expanduser() / "config.json"
        c = json.loads(path.read_text())
    except (OSError, ValueError):  # PrunescopeError is a ValueError
        return None
    h = c.get("hidden_size") or c.get("dim")
    layers = c.get("num_hidden_layers") or c.get("n_layers")
    inter = c.get("intermediate_size") or c.get("hidden_dim")
    vocab, pos = c.get("vocab_size", 30522), c.get("max_position_embeddings", 512)
    if not (h and layers and inter):
        return None
    linear = layers * (4 * h * h + 2 * h * inter)
    total = linear + layers * (4 * h + inter + h + 4 * h) + (vocab + pos + 2) * h + h * h
    return int(linear), int(total)


def _calibration(method: str, calib_size: int) -> int:
    return 1 if method in CALIBRATION_FREE else calib_size


def pattern_kind(pattern: str) -> str:
    return "structured" if pattern == "structured" else "unstructured" if pattern == "unstructured" else "nm"


def _eval_examples(cfg: ExperimentConfig) -> int | None:
    if cfg.eval_size is not None:
        return cfg.eval_size
    try:
        from pruning_core.data.tasks import load

        return len(load(cfg.task, "test"))
    except Exception:
        return None


def _median(values) -> float | None:
    vals = [float(v) for v in values if v is not None and not pd.isna(v)]
    return statistics.median(vals) if vals else None


def estimate_run(cfg: ExperimentConfig, runs: pd.DataFrame) -> Estimate:
    """The estimate for one config from a table of stored runs (`results.runs_table(..., attacks=False)`)."""
    if runs is None or not len(runs):
        return NO_BASIS
    kind = pattern_kind(cfg.pattern)
    same = runs[(runs["method"] == cfg.method) & (runs["pattern"].map(pattern_kind) == kind)]
    if not len(same):
        return NO_BASIS
    exact = same[(same["model"] == cfg.model) & (same["task"] == cfg.task) & (same["calib_size"] == cfg.calib_size)
                 & (same["seq_len"] == cfg.seq_len)]
    if len(exact):
        eval_like = exact[exact["eval_size"].fillna(-1) == (cfg.eval_size if cfg.eval_size is not None else -1)]
        return Estimate(_median(exact["prune_seconds"]), _median((eval_like if len(eval_like) else exact)
                                                                 ["eval_seconds"]),
                        _median(exact["peak_total_mb"]), f"measured ({len(exact)} run{'s' * (len(exact) > 1)})")
    for pool in (same[(same["task"] == cfg.task) & (same["model"] == cfg.model)], same[same["task"] == cfg.task],
                 same):
        if len(pool):
            break
    size = model_size(cfg.model, cfg.task)
    prune_rates, eval_rates, peaks = [], [], []
    for _, r in pool.iterrows():
        s = model_size(r["model"], r["task"])
        if (s is None) != (size is None):  # cannot scale between a known and an unknown size
            continue
        lin, tot = s or (1, 1)
        prune_rates.append(r["prune_seconds"] / (_calibration(cfg.method, r["calib_size"]) * r["seq_len"] * lin))
        if r["eval_examples"] and not pd.isna(r["eval_seconds"]):
            eval_rates.append(r["eval_seconds"] / (r["eval_examples"] * lin))
        if not pd.isna(r["peak_total_mb"]):
            extra = BYTES_PER_EXTRA_PARAM * (size[1] - tot) / 2**20 if size else 0.0
            peaks.append(r["peak_total_mb"] + extra)
    if not prune_rates:
        return NO_BASIS
    lin = size[0] if size is not None else 1
    n_eval = _eval_examples(cfg)
    prune = statistics.median(prune_rates) * _calibration(cfg.method, cfg.calib_size) * cfg.seq_len * lin
    ev = statistics.median(eval_rates) * n_eval * lin if eval_rates and n_eval else None
    src = pool.iloc[0]
    basis = f"scaled from {len(prune_rates)} {cfg.method} run{'s' * (len(prune_rates) > 1)}"
    if (src["task"] != cfg.task) or (src["model"] != cfg.model):
        basis += f" on {src['task']}" + (f" ({src['model']})" if src["model"] != cfg.model else "")
    return Estimate(prune, ev, max(peaks) if peaks else None, basis)


def attack_costs(store) -> pd.DataFrame:
    """Finished attacks with their seconds per attacked example (recipe, task, model, n, seconds)."""
    return store.query("SELECT recipe, task, model, n, json_extract(summary, '$.attack_seconds') AS seconds "
                       "FROM attacks WHERE complete = 1")


def estimate_attack(cfg, attacks: pd.DataFrame, runs: pd.DataFrame) -> Estimate:
    """Seconds of one attack: stored seconds per example of the recipe x n, scaled by model parameters,
    plus the prune time of its target (the worker prunes it again)."""
    run = cfg.run
    prune = Estimate(0.0, 0.0, None, "") if cfg.dense else estimate_run(run, runs)
    if attacks is None or not len(attacks):
        return NO_BASIS
    same = attacks[(attacks["recipe"] == cfg.recipe) & attacks["seconds"].notna()]
    pool = same[same["task"] == run.task] if (same["task"] == run.task).any() else same
    if not len(pool) or prune.prune_seconds is None:
        return NO_BASIS
    size = model_size(run.model, run.task)
    rates = []
    for _, r in pool.iterrows():
        s = model_size(r["model"], r["task"])
        rates.append(r["seconds"] / r["n"] * ((size[0] / s[0]) if size and s else 1.0))  # model queries ~ weights
    seconds = statistics.median(rates) * cfg.n
    basis = f"{len(pool)} {cfg.recipe} attack{'s' * (len(pool) > 1)}" + ("" if cfg.dense else f"; {prune.basis}")
    return Estimate(prune.prune_seconds, seconds, prune.peak_mb, basis)


@dataclass
class GridEstimate:
    """Per-config estimates of a sweep against a store, and their totals over what is left to compute."""

    runs: list[tuple]  # (ExperimentConfig, status, Estimate); status: stored | failed before | to run
    attacks: list[tuple]  # (AttackConfig, status, Estimate)
    todo_seconds: float  # summed over the configs to run that have an estimate
    unknown: int  # configs to run without a basis
    peak_mb: float | None  # the largest estimated peak memory of a config to run

    def wall_seconds(self, workers: int) -> float:
        """A lower bound on the wall time with `workers` configs at once (perfect packing, no start-up)."""
        return self.todo_seconds / max(1, workers)


def estimate_sweep(sweep, store) -> GridEstimate:
    """Estimates for every run and attack of `sweep` from the runs and attacks in `store` (None: an
    empty store, so every config has no basis)."""
    from pruning_core.storage.results import runs_table

    runs = runs_table(store, attacks=False) if store is not None else None
    attacks = attack_costs(store) if store is not None else None
    have_runs = store.run_keys() if store is not None else set()
    have_attacks = store.attack_keys() if store is not None else set()
    failed = store.failure_keys() if store is not None else set()
    out = GridEstimate([], [], 0.0, 0, None)
    peaks = []

    def add(rows: list, cfg, have: set, est: Estimate) -> None:
        key = cfg.key()
        status = "stored" if key in have else "failed before" if key in failed else "to run"
        rows.append((cfg, status, est))
        if status == "stored":
            return
        if est.seconds is None:
            out.unknown += 1
        else:
            out.todo_seconds += est.seconds
        if est.peak_mb:
            peaks.append(est.peak_mb)

    for cfg in sweep.runs:
        add(out.runs, cfg, have_runs, estimate_run(cfg, runs))
    pruned = set()  # a worker prunes each attacked model once for all the attacks on it
    for a in sweep.attacks:
        est = estimate_attack(a, attacks, runs)
        target = a.target_key()
        if target in pruned and est.prune_seconds:
            est = Estimate(0.0, est.eval_seconds, est.peak_mb, est.basis + " (pruned once per target)")
        if a.key() not in have_attacks:
            pruned.add(target)
        add(out.attacks, a, have_attacks, est)
    out.peak_mb = max(peaks) if peaks else None
    return out
