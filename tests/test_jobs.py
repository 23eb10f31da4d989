"""The job system: submit/wait on a real store and pool (the shipped default model, tiny configs, one
worker), coalescing, cancel, a killed worker, caps, fair order, and the CLI's --background and `jobs`."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

import pruning_core.jobs as jobs
import pruning_core.jobs.api as api
import pruning_core.jobs.table as table
from pruning_core.core.errors import PrunescopeError
from pruning_core.experiments.config import ExperimentConfig
from pruning_core.storage.store import Store

ENV = {"PRUNESCOPE_JOB_WORKERS": "1", "PRUNESCOPE_JOB_IDLE": "20", "PRUNESCOPE_JOB_CANCEL_GRACE": "5"}


def small(sparsity: float) -> ExperimentConfig:
    return ExperimentConfig.create(method="magnitude", sparsity=sparsity, calib_size=8, seq_len=32, eval_size=32)


def spec(sparsity: float) -> dict:
    return {"config": small(sparsity).to_dict()}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One store and its pool for the module (the worker keeps the model loaded between tests)."""
    old = {k: os.environ.get(k) for k in (*ENV, "PRUNESCOPE_DB")}
    path = tmp_path_factory.mktemp("jobs") / "runs.sqlite"
    os.environ.update(ENV | {"PRUNESCOPE_DB": str(path)})
    s = Store(path)
    yield s
    with table.reading(s) as con:
        pool = table.pool_row(con)
    if pool and pool["pid"]:
        try:
            os.kill(pool["pid"], signal.SIGTERM)  # the pool we started: it stops its workers
        except ProcessLookupError:
            pass
    for k, v in old.items():
        os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


@pytest.fixture
def quiet_store(tmp_path, monkeypatch):
    """A store whose submits only queue (no pool), to test the queue itself."""
    monkeypatch.setenv("PRUNESCOPE_JOB_POOL", "off")
    return Store(tmp_path / "q.sqlite")


def rows(store) -> int:
    with table.reading(store) as con:
        return con.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]


def wait_for_events(store, job_id: int, kind: str = "layer", timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while not any(e["type"] == kind for e in jobs.events(store, job_id)):
        assert time.monotonic() < end, f"job {job_id} produced no {kind} event"
        assert jobs.get(store, job_id).active, jobs.get(store, job_id)
        time.sleep(0.1)


def test_submit_wait_matches_foreground(store):
    from pruning_core.storage.prune_run import prune_and_store

    cfg = small(0.5)
    job, how = jobs.submit(store, "prune", spec(0.5), session="s1")
    assert how == "queued" and job.state == "queued" and job.key == cfg.key()
    done = jobs.wait(store, job.id, timeout=240)
    assert done.state == "done", done.error
    assert done.result_key == cfg.key() and store.has(cfg.key())
    assert done.progress == 1.0 and done.progress_text == "block 5 done (6 of 6)" and done.pid
    evs = jobs.events(store, job.id)
    assert [e["seq"] for e in evs] == list(range(1, len(evs) + 1))
    blocks = [jobs.record_of(e) for e in evs if e["type"] == "block"]
    layers = [jobs.record_of(e) for e in evs if e["type"] == "layer"]
    assert [b.block for b in blocks] == list(range(6))
    assert len(layers) == 36 and all(isinstance(r.shape, tuple) for r in layers)
    assert jobs.events(store, job.id, after=evs[-2]["seq"]) == evs[-1:]
    stored = store.load(cfg.key())
    assert [b.cumulative_error for b in blocks] == [b["cumulative_error"] for b in stored["blocks"]]
    fg, computed = prune_and_store(cfg, None)  # the foreground path, no store
    assert computed
    assert fg["accuracy"] == stored["accuracy"]
    assert fg["achieved_sparsity"] == pytest.approx(stored["achieved_sparsity"], abs=1e-9)


def test_coalescing_and_stored(store):
    before = rows(store)
    out = []
    threads = [threading.Thread(target=lambda: out.append(jobs.submit(store, "prune", spec(0.6)))) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = {job.id for job, _ in out}
    assert len(ids) == 1 and rows(store) == before + 1
    assert sorted(how for _, how in out) == ["attached"] * 4 + ["queued"]
    assert jobs.wait(store, ids.pop(), timeout=240).state == "done"
    assert jobs.submit(store, "prune", spec(0.6)) == (None, "stored") and rows(store) == before + 1
    again, how = jobs.submit(store, "prune", spec(0.6), recompute=True)
    assert how == "queued" and again.active
    assert jobs.cancel(store, again.id)
    assert jobs.wait(store, again.id, timeout=120).state == "cancelled"


def test_speed_job_stores_one_measurement(store):
    """A speed job times the stored run against its dense model and stores the measurement once (it was
    stored twice: by measure_run and again by the job); asking again finds it stored."""
    key = small(0.5).key()
    job, how = jobs.submit(store, "prune", spec(0.5))
    if how != "stored":
        assert jobs.wait(store, job.id, timeout=240).state == "done"
    speed = {"key": key, "repeats": 1, "seq_len": 16}
    job, how = jobs.submit(store, "speed", speed, session="s1")
    assert how == "queued" and job.key == f"{key}:cpu:1:16"
    done = jobs.wait(store, job.id, timeout=240)
    assert done.state == "done" and done.result_key == key, done.error
    [measured] = store.speeds(key)
    assert measured["seq_len"] == 16 and measured["repeats"] == 1 and [r["model"] for r in measured["rows"]] == [
        "dense", "run"]
    assert jobs.submit(store, "speed", speed) == (None, "stored")


def test_bad_config_queues_nothing(store):
    before = rows(store)
    bad = small(0.5).to_dict() | {"sparsity": 2.0}
    with pytest.raises(PrunescopeError, match="sparsity"):
        jobs.submit(store, "prune", {"config": bad})
    with pytest.raises(PrunescopeError, match="unknown job kind"):
        jobs.submit(store, "frobnicate", {})
    with pytest.raises(PrunescopeError, match="needs 'config'"):
        jobs.submit(store, "prune", {})
    assert rows(store) == before


def test_cancel_queued_and_running(store):
    running, _ = jobs.submit(store, "prune", spec(0.7))
    queued, _ = jobs.submit(store, "prune", spec(0.8))  # one worker: waits behind the first
    assert jobs.cancel(store, queued.id)
    assert jobs.get(store, queued.id).state == "cancelled"  # at once
    wait_for_events(store, running.id)
    assert jobs.cancel(store, running.id)
    ended = jobs.wait(store, running.id, timeout=60)
    assert ended.state == "cancelled" and ended.error is None
    assert not store.has(small(0.7).key()) and not store.has(small(0.8).key())
    assert not jobs.cancel(store, running.id)  # already ended


def test_killed_worker_fails_the_job_and_retry_completes(store):
    job, _ = jobs.submit(store, "prune", spec(0.55))
    wait_for_events(store, job.id)
    pid = jobs.get(store, job.id).pid
    os.kill(pid, signal.SIGKILL)
    failed = jobs.wait(store, job.id, timeout=60)
    assert failed.state == "failed"
    assert failed.error == "the worker process died (signal 9, SIGKILL)"
    assert not store.has(small(0.55).key())
    again, how = jobs.retry(store, job.id)
    assert how == "queued" and again.id != job.id
    done = jobs.wait(store, again.id, timeout=240)
    assert done.state == "done" and done.pid != pid and store.has(small(0.55).key())
    with pytest.raises(PrunescopeError, match="only a failed or cancelled job"):
        jobs.retry(store, again.id)


def test_caps(quiet_store, monkeypatch):
    monkeypatch.setattr(api, "MAX_PER_SESSION", 2)
    monkeypatch.setattr(api, "MAX_ACTIVE", 3)
    for s in (0.5, 0.6):
        jobs.submit(quiet_store, "prune", spec(s), session="a")
    with pytest.raises(PrunescopeError, match="this session already has 2 jobs queued or running"):
        jobs.submit(quiet_store, "prune", spec(0.7), session="a")
    assert jobs.submit(quiet_store, "prune", spec(0.5), session="a")[1] == "attached"  # not a new job
    jobs.submit(quiet_store, "prune", spec(0.7), session="b")
    with pytest.raises(PrunescopeError, match="the queue is full"):
        jobs.submit(quiet_store, "prune", spec(0.8), session="c")
    assert rows(quiet_store) == 3


def test_fair_order_and_ahead(quiet_store):
    a = [jobs.submit(quiet_store, "prune", spec(s), session="A")[0].id for s in (0.5, 0.6, 0.7)]
    b = jobs.submit(quiet_store, "prune", spec(0.8), session="B")[0].id
    expected = [a[0], b, a[1], a[2]]  # B's one job goes before A's second
    assert [jobs.ahead(quiet_store, j) for j in expected] == [0, 1, 2, 3]
    claimed = []
    for _ in expected:
        with table.immediate(quiet_store) as con:
            claimed.append(table.claim_next(con, os.getpid(), "test"))
    assert claimed == expected
    assert jobs.ahead(quiet_store, a[0]) == 0  # running
    assert [j.id for j in jobs.list_jobs(quiet_store, states=["running"], session="A")] == sorted(a, reverse=True)


def cli(*argv: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pruning_core.cli", *argv], capture_output=True, text=True,
                          env=env, timeout=300)


def test_cli_background_watch_list(store):
    env = os.environ | ENV | {"PRUNESCOPE_DB": str(store.path)}
    args = ["prune", "--background", "--method", "magnitude", "--sparsity", "0.65", "--calib-size", "8",
            "--seq-len", "32", "--eval-size", "32"]
    sub = cli(*args, env=env)
    assert sub.returncode == 0, sub.stderr
    job_id = int(re.match(r"job (\d+): queued", sub.stdout)[1])
    again = cli(*args, env=env)
    assert again.returncode == 0 and f"attached to job {job_id}" in again.stdout
    watch = cli("jobs", "watch", str(job_id), env=env)
    assert watch.returncode == 0, watch.stderr
    assert "block 5: sparsity 0.650" in watch.stderr and "[FFN out]" in watch.stderr
    assert f"job {job_id} done: {small(0.65).key()}" in watch.stdout
    listed = cli("jobs", "list", "--store", str(store.path), env=env)
    assert listed.returncode == 0 and re.search(rf"│\s+{job_id} │ prune\s+│ done", listed.stdout), listed.stdout
    stored = cli(*args, env=env)
    assert stored.returncode == 0 and "already stored" in stored.stdout
    assert cli("jobs", "cancel", str(job_id), env=env).returncode == 1  # it has ended


def test_warm_up_loads_ahead_then_a_prune_reuses_it(tmp_path, monkeypatch):
    """A warm-up job (what the Prune page queues when no pool runs) loads the dense model, evaluates it and
    runs the calibration's dense shadow in the worker; a prune of the same model, task and calibration that
    follows in that worker reuses the dense evaluation, and matches a prune without warm-up. While the pool
    lives a second warm-up queues nothing; PRUNESCOPE_WARM=off turns it off."""
    for k, v in (ENV | {"PRUNESCOPE_WARM": "on"}).items():
        monkeypatch.setenv(k, v)
    s = Store(tmp_path / "warm.sqlite")
    monkeypatch.setenv("PRUNESCOPE_DB", str(s.path))
    cfg = ExperimentConfig.create(method="wanda", sparsity=0.5, calib_size=8, seq_len=32, eval_size=24, seed=3)
    try:
        monkeypatch.setenv("PRUNESCOPE_WARM", "off")
        assert jobs.warm_up(s, cfg.to_dict()) is None and rows(s) == 0
        monkeypatch.setenv("PRUNESCOPE_WARM", "on")
        warm = jobs.warm_up(s, cfg.to_dict())
        assert warm is not None and warm.kind == "warm" and "warm-up" in warm.label
        done = jobs.wait(s, warm.id, timeout=240)
        assert done.state == "done", done.error
        stages = [e["data"].get("text") for e in jobs.events(s, warm.id)]
        assert "running the dense model on the calibration texts" in stages
        assert jobs.warm_up(s, cfg.to_dict()) is None  # the pool (and its warm worker) still runs
        job, how = jobs.submit(s, "prune", {"config": cfg.to_dict()})
        assert how == "queued"
        assert jobs.wait(s, job.id, timeout=240).state == "done"
        stages = [e["data"].get("text") for e in jobs.events(s, job.id)]
        assert any("kept from an earlier run" in (t or "") for t in stages), stages
        warmed = s.load(cfg.key())
    finally:
        with table.reading(s) as con:
            pool = table.pool_row(con)
        if pool and pool["pid"]:
            os.kill(pool["pid"], signal.SIGTERM)
    from pruning_core.experiments.experiment import run_experiment

    plain = run_experiment(cfg)  # this process: nothing warmed for this seed
    assert warmed["accuracy"] == plain.pruned.accuracy
    for field in ("cumulative_error", "heldout_error"):
        assert [b[field] for b in warmed["blocks"]] == \
            pytest.approx([getattr(b, field) for b in plain.prune.blocks], rel=1e-5)
