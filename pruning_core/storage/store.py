"""Results store on SQLite (WAL mode): one row per run keyed by the config hash, with per-module and
per-block records and the masks (bit-packed, zlib-compressed), so a stored run redraws every chart
without recomputation. Each save is one transaction: a crash mid-save leaves no half row.

Path: `PRUNESCOPE_DB`, else `runs.sqlite` in the user's data directory.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import zlib
from contextlib import closing
from pathlib import Path

import numpy as np
import pandas as pd
import torch

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY,
    created REAL NOT NULL,
    model TEXT NOT NULL, task TEXT NOT NULL, method TEXT NOT NULL, pattern TEXT NOT NULL,
    sparsity REAL NOT NULL,
    achieved_sparsity REAL, dense_accuracy REAL, accuracy REAL, prune_seconds REAL,
    result TEXT NOT NULL            -- ExperimentResult.to_json(), layers and blocks included
);
CREATE TABLE IF NOT EXISTS masks (
    key TEXT NOT NULL REFERENCES runs(key) ON DELETE CASCADE,
    name TEXT NOT NULL,
    rows INTEGER NOT NULL, cols INTEGER NOT NULL,
    bits BLOB NOT NULL,             -- zlib(np.packbits(keep-mask))
    PRIMARY KEY (key, name)
);
CREATE TABLE IF NOT EXISTS attacks (
    key TEXT PRIMARY KEY,           -- AttackConfig.key(): target, recipe, sample, seed, query budget
    created REAL NOT NULL,
    target TEXT NOT NULL,           -- the pruned run's config key, or the dense model's key
    model TEXT NOT NULL, task TEXT NOT NULL, method TEXT NOT NULL, pattern TEXT NOT NULL,
    sparsity REAL NOT NULL, recipe TEXT NOT NULL, n INTEGER NOT NULL, seed INTEGER NOT NULL,
    complete INTEGER NOT NULL DEFAULT 0,
    clean_accuracy REAL, accuracy_under_attack REAL, attack_success_rate REAL,
    config TEXT NOT NULL,           -- AttackConfig.to_dict()
    summary TEXT                    -- robustness.metrics.summarize() once complete
);
CREATE TABLE IF NOT EXISTS attack_examples (
    key TEXT NOT NULL REFERENCES attacks(key) ON DELETE CASCADE,
    idx INTEGER NOT NULL,           -- position in the attack's seeded sample
    record TEXT NOT NULL,           -- original, perturbed, label, predictions, result type, queries
    PRIMARY KEY (key, idx)
);
CREATE TABLE IF NOT EXISTS speed (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL REFERENCES runs(key) ON DELETE CASCADE,
    created REAL NOT NULL,
    device TEXT NOT NULL,           -- e.g. "cpu: Intel(R) Xeon(R) ..." or "cuda: NVIDIA H100 ..."
    threads INTEGER NOT NULL,       -- torch.get_num_threads() while measuring
    batch_sizes TEXT NOT NULL,      -- JSON list: [latency batch, throughput batch]
    seq_len INTEGER NOT NULL,
    result TEXT NOT NULL            -- speed.measure_run(): rows (dense, run) and settings
);
CREATE INDEX IF NOT EXISTS speed_key ON speed(key, created);
CREATE TABLE IF NOT EXISTS sweep_failures (
    key TEXT PRIMARY KEY,           -- the run's config key or the attack's key
    kind TEXT NOT NULL,             -- 'run' or 'attack'
    created REAL NOT NULL,
    sweep TEXT,                     -- the sweep that recorded it (sweeps.id), if any
    model TEXT, task TEXT, method TEXT, pattern TEXT, sparsity REAL,
    config TEXT NOT NULL,           -- ExperimentConfig.to_dict() or AttackConfig.to_dict()
    error TEXT NOT NULL             -- the message (and, for an unexpected exception, its traceback)
);
CREATE TABLE IF NOT EXISTS sweeps (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    started REAL, finished REAL,
    host TEXT, pid INTEGER,
    state TEXT NOT NULL,            -- starting | running | finished | interrupted | failed
    total INTEGER NOT NULL DEFAULT 0,   -- runs + attacks in the grid
    stored INTEGER NOT NULL DEFAULT 0,  -- already in the store when the sweep started (skipped)
    done INTEGER NOT NULL DEFAULT 0,    -- computed by this sweep
    failed INTEGER NOT NULL DEFAULT 0,
    spec TEXT,                      -- the sweep file's path
    log TEXT,                       -- where the sweep's output goes (background sweeps)
    error TEXT                      -- why the sweep itself stopped (state failed)
);
"""

SWEEP_FIELDS = ("started", "finished", "host", "pid", "state", "total", "stored", "done", "failed", "spec", "log",
                "error")

ATTACK_COLUMNS = ("key, created, model, task, method, pattern, sparsity, recipe, n, seed, complete, clean_accuracy, "
                  "accuracy_under_attack, attack_success_rate")


def default_path() -> Path:
    env = os.environ.get("PRUNESCOPE_DB")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("prunescope")) / "runs.sqlite"


def run_time(result_json: dict) -> float:
    """When a run was made: its environment's `started` (the run's own time), else now (older runs, demo rows)."""
    started = (result_json.get("environment") or {}).get("started")
    return float(started) if isinstance(started, (int, float)) else time.time()


def pack_mask(mask: torch.Tensor) -> bytes:
    return zlib.compress(np.packbits(mask.cpu().numpy().astype(bool).ravel()).tobytes(), 6)


def unpack_mask(bits: bytes, rows: int, cols: int) -> torch.Tensor:
    flat = np.unpackbits(np.frombuffer(zlib.decompress(bits), dtype=np.uint8), count=rows * cols)
    return torch.from_numpy(flat.astype(bool).reshape(rows, cols))


class Store:
    """A SQLite file of runs. Safe to use from several threads/processes (one connection per call)."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with closing(self._connect()) as con, con:
                con.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            from pruning_core.core.errors import PrunescopeError

            raise PrunescopeError(f"cannot open the results store {self.path} ({exc}); set PRUNESCOPE_DB "
                                  "to a writable file path") from None

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA foreign_keys=ON")
        return con

    def save(self, result_json: dict, masks: dict[str, torch.Tensor] | None = None,
             packed: dict[str, tuple[int, int, bytes]] | None = None) -> str:
        """Insert or replace one run (and its masks) in a single transaction; returns its key.
        `packed`: masks already packed as `(rows, cols, pack_mask(mask))` (what sweep workers send).
        A recorded sweep failure of the same key is cleared."""
        cfg, key = result_json["config"], result_json["key"]
        packed_rows = [(key, n, m.shape[0], m.shape[1], pack_mask(m)) for n, m in (masks or {}).items()]
        packed_rows += [(key, n, int(r), int(c), bytes(b)) for n, (r, c, b) in (packed or {}).items()]
        with closing(self._connect()) as con, con:
            con.execute("DELETE FROM runs WHERE key = ?", (key,))
            con.execute(
                "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (key, run_time(result_json), cfg["model"], cfg["task"], cfg["method"], cfg["pattern"], cfg["sparsity"],
                 result_json.get("achieved_sparsity"), result_json.get("dense_accuracy"),
                 result_json.get("accuracy"), result_json.get("prune_seconds"), json.dumps(result_json)))
            con.executemany("INSERT INTO masks VALUES (?,?,?,?,?)", packed_rows)
            con.execute("DELETE FROM sweep_failures WHERE key = ?", (key,))
        return key

    def run_keys(self) -> set[str]:
        """Keys of every stored run (one query: a sweep checks thousands of configs at once)."""
        with closing(self._connect()) as con:
            return {r[0] for r in con.execute("SELECT key FROM runs")}

    def has(self, key: str) -> bool:
        with closing(self._connect()) as con:
            return con.execute("SELECT 1 FROM runs WHERE key = ?", (key,)).fetchone() is not None

    def load(self, key: str) -> dict | None:
        with closing(self._connect()) as con:
            row = con.execute("SELECT result FROM runs WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def masks(self, key: str, names: list[str] | None = None) -> dict[str, torch.Tensor]:
        q = "SELECT name, rows, cols, bits FROM masks WHERE key = ?"
        params: list = [key]
        if names is not None:
            q += f" AND name IN ({','.join('?' * len(names))})"
            params += list(names)
        with closing(self._connect()) as con:
            rows = con.execute(q, params).fetchall()
        return {n: unpack_mask(b, r, c) for n, r, c, b in rows}

    def runs(self, **filters) -> pd.DataFrame:
        """Summary table of stored runs, newest first; filters: model=, task=, method=, pattern=."""
        return self._select("SELECT key, created, model, task, method, pattern, sparsity, achieved_sparsity, "
                            "dense_accuracy, accuracy, prune_seconds FROM runs", filters)

    def _select(self, select: str, filters: dict) -> pd.DataFrame:
        """`select` with `column = value` for every filter that is not None, newest first."""
        where = " AND ".join(f"{k} = ?" for k in filters if filters[k] is not None)
        params = [v for v in filters.values() if v is not None]
        sql = select + (f" WHERE {where}" if where else "") + " ORDER BY created DESC"
        with closing(self._connect()) as con:
            return pd.read_sql_query(sql, con, params=params)

    def query(self, sql: str, params: tuple | list = ()) -> pd.DataFrame:
        """The rows of one read-only SQL query (a connection that refuses writes), for the flat tables
        and estimates built on the store; everything that writes goes through the methods above."""
        with closing(self._connect()) as con:
            con.execute("PRAGMA query_only = ON")
            return pd.read_sql_query(sql, con, params=params)

    def delete(self, key: str) -> bool:
        with closing(self._connect()) as con, con:
            return con.execute("DELETE FROM runs WHERE key = ?", (key,)).rowcount > 0

    # ---- attacks: one row per attack, one row per attacked example (saved as each one finishes) ----

    def begin_attack(self, key: str, meta: dict, config: dict) -> None:
        """Create the attack's row if it is new (an unfinished one keeps its finished examples)."""
        with closing(self._connect()) as con, con:
            self._insert_attack(con, key, meta, config)

    @staticmethod
    def _insert_attack(con, key: str, meta: dict, config: dict) -> None:
        con.execute(
            "INSERT OR IGNORE INTO attacks (key, created, target, model, task, method, pattern, sparsity, "
            "recipe, n, seed, config) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (key, time.time(), meta["target"], meta["model"], meta["task"], meta["method"], meta["pattern"],
             meta["sparsity"], meta["recipe"], meta["n"], meta["seed"], json.dumps(config)))

    @staticmethod
    def _complete_attack(con, key: str, summary: dict) -> None:
        con.execute("DELETE FROM sweep_failures WHERE key = ?", (key,))
        con.execute("UPDATE attacks SET complete = 1, clean_accuracy = ?, accuracy_under_attack = ?, "
                    "attack_success_rate = ?, summary = ? WHERE key = ?",
                    (summary["clean_accuracy"], summary["accuracy_under_attack"],
                     summary["attack_success_rate"], json.dumps(summary), key))

    def add_attack_example(self, key: str, record: dict) -> None:
        with closing(self._connect()) as con, con:
            con.execute("INSERT OR REPLACE INTO attack_examples VALUES (?,?,?)",
                        (key, int(record["idx"]), json.dumps(record)))

    def attack_examples(self, key: str) -> list[dict]:
        """The finished examples of an attack, in sample order."""
        with closing(self._connect()) as con:
            rows = con.execute("SELECT record FROM attack_examples WHERE key = ? ORDER BY idx", (key,)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def finish_attack(self, key: str, summary: dict) -> None:
        with closing(self._connect()) as con, con:
            self._complete_attack(con, key, summary)

    def load_attack(self, key: str) -> dict | None:
        """{key, target, complete, config, summary} of an attack, or None."""
        with closing(self._connect()) as con:
            row = con.execute("SELECT key, target, complete, config, summary FROM attacks WHERE key = ?",
                              (key,)).fetchone()
        if row is None:
            return None
        return {"key": row[0], "target": row[1], "complete": bool(row[2]), "config": json.loads(row[3]),
                "summary": json.loads(row[4]) if row[4] else None}

    def attack_done(self, key: str) -> bool:
        with closing(self._connect()) as con:
            row = con.execute("SELECT complete FROM attacks WHERE key = ?", (key,)).fetchone()
        return bool(row and row[0])

    def attack_keys(self) -> set[str]:
        """Keys of every finished attack."""
        with closing(self._connect()) as con:
            return {r[0] for r in con.execute("SELECT key FROM attacks WHERE complete = 1")}

    def attacks(self, **filters) -> pd.DataFrame:
        """Summary table of stored attacks, newest first; filters: model=, task=, method=, recipe=, complete=."""
        unknown = set(filters) - set(ATTACK_COLUMNS.replace(" ", "").split(","))
        if unknown:
            raise ValueError(f"unknown attack filter(s) {sorted(unknown)}")
        return self._select(f"SELECT {ATTACK_COLUMNS} FROM attacks", filters)

    def save_attack(self, attack: dict) -> None:
        """Insert or replace a whole attack ({key, meta, config, summary, examples}) in one transaction
        (used to import shipped demo attacks)."""
        key = attack["key"]
        with closing(self._connect()) as con, con:
            con.execute("DELETE FROM attacks WHERE key = ?", (key,))
            self._insert_attack(con, key, attack["meta"], attack["config"])
            con.executemany("INSERT INTO attack_examples VALUES (?,?,?)",
                            [(key, int(r["idx"]), json.dumps(r)) for r in attack["examples"]])
            if attack.get("summary"):
                self._complete_attack(con, key, attack["summary"])

    def delete_attack(self, key: str) -> bool:
        with closing(self._connect()) as con, con:
            return con.execute("DELETE FROM attacks WHERE key = ?", (key,)).rowcount > 0

    # ---- speed: measured latency/throughput of a run vs its dense model (re-measured only when asked) ----

    def save_speed(self, key: str, measurement: dict) -> int:
        """Store one measurement ({device, threads, batch_sizes, seq_len, rows, ...}); returns its id."""
        with closing(self._connect()) as con, con:
            cur = con.execute(
                "INSERT INTO speed (key, created, device, threads, batch_sizes, seq_len, result) "
                "VALUES (?,?,?,?,?,?,?)",
                (key, time.time(), measurement["device"], int(measurement["threads"]),
                 json.dumps(list(measurement["batch_sizes"])), int(measurement["seq_len"]), json.dumps(measurement)))
            return int(cur.lastrowid)

    def load_speed(self, key: str, device: str | None = None, threads: int | None = None,
                   seq_len: int | None = None) -> dict | None:
        """The newest measurement of run `key` (optionally on this device string, thread count and
        length) with `created` added, or None."""
        rows = self.speeds(key, device=device, threads=threads, seq_len=seq_len)
        return rows[0] if rows else None

    def speeds(self, key: str, device: str | None = None, threads: int | None = None,
               seq_len: int | None = None) -> list[dict]:
        """Every measurement of run `key`, newest first."""
        q, params = "SELECT created, result FROM speed WHERE key = ?", [key]
        for col, v in (("device", device), ("threads", threads), ("seq_len", seq_len)):
            if v is not None:
                q += f" AND {col} = ?"
                params.append(v)
        with closing(self._connect()) as con:
            rows = con.execute(q + " ORDER BY created DESC, id DESC", params).fetchall()
        return [json.loads(r) | {"created": c} for c, r in rows]

    # ---- sweeps: failed configs (cleared by a later success) and the status of each sweep ----------

    def record_failure(self, key: str, kind: str, config: dict, error: str, sweep: str | None = None) -> None:
        """Remember that config `key` failed (replacing an earlier failure of it)."""
        run = config.get("run", config)  # an attack's config holds its run's
        with closing(self._connect()) as con, con:
            con.execute("INSERT OR REPLACE INTO sweep_failures VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                        (key, kind, time.time(), sweep, run.get("model"), run.get("task"), run.get("method"),
                         run.get("pattern"), run.get("sparsity"), json.dumps(config), error))

    def failures(self, **filters) -> pd.DataFrame:
        """Recorded failures, newest first; filters: kind=, sweep=, model=, task=, method=, pattern=."""
        allowed = {"kind", "sweep", "model", "task", "method", "pattern"}
        if set(filters) - allowed:
            raise ValueError(f"unknown failure filter(s) {sorted(set(filters) - allowed)}")
        return self._select("SELECT key, kind, created, sweep, model, task, method, pattern, sparsity, config, "
                            "error FROM sweep_failures", filters)

    def failure_keys(self) -> set[str]:
        with closing(self._connect()) as con:
            return {r[0] for r in con.execute("SELECT key FROM sweep_failures")}

    def begin_sweep(self, sweep_id: str, **fields) -> None:
        """Create the status row of a sweep (state `starting` unless given)."""
        fields.setdefault("state", "starting")
        self._check_sweep_fields(fields)
        cols = ["id", "created", *fields]
        with closing(self._connect()) as con, con:
            con.execute(f"INSERT INTO sweeps ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                        (sweep_id, time.time(), *fields.values()))

    def update_sweep(self, sweep_id: str, **fields) -> None:
        """Set fields of a sweep's status row (created if missing, so a sweep started by hand reports too)."""
        self._check_sweep_fields(fields)
        with closing(self._connect()) as con, con:
            con.execute("INSERT OR IGNORE INTO sweeps (id, created, state) VALUES (?, ?, 'starting')",
                        (sweep_id, time.time()))
            if fields:
                con.execute(f"UPDATE sweeps SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?",
                            (*fields.values(), sweep_id))

    def sweep(self, sweep_id: str) -> dict | None:
        """The status row of a sweep, or None."""
        with closing(self._connect()) as con:
            con.row_factory = sqlite3.Row
            row = con.execute("SELECT * FROM sweeps WHERE id = ?", (sweep_id,)).fetchone()
        return dict(row) if row else None

    def sweeps(self) -> pd.DataFrame:
        """Every sweep's status row, newest first."""
        with closing(self._connect()) as con:
            return pd.read_sql_query("SELECT * FROM sweeps ORDER BY created DESC", con)

    @staticmethod
    def _check_sweep_fields(fields: dict) -> None:
        unknown = set(fields) - set(SWEEP_FIELDS)
        if unknown:
            raise ValueError(f"unknown sweep field(s) {sorted(unknown)}")
