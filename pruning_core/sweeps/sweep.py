"""Grids of experiment configs: read what the store has, compute what it lacks, save as it goes.

A sweep is resumable by construction: each finished run is one atomic row in the store, so a
killed sweep restarts where it stopped. Shipped demo sweeps (assets/demo/*.jsonl, results without
masks) can be imported into a store so the Compare page shows full curves on a fresh machine.

Sweep files (`sweepfile`) run through `run_sweep` on an executor (`executors`: a local process pool
or Ray), with the driver alone writing the store; `start_background` / `status` / `cancel` run one
as a detached process for the dashboard.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

import psutil

from pruning_core.experiments.config import ExperimentConfig
from pruning_core.core.paths import ASSETS_DIR
from pruning_core.storage.store import Store

if TYPE_CHECKING:
    from pruning_core.sweeps.executors import Executor, Outcome
    from pruning_core.sweeps.sweepfile import Sweep

DEMO_DIR = ASSETS_DIR / "demo"
SPARSITIES = tuple(round(0.1 * i, 1) for i in range(1, 10))


def grid(task: str, methods: Iterable[str], patterns: Iterable[str] = ("unstructured",),
         sparsities: Iterable[float] = SPARSITIES, **common) -> list[ExperimentConfig]:
    """Configs for every method x pattern x sparsity (N:M patterns run at their own sparsity once)."""
    from pruning_core.prune.masks import parse_pattern

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
    from pruning_core.experiments.experiment import run_experiment

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
                query_budget: int | None = None, pattern: str = "unstructured", visible_only: bool = False,
                **common) -> list:
    """AttackConfigs for every recipe x method x sparsity; sparsity 0 is the dense model, attacked once
    per recipe (every method shares it). `visible_only` attacks only the words the model reads."""
    from pruning_core.robustness import AttackConfig

    out, seen = [], set()
    for recipe in recipes:
        for m in methods:
            for s in sparsities:
                run = ExperimentConfig.create(task=task, method=m, pattern=pattern if s else "unstructured",
                                              sparsity=float(s), **common)
                cfg = AttackConfig(run, recipe, n, seed, query_budget, visible_only).validate()
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

        python -c "from pruning_core import sweep
        for p in sorted(sweep.DEMO_DIR.glob('*.jsonl')): print(p.name, sweep.rekey_demo(p))"
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


# ---- sweeps from a file: plan against the store, run on an executor, save in the driver ------------


@dataclass
class SweepPlan:
    """What a sweep has to do: configs already stored are skipped (resumable), earlier failures retried
    unless `skip_failed`."""

    sweep: "Sweep"
    runs: list[ExperimentConfig]  # to compute
    attacks: list  # AttackConfig, to compute after the runs
    stored: int  # runs and attacks already in the store
    skipped_failed: int  # failed before, left out (skip_failed)

    @property
    def total(self) -> int:
        return len(self.sweep)

    @property
    def todo(self) -> int:
        return len(self.runs) + len(self.attacks)


@dataclass(frozen=True)
class SweepEvent:
    """One finished job of a sweep: `outcome.error` is None for a success."""

    config: object  # ExperimentConfig or AttackConfig
    outcome: "Outcome"
    done: int  # computed so far
    failed: int
    todo: int


@dataclass
class SweepReport:
    sweep_id: str | None
    total: int
    stored: int
    done: int
    failed: int
    seconds: float
    failures: list[tuple[str, str]] = field(default_factory=list)  # (key, first line of the error)


def plan(sweep: "Sweep", store: Store | None, skip_failed: bool = False) -> SweepPlan:
    """Split a sweep into what the store has and what is left to compute (one query per table)."""
    runs_have = store.run_keys() if store is not None else set()
    attacks_have = store.attack_keys() if store is not None else set()
    failed = store.failure_keys() if store is not None and skip_failed else set()
    run_keys = [(c, c.key()) for c in sweep.runs]
    attack_keys = [(a, a.key()) for a in sweep.attacks]
    stored = sum(k in runs_have for _, k in run_keys) + sum(k in attacks_have for _, k in attack_keys)
    runs = [c for c, k in run_keys if k not in runs_have and k not in failed]
    attacks = [a for a, k in attack_keys if k not in attacks_have and k not in failed]
    return SweepPlan(sweep, runs, attacks, stored, len(sweep) - stored - len(runs) - len(attacks))


def run_sweep(sweep: "Sweep", store: Store, executor: "Executor", sweep_id: str | None = None,
              on_event: Callable[[SweepEvent], None] | None = None, skip_failed: bool = False,
              on_plan: Callable[[SweepPlan], None] | None = None) -> SweepReport:
    """Compute every config of `sweep` that `store` lacks on `executor`: the runs first, then the attacks
    whose pruned runs are stored (the attacks on one model as one job, so the worker prunes that model
    once for all its recipes). This process alone writes the store: each outcome is saved as it
    arrives (a run and its masks in one transaction; an attack with all its examples in one), a
    failure is recorded with its error (a later success clears it) and the sweep goes on. With
    `sweep_id`, a status row (state, pid, counts) is kept up to date for `status()`."""
    import socket

    from pruning_core.sweeps.executors import Job, Outcome

    t0 = time.time()
    p = plan(sweep, store, skip_failed)
    if on_plan:
        on_plan(p)
    counts = {"done": 0, "failed": 0}
    failures: list[tuple[str, str]] = []
    if sweep_id:
        store.update_sweep(sweep_id, state="running", started=t0, host=socket.gethostname(), pid=os.getpid(),
                           total=p.total, stored=p.stored, done=0, failed=0, spec=sweep.source)

    def finish(cfg, outcome) -> None:
        job = outcome.job
        if outcome.ok:
            if job.kind == "run":
                store.save(outcome.result, packed=outcome.masks)
            else:
                store.save_attack(outcome.result)
            counts["done"] += 1
        else:
            store.record_failure(job.key, job.kind, job.config, outcome.error, sweep_id)
            failures.append((job.key, outcome.error.splitlines()[0]))
            counts["failed"] += 1
        if sweep_id:
            store.update_sweep(sweep_id, **counts)
        if on_event:
            on_event(SweepEvent(cfg, outcome, counts["done"], counts["failed"], p.todo))

    try:
        by_key = {c.key(): c for c in p.runs}
        for outcome in executor.run(Job("run", k, c.to_dict()) for k, c in by_key.items()):
            finish(by_key[outcome.job.key], outcome)
        have = store.run_keys()
        targets: dict[str, dict] = {}  # the attacks on one model go to one worker, which prunes it once
        by_key = {}
        for a in p.attacks:
            by_key[a.key()] = a
            if a.dense or a.run.key() in have:
                targets.setdefault(a.target_key(), {})[a.key()] = a.to_dict()
            else:
                finish(a, Outcome(Job("attack", a.key(), a.to_dict()),
                                  error=f"not attacked: its pruned run {a.run.key()} is not stored (it failed "
                                        "in this sweep; see `prunescope results --failures`)"))
        jobs = [Job("attacks", target, {"keys": group}) for target, group in targets.items()]
        for outcome in executor.run(jobs):
            for one in outcome.split():
                finish(by_key[one.job.key], one)
    except KeyboardInterrupt:
        if sweep_id:
            store.update_sweep(sweep_id, state="interrupted", finished=time.time())
        raise
    except BaseException as exc:
        if sweep_id:
            store.update_sweep(sweep_id, state="failed", finished=time.time(), error=str(exc).splitlines()[0]
                               if str(exc) else type(exc).__name__)
        raise
    if sweep_id:
        store.update_sweep(sweep_id, state="finished", finished=time.time())
    return SweepReport(sweep_id, p.total, p.stored, counts["done"], counts["failed"], time.time() - t0, failures)


# ---- sweeps in the background (for the dashboard): a detached `prunescope sweep` and its status row ----


@dataclass(frozen=True)
class SweepHandle:
    id: str
    pid: int
    store_path: Path
    spec: Path
    log: Path


def new_sweep_id() -> str:
    import secrets

    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def start_background(spec: "str | Path | dict", store_path: str | Path | None = None, executor: str = "local",
                     workers: int | None = None, extra_args: Iterable[str] = ()) -> SweepHandle:
    """Check a sweep (a file, or a dict as a sweep file would hold) and start `prunescope sweep` on it as
    a detached process in its own session, so a browser reload or a Streamlit rerun does not stop it.
    Its output goes to `sweeps/<id>.log` beside the store, its progress to the store's `sweeps` table
    (read it with `status`). Raises PrunescopeError for a bad sweep before starting anything."""
    import subprocess
    import sys

    import pruning_core.sweeps.sweepfile as sweepfile

    store = Store(store_path)
    sweep = sweepfile.parse(spec) if isinstance(spec, dict) else sweepfile.load(spec)
    sweep_id = new_sweep_id()
    folder = store.path.parent / "sweeps"
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(spec, dict):
        path = folder / f"{sweep_id}.json"
        path.write_text(json.dumps(spec, indent=1))
    else:
        path = Path(spec).resolve()
    log = folder / f"{sweep_id}.log"
    cmd = [sys.executable, "-m", "pruning_core.cli", "sweep", str(path), "--store", str(store.path),
           "--sweep-id", sweep_id, "--executor", executor, *(["--workers", str(workers)] if workers else []),
           *extra_args]
    store.begin_sweep(sweep_id, state="starting", total=len(sweep), spec=str(path), log=str(log))
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, env=os.environ | {"PYTHONUNBUFFERED": "1"})
    import socket

    store.update_sweep(sweep_id, pid=proc.pid, host=socket.gethostname())
    return SweepHandle(sweep_id, proc.pid, store.path, path, log)


def _alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie child of ours is reaped and counts as gone, so does any zombie)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    except OSError:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:  # ZombieProcess included
        return False
    except psutil.AccessDenied:  # someone else's process: it exists
        return True


def status(store: Store, sweep_id: str) -> dict | None:
    """The status row of a sweep ({id, state, total, stored, done, failed, pid, started, finished, log,
    ...}) with `alive` (its process still runs) and `remaining`; a sweep that stopped without saying so
    (killed) has state `died`. None for an unknown id."""
    import socket

    row = store.sweep(sweep_id)
    if row is None:
        return None
    here = row.get("host") in (None, socket.gethostname())
    row["alive"] = bool(row.get("pid")) and here and _alive(int(row["pid"]))
    if row["state"] in ("starting", "running") and here and row.get("pid") and not row["alive"]:
        row["state"] = "died"
    row["remaining"] = max(0, (row["total"] or 0) - (row["stored"] or 0) - (row["done"] or 0) - (row["failed"] or 0))
    return row


def cancel(store: Store, sweep_id: str) -> bool:
    """Stop a background sweep (SIGTERM to its process group; finished configs stay stored). True if
    a running sweep was signalled."""
    import signal

    row = status(store, sweep_id)
    if not row or not row["alive"]:
        return False
    try:
        os.killpg(int(row["pid"]), signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True
