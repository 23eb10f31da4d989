"""Executors on this machine: `inline` runs one job at a time in this process; `local` runs a pool of
spawned worker processes, sized to the cores and the memory. A worker process that dies (killed, out of
memory) is reported as the error of the jobs it was running, and the sweep goes on with a fresh pool.
"""

from __future__ import annotations

import os
from typing import Iterable, Iterator

import psutil

from pruning_core.core.errors import PrunescopeError
from pruning_core.sweeps.executor_jobs import Executor, Job, Outcome, cpu_count, work
from pruning_core.core.runtime import quiet_libraries


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
