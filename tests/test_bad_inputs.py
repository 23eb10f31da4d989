"""The bad-input corpus: hundreds of generated bad command lines over every subcommand and every method
option (types, ranges, NaN/inf, N:M shapes, missing/empty/corrupt/non-UTF-8/FIFO files, hostile model
folders, sweep files, export paths), run in-process.

Each case must exit 2 with exactly one line on stderr, `prunescope: error: ...`, that names the problem
(the case's regex), print nothing on stdout, raise no traceback, finish within a few seconds (a hang fails
the case instead of blocking the run), and leave a run stored before the corpus byte-identical (its row
and its masks) and the shipped assets untouched. The cases themselves are in tests/badinputs_cases.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import sqlite3
import time
import traceback
from contextlib import closing
from pathlib import Path

import pytest

from badinputs_cases import CASES, SUBCOMMANDS, build_env, serve_cases
from pruning_core.cli import build_parser, main
from pruning_core.core.paths import ASSETS_DIR

# After the fixes every case is refused in well under a second; the few that must try a model load
# (corrupt weights) take about one. A case still running after this long is a hang or heavy work
# done before validation: it fails.
CASE_SECONDS = float(os.environ.get("PRUNESCOPE_CORPUS_CASE_SECONDS", "10"))
# PRUNESCOPE_CORPUS_REPORT=FILE appends one JSON line per case to FILE (argv, problems, stderr, seconds).


def _subcommands() -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return set(sub.choices)


# the time guard (SIGALRM) and the FIFO cases need a POSIX system
pytestmark = pytest.mark.skipif(not hasattr(signal, "setitimer") or not hasattr(os, "mkfifo"),
                                reason="needs POSIX signals and FIFOs")
SUBS = _subcommands()
ALL_CASES = CASES + (serve_cases() if "serve" in SUBS else [])
assert len({c.id for c in ALL_CASES}) == len(ALL_CASES), "case ids must be unique"


def test_corpus_is_large_and_covers_every_subcommand():
    assert len(ALL_CASES) >= 300
    assert set(SUBCOMMANDS) <= SUBS, f"subcommands missing from the CLI: {set(SUBCOMMANDS) - SUBS}"
    covered = {c.argv[0] for c in ALL_CASES if c.argv}
    assert SUBS <= covered, f"subcommands without a bad-input case: {SUBS - covered}"


# ---------------------------------------------------------------------------------------------- fixtures

class CaseTimeout(BaseException):
    """Raised by the alarm; a BaseException so no `except Exception` in the code under test swallows it."""


def _on_alarm(signum, frame):
    raise CaseTimeout


STORED = ["prune", "--method", "magnitude", "--sparsity", "0.5", "--calib-size", "4", "--seq-len", "16",
          "--eval-size", "8", "--device", "cpu"]


def _fingerprint(store_path: Path, key: str) -> str:
    """Hash of the stored run's raw rows (its result, columns and created time, and every mask's bits)."""
    h = hashlib.sha256()
    with closing(sqlite3.connect(store_path)) as con:
        h.update(repr(con.execute("SELECT * FROM runs WHERE key = ?", (key,)).fetchall()).encode())
        h.update(repr(con.execute("SELECT * FROM masks WHERE key = ? ORDER BY name", (key,)).fetchall()).encode())
    return h.hexdigest()


def _as_read(store_path: Path, key: str) -> str:
    """Hash of the stored run as `Store` reads it back: the result and the unpacked masks."""
    from pruning_core.storage.store import Store

    store = Store(store_path)
    h = hashlib.sha256(json.dumps(store.load(key), sort_keys=True).encode())
    for name, mask in sorted(store.masks(key).items()):
        h.update(name.encode())
        h.update(mask.numpy().tobytes())
    return h.hexdigest()


def _assets_state() -> dict[str, tuple[int, int]]:
    """(size, mtime) of the shipped models and splits: a bad input must never write over them."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted((ASSETS_DIR / "splits").glob("*.json")) + sorted((ASSETS_DIR / "models").rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A results store holding one real run, and the hostile files. Each case runs against a fresh copy
    of that store (so a case that is wrongly accepted cannot spoil the next), which must still hold the
    run unchanged afterwards."""
    import pruning_core.data.splits as splits
    from pruning_core.storage.store import Store

    root = tmp_path_factory.mktemp("bad-inputs")
    template = root / "template" / "runs.sqlite"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PRUNESCOPE_DB", str(template))
        # make-splits writes assets/splits when its input is accepted: never during the corpus
        mp.setattr(splits.write_all, "__defaults__", (root / "splits-out",))
        assert main(STORED) == 0, "the stored run of the corpus could not be made"
        keys = Store(template).run_keys()
        assert len(keys) == 1
        key = keys.pop()
        with closing(sqlite3.connect(template)) as con:
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        env = build_env(root / "files", key)
        state = {"template": template, "store": root / "case" / "runs.sqlite", "key": key, "env": env,
                 "fingerprint": _fingerprint(template, key), "assets": _assets_state()}
        state["read"] = _as_read(template, key)
        yield state
        assert _as_read(template, key) == state["read"]


def _fresh_store(corpus) -> Path:
    store = corpus["store"]
    store.parent.mkdir(exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(corpus["template"], store)
    return store


def _no_remote_code_ran(env: dict) -> str | None:
    return "the model folder's remote code was imported" if Path(env["remote_marker"]).exists() else None


POST_CHECKS = {"no_remote_code_ran": _no_remote_code_ran}


# ---------------------------------------------------------------------------------------------- the corpus

def _run(argv: list[str]) -> tuple[int | None, str | None]:
    """main(argv) under an alarm: (exit code, None) or (None, what went wrong: a timeout or a traceback)."""
    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS, 2.0)  # and again every 2 s, should cleanup block too
    try:
        try:
            return main(argv), None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except CaseTimeout:
        return None, f"TIMEOUT: still running after {CASE_SECONDS:g} s (hang, or heavy work before validation)"
    except SystemExit as exc:
        return (exc.code if isinstance(exc.code, int) else 1), None
    except BaseException as exc:  # noqa: BLE001 - every escape is a finding
        tb = traceback.extract_tb(exc.__traceback__)
        where = f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else "?"
        first = str(exc).splitlines()[0][:160] if str(exc) else ""
        return None, f"TRACEBACK {type(exc).__name__} at {where}: {first}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.id for c in ALL_CASES])
def test_bad_input_is_refused_in_one_line(case, corpus, capsys, monkeypatch):
    env = corpus["env"]
    store = _fresh_store(corpus)
    monkeypatch.setenv("PRUNESCOPE_DB", str(store))
    argv = case.resolved(env)
    start = time.perf_counter()
    code, crash = _run(argv)
    seconds = time.perf_counter() - start
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    shown = " | ".join(lines)[:300] or "(nothing on stderr)"

    problems = []
    if crash:
        problems.append(crash)
    elif code != 2:
        problems.append(f"EXIT {code}" + (f"; stdout: {out.strip()[:160]!r}" if out.strip() else ""))
    if "Traceback" in out + err:
        problems.append("a traceback was printed")
    if not crash and code == 2:
        if len(lines) != 1:
            problems.append(f"{len(lines)} stderr lines instead of 1")
        elif not lines[0].startswith("prunescope: error: "):
            problems.append("the stderr line does not start with 'prunescope: error: '")
        elif not re.search(case.expect, lines[0], re.IGNORECASE):
            problems.append(f"the message does not name the problem (/{case.expect}/)")
        if out.strip():
            problems.append(f"stdout not empty: {out.strip()[:120]!r}")
    # the raw rows show any rewrite; a case that went on to work is also read back through Store (slower)
    if _fingerprint(store, corpus["key"]) != corpus["fingerprint"] or (
            (crash or code != 2) and _as_read(store, corpus["key"]) != corpus["read"]):
        problems.append("STORE CHANGED: the stored run's row or masks were rewritten")
    if _assets_state() != corpus["assets"]:
        corpus["assets"] = _assets_state()
        problems.append("ASSETS CHANGED: a shipped model or split file was written")
    if case.post:
        why = POST_CHECKS[case.post](env)
        if why:
            problems.append(why)
    if os.environ.get("PRUNESCOPE_CORPUS_REPORT"):  # a JSON line per case, for triage
        with open(os.environ["PRUNESCOPE_CORPUS_REPORT"], "a") as fh:
            fh.write(json.dumps({"id": case.id, "argv": argv, "problems": problems, "stderr": lines[-3:],
                                 "stdout": out.strip()[:200], "seconds": round(seconds, 2)}) + "\n")
    assert not problems, f"{'; '.join(problems)} [{seconds:.1f} s] stderr: {shown}"
