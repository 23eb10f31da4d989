"""Sweeps in the background (for the dashboard): a detached `prunescope sweep` process, its status row in
the store, and cancelling it."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import psutil

from pruning_core.storage.store import Store


@dataclass(frozen=True)
class SweepHandle:
    id: str
    pid: int
    store_path: Path
    spec: Path
    log: Path


def new_sweep_id() -> str:
    import secrets

    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def start_background(spec: "str | Path | dict", store_path: str | Path | None = None, executor: str = "local",
                     workers: int | None = None, extra_args: Iterable[str] = ()) -> SweepHandle:
    """Check a sweep (a file, or a dict as a sweep file would hold) and start `prunescope sweep` on it as
    a detached process in its own session, so a browser reload or a Streamlit rerun does not stop it.
    Its output goes to `sweeps/<id>.log` beside the store, its progress to the store's `sweeps` table
    (read it with `status`). Raises PrunescopeError for a bad sweep before starting anything."""
    import subprocess
    import sys

    import pruning_core.sweeps.sweepfile as sweepfile

    store = Store(store_path)
    sweep = sweepfile.parse(spec) if isinstance(spec, dict) else sweepfile.load(spec)
    sweep_id = new_sweep_id()
    folder = store.path.parent / "sweeps"
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(spec, dict):
        path = folder / f"{sweep_id}.json"
        path.write_text(json.dumps(spec, indent=1))
    else:
        path = Path(spec).resolve()
    log = folder / f"{sweep_id}.log"
    cmd = [sys.executable, "-m", "pruning_core.cli", "sweep", str(path), "--store", str(store.path),
           "--sweep-id", sweep_id, "--executor", executor, *(["--workers", str(workers)] if workers else []),
           *extra_args]
    store.begin_sweep(sweep_id, state="starting", total=len(sweep), spec=str(path), log=str(log))
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, env=os.environ | {"PYTHONUNBUFFERED": "1"})
    import socket

    store.update_sweep(sweep_id, pid=proc.pid, host=socket.gethostname())
    return SweepHandle(sweep_id, proc.pid, store.path, path, log)


def _alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie child of ours is reaped and counts as gone, so does any zombie)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    except OSError:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:  # ZombieProcess included
        return False
    except psutil.AccessDenied:  # someone else's process: it exists
        return True


def status(store: Store, sweep_id: str) -> dict | None:
    """The status row of a sweep ({id, state, total, stored, done, failed, pid, started, finished, log,
    ...}) with `alive` (its process still runs) and `remaining`; a sweep that stopped without saying so
    (killed) has state `died`. None for an unknown id."""
    import socket

    row = store.sweep(sweep_id)
    if row is None:
        return None
    here = row.get("host") in (None, socket.gethostname())
    row["alive"] = bool(row.get("pid")) and here and _alive(int(row["pid"]))
    if row["state"] in ("starting", "running") and here and row.get("pid") and not row["alive"]:
        row["state"] = "died"
    row["remaining"] = max(0, (row["total"] or 0) - (row["stored"] or 0) - (row["done"] or 0) - (row["failed"] or 0))
    return row


def cancel(store: Store, sweep_id: str) -> bool:
    """Stop a background sweep (SIGTERM to its process group; finished configs stay stored). True if
    a running sweep was signalled."""
    import signal

    row = status(store, sweep_id)
    if not row or not row["alive"]:
        return False
    try:
        os.killpg(int(row["pid"]), signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True
