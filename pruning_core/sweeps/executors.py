"""Where a sweep's configs run: in this process (`inline`), in a local process pool (`local`), or as
Ray tasks on a laptop or a cluster (`ray`). Every executor does the same thing with a `Job` (one
prune run or one attack) and hands back an `Outcome`; only the driver (`sweep.run_sweep`) writes the
results store, so workers never open it.

A worker catches every exception of its job and returns it as the outcome's error, so one bad
config never stops a sweep; a worker process that dies (killed, out of memory) is reported as the
error of the jobs it was running, and the sweep goes on with a fresh pool.

This module is the entry point: `make` builds an executor by name, and every public name of the
executor modules is importable from here (`executor_jobs`: jobs, outcomes, the interface and the worker;
`executor_local`: inline and the process pool; `executor_ray`: Ray).
"""

from __future__ import annotations

from pruning_core.core.errors import PrunescopeError
from pruning_core.sweeps.executor_jobs import Executor, Job, Outcome, cpu_count, work
from pruning_core.sweeps.executor_local import InlineExecutor, LocalExecutor, available_memory_mb, default_workers
from pruning_core.sweeps.executor_ray import PASS_ENV, RayExecutor

__all__ = ["EXECUTORS", "PASS_ENV", "Executor", "InlineExecutor", "Job", "LocalExecutor", "Outcome", "RayExecutor",
           "available_memory_mb", "cpu_count", "default_workers", "make", "work"]

EXECUTORS = ("local", "ray", "inline")


def make(name: str = "local", workers: int | None = None, address: str | None = None,
         cpus_per_task: int | None = None, gpus_per_task: float = 0) -> Executor:
    """The executor called `name` (local | ray | inline)."""
    if name == "local":
        if address:
            raise PrunescopeError("--address is for --executor ray")
        return LocalExecutor(workers, threads=cpus_per_task)
    if name == "ray":
        per_task = cpus_per_task or 1
        return RayExecutor(address, num_cpus=None if address else (workers * per_task if workers else None),
                           cpus_per_task=per_task, gpus_per_task=gpus_per_task)
    if name == "inline":
        return InlineExecutor(threads=cpus_per_task)
    raise PrunescopeError(f"unknown executor '{name}'; choose one of {', '.join(EXECUTORS)}")
