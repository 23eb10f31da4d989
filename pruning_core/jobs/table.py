"""The job tables in the results store: `jobs` (one row per job), `job_events` (its progress records, in
order) and `job_pool` (the one pool process of this store). Every write that decides something (insert,
claim, finish) runs inside BEGIN IMMEDIATE, so two processes never both take the same decision.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing, contextmanager
from typing import Iterator

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,             -- prune | attack | speed | export | sweep
    key TEXT NOT NULL,              -- the coalescing key (api.job_key)
    label TEXT NOT NULL,
    spec TEXT NOT NULL,             -- JSON: what the runner needs
    session TEXT,                   -- who asked (a dashboard session), for the caps and fair order
    state TEXT NOT NULL,            -- queued | running | done | failed | cancelled
    created REAL NOT NULL, started REAL, finished REAL,
    error TEXT, result_key TEXT,
    progress REAL, progress_text TEXT NOT NULL DEFAULT '',
    pid INTEGER, host TEXT,         -- the worker process running it
    recompute INTEGER NOT NULL DEFAULT 0,
    cancel REAL                     -- when a cancel was asked for a running job
);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_active ON jobs(kind, key) WHERE state IN ('queued', 'running');
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, created);
CREATE TABLE IF NOT EXISTS job_events (
    job INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,             -- layer | block | step | stage | example | log
    data TEXT NOT NULL,             -- JSON
    PRIMARY KEY (job, seq)
);
CREATE TABLE IF NOT EXISTS job_pool (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    pid INTEGER, host TEXT, started REAL, heartbeat REAL, workers INTEGER
);
"""

COLUMNS = ("id, kind, key, label, spec, session, state, created, started, finished, error, result_key, progress, "
           "progress_text, pid, host, recompute, cancel")



def ensure_schema(con: sqlite3.Connection) -> None:
    con.executescript(SCHEMA)


def connect(store) -> sqlite3.Connection:
    """A connection to `store`'s file with the job tables created; autocommit mode, so callers open their own transactions
    with `immediate`."""
    con = sqlite3.connect(store.path, timeout=30, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA foreign_keys=ON")
    con.row_factory = sqlite3.Row
    if not con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'job_pool'").fetchone():
        ensure_schema(con)  # checked on every connection: a store file can be replaced under the same path
    return con


@contextmanager
def immediate(store) -> Iterator[sqlite3.Connection]:
    """A write transaction taken at once (BEGIN IMMEDIATE): committed on success, rolled back on error."""
    with closing(connect(store)) as con:
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")


@contextmanager
def reading(store) -> Iterator[sqlite3.Connection]:
    with closing(connect(store)) as con:
        yield con


def row(con, job_id: int) -> dict | None:
    r = con.execute(f"SELECT {COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return dict(r) if r else None


def active_row(con, kind: str, key: str) -> dict | None:
    r = con.execute(f"SELECT {COLUMNS} FROM jobs WHERE kind = ? AND key = ? AND state IN ('queued', 'running')",
                    (kind, key)).fetchone()
    return dict(r) if r else None


def count_active(con, session: str | None = None, any_session: bool = True) -> int:
    q = "SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')"
    if any_session:
        return con.execute(q).fetchone()[0]
    return con.execute(q + " AND session IS ?", (session,)).fetchone()[0]


def insert(con, kind: str, key: str, label: str, spec: dict, session: str | None, recompute: bool) -> int:
    cur = con.execute("INSERT INTO jobs (kind, key, label, spec, session, state, created, recompute) "
                      "VALUES (?,?,?,?,?, 'queued', ?, ?)",
                      (kind, key, label, json.dumps(spec), session, time.time(), int(recompute)))
    return int(cur.lastrowid)


# the fair order: the oldest queued job of the session with the fewest running jobs
NEXT = """
SELECT q.id FROM jobs q WHERE q.state = 'queued'
ORDER BY (SELECT COUNT(*) FROM jobs r WHERE r.state = 'running' AND r.session IS q.session), q.created, q.id
LIMIT 1
"""


def claim_next(con, pid: int, host: str) -> int | None:
    """Mark the next queued job running by worker `pid` (call inside `immediate`); its id, or None."""
    r = con.execute(NEXT).fetchone()
    if r is None:
        return None
    con.execute("UPDATE jobs SET state = 'running', started = ?, pid = ?, host = ? WHERE id = ?",
                (time.time(), pid, host, r[0]))
    return int(r[0])


def finish(con, job_id: int, state: str, error: str | None = None, result_key: str | None = None) -> bool:
    """End a queued or running job; False if it had already ended."""
    cur = con.execute("UPDATE jobs SET state = ?, finished = ?, error = ?, result_key = COALESCE(?, result_key), "
                      "progress = CASE WHEN ? = 'done' THEN 1.0 ELSE progress END "
                      "WHERE id = ? AND state IN ('queued', 'running')",
                      (state, time.time(), error, result_key, state, job_id))
    return cur.rowcount > 0


def add_event(con, job_id: int, type_: str, data: dict) -> int:
    seq = con.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM job_events WHERE job = ?", (job_id,)).fetchone()[0]
    con.execute("INSERT INTO job_events VALUES (?,?,?,?)", (job_id, seq, type_, json.dumps(data)))
    return int(seq)


def set_progress(con, job_id: int, progress: float | None, text: str) -> None:
    con.execute("UPDATE jobs SET progress = ?, progress_text = ? WHERE id = ?", (progress, text, job_id))


def pool_row(con) -> dict | None:
    r = con.execute("SELECT pid, host, started, heartbeat, workers FROM job_pool WHERE id = 1").fetchone()
    return dict(r) if r and r["pid"] else None


def set_pool(con, pid: int | None, host: str | None = None, workers: int | None = None) -> None:
    now = time.time()
    con.execute("INSERT OR REPLACE INTO job_pool (id, pid, host, started, heartbeat, workers) VALUES (1,?,?,?,?,?)",
                (pid, host, now if pid else None, now if pid else None, workers))


def heartbeat(con, pid: int) -> None:
    con.execute("UPDATE job_pool SET heartbeat = ? WHERE id = 1 AND pid = ?", (time.time(), pid))
