"""Where a sweep's configs run: in this process (`inline`), in a local process pool (`local`), or as
Ray tasks on a laptop or a cluster (`ray`). Every executor does the same thing with a `Job` (one
prune run or one attack) and hands back an `Outcome`; only the driver (`sweep_run.run_sweep`) writes the
results store, so workers never open it.

A worker catches every exception of its job and returns it as the outcome's error, so one bad
config never stops a sweep; a worker process that dies (killed, out of memory) is reported as the
error of the jobs it was running, and the sweep goes on with a fresh pool.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import traceback
from dataclasses import dataclass
from typing import Iterable, Iterator

import psutil

from pruning_core.errors import PrunescopeError
from pruning_core.runtime import quiet_libraries

EXECUTORS = ("local", "ray", "inline")
# What workers inherit from the driver's environment (Ray workers on other machines get these too).
PASS_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME", "PRUNESCOPE_NLTK_DATA",
            "TOKENIZERS_PARALLELISM")


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


def available_memory_mb() -> float | None:
    """Memory available to new processes without swapping, in MB (psutil's `available`, which is
    MemAvailable on Linux); None where psutil cannot tell."""
    try:
        return psutil.virtual_memory().available / 2**20
    except (OSError, RuntimeError, AttributeError):
        return None


def default_workers(jobs: int, peak_mb: float | None = None) -> int:
    """Workers for a local pool: one per core, no more than the jobs, and no more than fit in the
    available memory when the peak memory of one job is known (from earlier runs)."""
    n = min(cpu_count(), max(jobs, 1))
    mem = available_memory_mb()
    if peak_mb and mem:
        n = min(n, max(1, int(0.8 * mem // peak_mb)))
    return max(1, n)


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
    from pruning_core.config import ExperimentConfig
    from pruning_core.experiment import run_experiment
    from pruning_core.store import pack_mask

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


def _init_worker(threads: int, gpu_counter, gpus: int) -> None:
    """Pool worker set-up: quiet libraries, torch threads, one GPU each (round robin) where there are GPUs."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    if gpus and gpu_counter is not None:
        with gpu_counter.get_lock():
            index = gpu_counter.value
            gpu_counter.value += 1
        os.environ["CUDA_VISIBLE_DEVICES"] = str(index % gpus)
    quiet_libraries()
    import torch

    torch.set_num_threads(threads)


# ------------------------------------------------------------------------------------ executors


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


class InlineExecutor(Executor):
    """One job at a time in this process (debugging, tests, and the smallest sweeps), with `threads`
    torch threads while a job runs (default: as the process has)."""

    name = "inline"

    def __init__(self, threads: int | None = None):
        self.threads = threads

    def describe(self) -> str:
        return "this process" + (f" with {self.threads} torch thread(s)" if self.threads else "")

    def run(self, jobs: Iterable[Job]) -> Iterator[Outcome]:
        import torch

        before = torch.get_num_threads()
        for job in jobs:
            try:
                out = work(job, self.threads)
            finally:
                torch.set_num_threads(before)
            yield out


class LocalExecutor(Executor):
    """A pool of `workers` processes (spawned: torch and fork do not mix), each with
    cores // workers torch threads so the pool does not oversubscribe the machine."""

    name = "local"

    def __init__(self, workers: int | None = None, threads: int | None = None, start_method: str = "spawn"):
        if workers is not None and workers < 1:
            raise PrunescopeError(f"--workers must be at least 1; got {workers}")
        self.workers = workers or cpu_count()
        self.threads = threads or max(1, cpu_count() // self.workers)
        self.start_method = start_method
        self._pool = None

    def describe(self) -> str:
        return f"local pool of {self.workers} worker(s) x {self.threads} torch thread(s)"

    def _new_pool(self):
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        ctx = mp.get_context(self.start_method)
        gpus = _cuda_devices()
        counter = ctx.Value("i", 0) if gpus else None
        self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=_init_worker,
                                         initargs=(self.threads, counter, gpus))
        return self._pool

    def run(self, jobs: Iterable[Job]) -> Iterator[Outcome]:
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        queue = list(jobs)[::-1]
        pool = self._pool or self._new_pool()
        running: dict = {}
        while queue or running:
            while queue and len(running) < self.workers:  # at most one job per worker in flight
                job = queue.pop()
                running[pool.submit(work, job)] = job
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            died = (f"a worker process died (killed, or out of memory) while this config was one of "
                    f"{len(running)} running at once")
            broken = False
            for fut in finished:
                job = running.pop(fut)
                try:
                    yield fut.result()
                except BrokenProcessPool:
                    broken = True
                    yield Outcome(job, error=died)
            if broken:  # every job in flight died with the pool; a fresh pool runs the rest
                for job in running.values():
                    yield Outcome(job, error=died)
                running.clear()
                self._shutdown(kill=True)
                pool = self._new_pool()

    def _shutdown(self, kill: bool) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if kill:  # interrupted: stop the workers now instead of letting them finish their configs
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.terminate()
        pool.shutdown(wait=not kill, cancel_futures=True)

    def close(self) -> None:
        self._shutdown(kill=False)

    def __exit__(self, exc_type, *exc) -> None:
        self._shutdown(kill=exc_type is not None)


def _cuda_devices() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:
        return 0


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
