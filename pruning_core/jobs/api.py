"""The job system's public functions: submit long work (prune, attack, speed, export, sweep; a warm-up) to the
store's worker pool, coalesce identical requests, follow a job's events, cancel and retry it.

A job is a kind plus a coalescing key; while one is queued or running, a second request for the same
key attaches to it (a UNIQUE partial index makes that hold under concurrent submits), and a result the
store already has is read, never recomputed unless asked.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from typing import Iterable

import pruning_core.jobs.pool as pool
import pruning_core.jobs.runners as runners
import pruning_core.jobs.table as table
from pruning_core.core.errors import PrunescopeError

KINDS = runners.KINDS
STATES = ("queued", "running", "done", "failed", "cancelled")
MAX_ACTIVE = 64  # per server (store): queued + running
MAX_PER_SESSION = 8  # queued + running per session


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    key: str
    label: str
    spec: dict
    session: str | None
    state: str
    created: float
    started: float | None
    finished: float | None
    error: str | None  # failed: a one-line reason
    result_key: str | None  # the stored thing to open when done
    progress: float | None  # 0..1 where known
    progress_text: str  # "block 3 of 6", "example 12 of 50", ...
    pid: int | None  # the worker process running it

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running")

    @classmethod
    def from_row(cls, r: dict) -> "Job":
        return cls(r["id"], r["kind"], r["key"], r["label"], json.loads(r["spec"]), r["session"], r["state"],
                   r["created"], r["started"], r["finished"], r["error"], r["result_key"], r["progress"],
                   r["progress_text"] or "", r["pid"])


def job_key(kind: str, spec: dict) -> str:
    """The coalescing key of a request (prune: the config's key; attack: the attack's key; speed: run key
    and settings; export: run key and folder; sweep: a hash of the spec). Checks the spec."""
    from pruning_core.storage.store import Store

    return runners.prepare(kind, spec, Store()).key


def submit(store, kind: str, spec: dict, *, session: str | None = None, recompute: bool = False,
           label: str | None = None) -> tuple[Job | None, str]:
    """Queue a job; returns (job, how), how one of "stored" (the result exists: (None, "stored"), nothing
    queued), "attached" (the queued or running job of the same request) or "queued" (a new job; the pool
    is started if none runs). A bad spec raises PrunescopeError and queues nothing; so does a full queue
    (MAX_ACTIVE) or a session at its cap (MAX_PER_SESSION; no cap without a session)."""
    prep = runners.prepare(kind, spec, store)
    if prep.stored and not recompute:
        return None, "stored"
    with table.immediate(store) as con:
        existing = table.active_row(con, kind, prep.key)
        if existing is not None:
            return Job.from_row(existing), "attached"
        if table.count_active(con) >= MAX_ACTIVE:
            raise PrunescopeError(f"the queue is full ({MAX_ACTIVE} jobs queued or running on this server); "
                                  "try again when some have finished")
        if session is not None and table.count_active(con, session, any_session=False) >= MAX_PER_SESSION:
            raise PrunescopeError(f"this session already has {MAX_PER_SESSION} jobs queued or running, the most "
                                  "one session may have; wait for one to finish or cancel one")
        job_id = table.insert(con, kind, prep.key, label or prep.label, prep.spec, session, recompute)
        if prep.result_key:
            con.execute("UPDATE jobs SET result_key = ? WHERE id = ?", (prep.result_key, job_id))
        job = Job.from_row(table.row(con, job_id))
    ensure_pool(store)
    return job, "queued"


def warm_up(store, config: dict) -> Job | None:
    """Have the pool load, ahead of any request, what every prune of `config`'s model, task, calibration and
    evaluation split needs (the dense model, its evaluation, the dense shadow of the calibration texts), so a
    speaker's first Prune pays only for pruning. Queues a "warm" job only when no pool runs (a live pool's
    worker has already loaded what it ran) and `PRUNESCOPE_WARM` is not "off"; returns it, or None."""
    if os.environ.get("PRUNESCOPE_WARM", "").lower() in ("off", "0", "no"):
        return None
    with table.reading(store) as con:
        if pool.pool_alive(table.pool_row(con)):
            return None
    job, how = submit(store, "warm", {"config": config})
    return job


def _reap(store) -> None:
    """Without a live pool: running jobs whose worker (on this host) is dead are failed; queued work
    gets a new pool."""
    with table.immediate(store) as con:
        row = table.pool_row(con)
        if pool.pool_alive(row):
            return
        host = socket.gethostname()
        for job_id, pid in con.execute("SELECT id, pid FROM jobs WHERE state = 'running' AND host = ?",
                                       (host,)).fetchall():
            if not pool.alive(pid):
                table.finish(con, job_id, "failed", "the worker process died with its pool (killed or "
                                                    "the machine restarted)")
        queued = con.execute("SELECT COUNT(*) FROM jobs WHERE state = 'queued'").fetchone()[0]
    if queued:
        ensure_pool(store)


def get(store, job_id: int) -> Job | None:
    """The job (None if unknown), after reaping jobs whose worker is gone."""
    _reap(store)
    with table.reading(store) as con:
        r = table.row(con, job_id)
    return Job.from_row(r) if r else None


def list_jobs(store, states: Iterable[str] | None = None, session: str | None = None, limit: int = 200) -> list[Job]:
    """Jobs, newest first; only these `states` / this `session` when given."""
    _reap(store)
    q, params = f"SELECT {table.COLUMNS} FROM jobs WHERE 1", []
    if states is not None:
        states = list(states)
        bad = set(states) - set(STATES)
        if bad:
            raise PrunescopeError(f"unknown job state(s) {sorted(bad)}; choose from {', '.join(STATES)}")
        q += f" AND state IN ({','.join('?' * len(states))})"
        params += states
    if session is not None:
        q += " AND session = ?"
        params.append(session)
    with table.reading(store) as con:
        rows = con.execute(q + " ORDER BY id DESC LIMIT ?", (*params, int(limit))).fetchall()
    return [Job.from_row(dict(r)) for r in rows]


def ahead(store, job_id: int) -> int:
    """How many jobs will start before queued job `job_id` (0 if it runs or has ended): the pool's fair
    order played forward (each pick goes to the oldest job of the session with the fewest running)."""
    with table.reading(store) as con:
        me = table.row(con, job_id)
        if me is None or me["state"] != "queued":
            return 0
        queued = con.execute("SELECT id, session FROM jobs WHERE state = 'queued' ORDER BY created, id").fetchall()
        running: dict = {}
        for (s,) in con.execute("SELECT session FROM jobs WHERE state = 'running'"):
            running[s] = running.get(s, 0) + 1
    waiting = [(r[0], r[1]) for r in queued]
    picked = 0
    while waiting:
        i = min(range(len(waiting)), key=lambda k: (running.get(waiting[k][1], 0), k))
        job, session = waiting.pop(i)
        if job == job_id:
            return picked
        picked += 1
        running[session] = running.get(session, 0) + 1
    return picked


def events(store, job_id: int, after: int = 0) -> list[dict]:
    """The job's events with seq > `after`, in order: {"seq", "type", "data"}."""
    with table.reading(store) as con:
        rows = con.execute("SELECT seq, type, data FROM job_events WHERE job = ? AND seq > ? ORDER BY seq",
                           (job_id, after)).fetchall()
    return [{"seq": s, "type": t, "data": json.loads(d)} for s, t, d in rows]


def cancel(store, job_id: int) -> bool:
    """Cancel a job: a queued one at once; a running one stops at its next record (killed after a grace
    period), nothing stored. False if it had already ended (or is unknown)."""
    with table.immediate(store) as con:
        r = table.row(con, job_id)
        if r is None or r["state"] not in ("queued", "running"):
            return False
        con.execute("UPDATE jobs SET cancel = COALESCE(cancel, ?) WHERE id = ?", (time.time(), job_id))
        if r["state"] == "queued":
            table.finish(con, job_id, "cancelled")
    return True


def retry(store, job_id: int) -> tuple[Job | None, str]:
    """Submit a failed or cancelled job again (same spec, session and label)."""
    with table.reading(store) as con:
        r = table.row(con, job_id)
    if r is None:
        raise PrunescopeError(f"no job {job_id} in {store.path}")
    if r["state"] not in ("failed", "cancelled"):
        raise PrunescopeError(f"job {job_id} is {r['state']}; only a failed or cancelled job can be retried")
    return submit(store, r["kind"], json.loads(r["spec"]), session=r["session"], label=r["label"])


def wait(store, job_id: int, timeout: float | None = None, poll: float = 0.2) -> Job:
    """Block until the job has ended; TimeoutError after `timeout` seconds."""
    end = None if timeout is None else time.monotonic() + timeout
    while True:
        job = get(store, job_id)
        if job is None:
            raise PrunescopeError(f"no job {job_id} in {store.path}")
        if not job.active:
            return job
        if end is not None and time.monotonic() > end:
            raise TimeoutError(f"job {job_id} is still {job.state} after {timeout} s")
        time.sleep(poll)


def ensure_pool(store) -> int | None:
    """The pid of this store's live pool, starting one if there is queued work and none runs (none when
    `PRUNESCOPE_JOB_POOL=off`, for tests that only queue)."""
    with table.immediate(store) as con:
        row = table.pool_row(con)
        if pool.pool_alive(row):
            return row["pid"]
        if os.environ.get("PRUNESCOPE_JOB_POOL", "").lower() in ("off", "0", "no"):
            return None
        if con.execute("SELECT COUNT(*) FROM jobs WHERE state = 'queued'").fetchone()[0] == 0:
            return None
        return pool.start(store, con)


def record_of(ev: dict):
    """A layer/block/step event back into its LayerRecord/BlockRecord/StepRecord."""
    from pruning_core.prune.records import BlockRecord, LayerRecord, StepRecord

    d = dict(ev["data"])
    if ev["type"] == "layer":
        return LayerRecord(**d | {"shape": tuple(d["shape"])})
    if ev["type"] == "block":
        return BlockRecord(**d | {"refine_loss": tuple(d["refine_loss"]) if d.get("refine_loss") else None})
    if ev["type"] == "step":
        return StepRecord(**d)
    raise PrunescopeError(f"a {ev['type']} event holds no engine record")
