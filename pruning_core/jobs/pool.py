"""The worker pool of one store: a detached supervisor process (its pid and heartbeat in `job_pool`) that
keeps N persistent worker processes while there is work. A worker claims the next queued job in the fair
order, runs it (the dense model stays loaded between jobs), and marks it done, failed or cancelled. A
worker that dies holding a job fails that job with the signal's name and is replaced; a cancelled job
that does not stop within the grace period is killed. The pool exits after `PRUNESCOPE_JOB_IDLE`
seconds (default 300) without work: long enough that a warmed worker (see `api.warm_up`) is still there when
a speaker presses Prune a few minutes after opening the page.

    python -m pruning_core.jobs supervise STORE     (what `ensure_pool` starts)
    python -m pruning_core.jobs work STORE SUPERVISOR_PID THREADS
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path

import psutil

import pruning_core.jobs.runners as runners
import pruning_core.jobs.table as table
from pruning_core.core.errors import PrunescopeError
from pruning_core.storage.store import Store

HEARTBEAT_STALE = 60.0  # a pool row older than this names a pool that is gone (or a reused pid)
TICK = 0.25


def workers_wanted() -> int:
    """`PRUNESCOPE_JOB_WORKERS`, default half the cores (at least one)."""
    env = os.environ.get("PRUNESCOPE_JOB_WORKERS")
    if env:
        try:
            n = int(env)
        except ValueError:
            n = 0
        if n < 1:
            raise PrunescopeError(f"PRUNESCOPE_JOB_WORKERS must be a positive integer; got '{env}'")
        return n
    return max(1, (os.cpu_count() or 1) // 2)


def idle_seconds() -> float:
    return float(os.environ.get("PRUNESCOPE_JOB_IDLE", "300"))


def cancel_grace() -> float:
    return float(os.environ.get("PRUNESCOPE_JOB_CANCEL_GRACE", "10"))


def alive(pid: int | None) -> bool:
    """Whether process `pid` runs here (a zombie counts as gone)."""
    if not pid:
        return False
    try:
        return psutil.Process(int(pid)).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def pool_alive(pool: dict | None) -> bool:
    return (pool is not None and pool["host"] == socket.gethostname() and alive(pool["pid"])
            and time.time() - (pool["heartbeat"] or 0) < HEARTBEAT_STALE)


def log_path(store: Store) -> Path:
    return store.path.parent / "jobs" / "pool.log"


def start(store: Store, con) -> int:
    """Start a detached supervisor for `store` and record it in `job_pool` (call inside `table.immediate`,
    so a second submitter waits and then sees this pool)."""
    log = log_path(store)
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pruning_core.jobs", "supervise", str(store.path)]
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, env=os.environ | {"PYTHONUNBUFFERED": "1"})
    table.set_pool(con, proc.pid, socket.gethostname(), workers_wanted())
    return proc.pid


def death_reason(returncode: int) -> str:
    """'the worker process died (signal 9, SIGKILL)' for a negative return code, else its exit status."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "unknown signal"
        return f"the worker process died (signal {-returncode}, {name})"
    return f"the worker process exited with status {returncode} while running the job"


def fail_jobs_of(store: Store, pid: int, reason: str) -> None:
    """End the running jobs of dead worker `pid`: cancelled if a cancel was asked, else failed with `reason`."""
    with table.immediate(store) as con:
        rows = con.execute("SELECT id, cancel FROM jobs WHERE state = 'running' AND pid = ? AND host = ?",
                           (pid, socket.gethostname())).fetchall()
        for job_id, cancel in rows:
            table.finish(con, job_id, "cancelled" if cancel is not None else "failed",
                         None if cancel is not None else reason)


# ---- the supervisor ----

def _stop(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM: stop the workers and leave the pool row free

def supervise(store_path: str) -> int:
    store = Store(store_path)
    me, host = os.getpid(), socket.gethostname()
    n = workers_wanted()
    threads = max(1, (os.cpu_count() or 1) // n) if n > 1 else 0
    workers: list[subprocess.Popen] = []
    idle_since = time.monotonic()
    print(f"[pool {me}] started for {store.path} with up to {n} workers", flush=True)
    signal.signal(signal.SIGTERM, _stop)
    try:
        while True:
            with table.immediate(store) as con:
                pool = table.pool_row(con)
                if pool is None or pool["pid"] != me:  # replaced (reaped as stale): leave the store to it
                    print(f"[pool {me}] no longer the pool of this store; exiting", flush=True)
                    return 0
                table.heartbeat(con, me)
                queued = con.execute("SELECT COUNT(*) FROM jobs WHERE state = 'queued'").fetchone()[0]
                late = con.execute("SELECT pid FROM jobs WHERE state = 'running' AND cancel IS NOT NULL "
                                   "AND cancel < ? AND host = ?", (time.time() - cancel_grace(), host)).fetchall()
            for w in list(workers):
                rc = w.poll()
                if rc is not None:
                    workers.remove(w)
                    fail_jobs_of(store, w.pid, death_reason(rc))
                    print(f"[pool {me}] worker {w.pid} ended ({death_reason(rc)})", flush=True)
            mine = {w.pid for w in workers}
            for (pid,) in late:  # a cancelled job that did not stop at its next record
                if pid in mine:
                    print(f"[pool {me}] killing worker {pid}: its job was cancelled and did not stop", flush=True)
                    os.kill(pid, signal.SIGKILL)
            with table.reading(store) as con:
                busy = con.execute("SELECT COUNT(*) FROM jobs WHERE state = 'running' AND host = ? AND pid IN "
                                   f"({','.join('?' * len(mine)) or 'NULL'})", (host, *mine)).fetchone()[0]
            while queued and len(workers) < n:
                workers.append(subprocess.Popen(
                    [sys.executable, "-m", "pruning_core.jobs", "work", str(store.path), str(me), str(threads)],
                    stdin=subprocess.DEVNULL))
                print(f"[pool {me}] started worker {workers[-1].pid}", flush=True)
            if queued or busy:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > idle_seconds():
                with table.immediate(store) as con:  # atomically with the check, so no submit is stranded
                    if con.execute("SELECT COUNT(*) FROM jobs WHERE state = 'queued'").fetchone()[0] == 0:
                        table.set_pool(con, None)
                        print(f"[pool {me}] idle; exiting", flush=True)
                        return 0
            time.sleep(TICK)
    except KeyboardInterrupt:
        with table.immediate(store) as con:
            if (table.pool_row(con) or {}).get("pid") == me:
                table.set_pool(con, None)
        return 0
    finally:
        for w in workers:
            if w.poll() is None:
                w.terminate()
        for w in workers:
            try:
                rc = w.wait(timeout=10)
            except subprocess.TimeoutExpired:
                w.kill()
                rc = w.wait()
            fail_jobs_of(store, w.pid, death_reason(rc) if rc else "the pool stopped while the job ran")


# ---- a worker ----

def work(store_path: str, supervisor: int, threads: int) -> int:
    if threads:
        import torch

        torch.set_num_threads(threads)
    store = Store(store_path)
    me, host = os.getpid(), socket.gethostname()
    while True:
        if os.getppid() != supervisor:  # orphaned: the supervisor is gone
            return 0
        with table.immediate(store) as con:
            pool = table.pool_row(con)
            if pool is None or pool["pid"] != supervisor:
                return 0
            job_id = table.claim_next(con, me, host)
        if job_id is None:
            time.sleep(TICK)
            continue
        run_one(store, job_id)


def run_one(store: Store, job_id: int) -> None:
    """Run claimed job `job_id` and record how it ended."""
    import json

    with table.reading(store) as con:
        row = table.row(con, job_id)
    t = time.time()
    print(f"[worker {os.getpid()}] job {job_id}: {row['label']}", flush=True)
    state, error, result_key = "done", None, None
    try:
        result_key = runners.run(row["kind"], json.loads(row["spec"]), store, runners.Context(store, job_id),
                                 bool(row["recompute"]))
    except runners.Cancelled:
        state = "cancelled"
    except PrunescopeError as exc:
        state, error = "failed", str(exc).splitlines()[0] if str(exc) else "failed"
    except Exception as exc:  # noqa: BLE001 - any failure of a job is reported on its row, the worker goes on
        traceback.print_exc()
        state, error = "failed", f"{type(exc).__name__}: {exc}".splitlines()[0]
    with table.immediate(store) as con:
        table.finish(con, job_id, state, error, result_key)
    print(f"[worker {os.getpid()}] job {job_id}: {state} in {time.time() - t:.1f} s"
          + (f" ({error})" if error else ""), flush=True)


def main(argv: list[str]) -> int:
    from pruning_core.core.runtime import quiet_libraries

    quiet_libraries()
    if argv[:1] == ["supervise"] and len(argv) == 2:
        return supervise(argv[1])
    if argv[:1] == ["work"] and len(argv) == 4:
        return work(argv[1], int(argv[2]), int(argv[3]))
    print(__doc__, file=sys.stderr)
    return 2
