"""What every executor shares: a `Job` (one prune run or one attack, configs as plain dicts), the `Outcome`
a worker sends back, the `Executor` interface, and `work`, which runs one job in a worker.

A worker catches every exception of its job and returns it as the outcome's error, so one bad config never
stops a sweep; only the driver (`sweep.run_sweep`) writes the results store, so workers never open it.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from dataclasses import dataclass
from typing import Iterable, Iterator

from pruning_core.core.errors import PrunescopeError


@dataclass(frozen=True)
class Job:
    """One unit of work, configs as plain dicts: `kind` "run" (an ExperimentConfig), "attack" (an
    AttackConfig) or "attacks" (`config["attacks"]`: attacks on one target model, which the worker then
    prunes once for all of them; `key` is the target's)."""

    kind: str
    key: str
    config: dict


@dataclass
class Outcome:
    """What a worker sends back. A run: `result` = ExperimentResult.to_json() and `masks` = name ->
    (rows, cols, store.pack_mask bytes); an attack: `result` = AttackOutcome.to_json(); a group of
    attacks: `result["items"]` = one {key, result, error, seconds} per attack (see `split`). `error` is
    set instead when the job failed."""

    job: Job
    result: dict | None = None
    masks: dict[str, tuple[int, int, bytes]] | None = None
    error: str | None = None
    seconds: float = 0.0
    worker: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None

    def split(self) -> list["Outcome"]:
        """One "attack" outcome per attack of an "attacks" job (the job's error, if it failed, for each);
        any other outcome as it is."""
        if self.job.kind != "attacks":
            return [self]
        configs = self.job.config["keys"]  # attack key -> AttackConfig.to_dict()
        if not self.ok:
            return [Outcome(Job("attack", k, c), error=self.error, seconds=self.seconds, worker=self.worker)
                    for k, c in configs.items()]
        return [Outcome(Job("attack", it["key"], configs[it["key"]]), result=it["result"], error=it["error"],
                        seconds=it["seconds"], worker=self.worker) for it in self.result["items"]]


def cpu_count() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


# ------------------------------------------------------------------------------------ the worker side


def work(job: Job, threads: int | None = None) -> Outcome:
    """Run one job here and return its outcome (never raises for a failing config)."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    t = time.perf_counter()
    out = Outcome(job, worker=f"{socket.gethostname()}:{os.getpid()}")
    try:
        if job.kind == "run":
            out.result, out.masks = _run(job.config)
        elif job.kind == "attack":
            out.result = _attack(job.config)
        elif job.kind == "attacks":
            out.result = {"key": job.key, "items": [_attack_item(k, c) for k, c in job.config["keys"].items()]}
        else:
            raise PrunescopeError(f"unknown job kind '{job.kind}'")
        if out.result["key"] != job.key:
            raise PrunescopeError(f"the worker computed key {out.result['key']} for job {job.key}: its model or "
                                  "task files differ from the driver's")
    except Exception as exc:
        out.result, out.masks, out.error = None, None, _error_text(exc)
    out.seconds = time.perf_counter() - t
    return out


def _error_text(exc: Exception) -> str:
    """A PrunescopeError's message; anything else (a bug, a broken resource) with its traceback, for
    `prunescope results --failures`."""
    if isinstance(exc, PrunescopeError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"


def _run(config: dict) -> tuple[dict, dict]:
    from pruning_core.experiments.config import ExperimentConfig
    from pruning_core.experiments.experiment import run_experiment
    from pruning_core.storage.store import pack_mask

    exp = run_experiment(ExperimentConfig.from_dict(config))
    masks = {n: (int(m.shape[0]), int(m.shape[1]), pack_mask(m)) for n, m in exp.prune.masks.items()}
    return exp.to_json(), masks


def _attack(config: dict) -> dict:
    """The whole attack in this worker, with no store: the driver saves it in one transaction. The
    attacked model is cached per process (`attack.target_model`), so further attacks on it reuse it."""
    from pruning_core.robustness import AttackConfig, run_attack

    return run_attack(AttackConfig.from_dict(config), store=None).to_json()


def _attack_item(key: str, config: dict) -> dict:
    t = time.perf_counter()
    try:
        result, error = _attack(config), None
        if result["key"] != key:
            raise PrunescopeError(f"the worker computed attack key {result['key']} for {key}: its model or task "
                                  "files differ from the driver's")
    except Exception as exc:
        result, error = None, _error_text(exc)
    return {"key": key, "result": result, "error": error, "seconds": time.perf_counter() - t}


# ------------------------------------------------------------------------------------ the interface


class Executor:
    """Runs jobs and yields their outcomes as they finish (in any order). Use as a context manager."""

    name = "executor"

    def run(self, jobs: Iterable[Job]) -> Iterator[Outcome]:
        raise NotImplementedError

    def describe(self) -> str:
        return self.name

    def close(self) -> None:
        pass

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
