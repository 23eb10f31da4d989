"""The `ray` executor: each job a Ray task, on a private local Ray or a running cluster."""

from __future__ import annotations

import logging
import os
from typing import Iterable, Iterator

from pruning_core.core.errors import PrunescopeError
from pruning_core.sweeps.executor_jobs import Executor, Job, Outcome, cpu_count, work

# What workers inherit from the driver's environment (Ray workers on other machines get these too).
PASS_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME", "PRUNESCOPE_NLTK_DATA",
            "TOKENIZERS_PARALLELISM")


class RayExecutor(Executor):
    """Each job a Ray task with its resource request (`cpus_per_task`, `gpus_per_task`); outcomes come
    back to the driver through Ray's object store. `address` None starts a private local Ray (no
    dashboard, no network) with `num_cpus`; `auto` or HOST:PORT joins a running cluster, whose nodes
    need prunescope (and any local model/task files the sweep names) installed at the same paths."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None, cpus_per_task: int = 1,
                 gpus_per_task: float = 0, object_store_mb: int | None = None, max_retries: int = 1):
        if cpus_per_task < 1:
            raise PrunescopeError(f"--cpus-per-task must be at least 1; got {cpus_per_task}")
        if gpus_per_task < 0:
            raise PrunescopeError(f"--gpus-per-task must be >= 0; got {gpus_per_task}")
        try:
            import ray
        except ImportError:
            raise PrunescopeError("the ray executor needs Ray: pip install 'ray>=2.40'") from None
        self.ray, self.address = ray, address
        self.cpus_per_task, self.gpus_per_task = cpus_per_task, gpus_per_task
        self._owns = not ray.is_initialized()
        env = {k: os.environ[k] for k in PASS_ENV if k in os.environ}
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        if self._owns:
            kw: dict = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
            if address:  # a private Ray's workers inherit this environment; a cluster's get it passed on
                kw["address"] = address
                kw["runtime_env"] = {"env_vars": env}
            else:
                kw["num_cpus"] = num_cpus or cpu_count()
                kw["object_store_memory"] = (object_store_mb or _default_object_store_mb()) * 2**20
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            try:
                ray.init(**kw)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"the Ray cluster at {address}" if address else "a local Ray instance"
                raise PrunescopeError(f"could not start or join {where}: {str(exc).splitlines()[0]}") from None
        self._remote = ray.remote(num_cpus=cpus_per_task, num_gpus=gpus_per_task, max_retries=max_retries)(work)

    def describe(self) -> str:
        res = self.ray.cluster_resources()
        where = f"cluster {self.address}" if self.address else "local Ray"
        gpus = f", {res.get('GPU', 0):g} GPUs" if res.get("GPU") else ""
        return (f"{where}: {res.get('CPU', 0):g} CPUs{gpus}; each task {self.cpus_per_task} CPU(s)"
                + (f", {self.gpus_per_task:g} GPU(s)" if self.gpus_per_task else ""))

    def run(self, jobs: Iterable[Job]) -> Iterator[Outcome]:
        ray = self.ray
        pending = {self._remote.remote(job, self.cpus_per_task): job for job in jobs}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                job = pending.pop(ref)
                try:
                    yield ray.get(ref)
                except Exception as exc:  # the task's worker died, or the cluster lost its node
                    yield Outcome(job, error=f"Ray task failed: {type(exc).__name__}: {str(exc).splitlines()[0]}")

    def close(self) -> None:
        if self._owns and self.ray.is_initialized():
            self.ray.shutdown()


def _default_object_store_mb() -> int:
    """A modest object store for a private Ray (outcomes are a few MB each): 512 MB, or less where
    /dev/shm is small."""
    try:
        st = os.statvfs("/dev/shm")
        free = st.f_bavail * st.f_frsize / 2**20
    except OSError:
        return 512
    return int(max(80, min(512, free / 4)))
