"""Running grids and sweeps: read what the store has, compute what it lacks, save as it goes.

A sweep is resumable by construction: each finished run is one atomic row in the store, so a killed
sweep restarts where it stopped. Sweep files (`sweepfile`) run through `run_sweep` on an executor
(`executors`: a local process pool or Ray), with the driver alone writing the store.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from pruning_core.experiments.config import ExperimentConfig
from pruning_core.storage.store import Store

if TYPE_CHECKING:
    from pruning_core.sweeps.executors import Executor, Outcome
    from pruning_core.sweeps.sweepfile import Sweep


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
