"""The multi-seed grids the real way (issue 16 items 3 and 5): the Compare and Robustness pages' compute buttons
submit one job per missing cell, the real worker pool of the tests' store computes them, and a rerun of the page
draws one point per cell whose value is the mean over the seeds with their t-interval (pruning_core.measure.
intervals.seed_spread), read from the figure's JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pruning_core.measure.intervals import seed_spread

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")


@pytest.fixture(autouse=True)
def one_worker(monkeypatch):
    """A pool started by these tests runs one worker and exits 5 s after its last job."""
    monkeypatch.setenv("PRUNESCOPE_JOB_WORKERS", "1")
    monkeypatch.setenv("PRUNESCOPE_JOB_IDLE", "5")


def _store():
    from dashboard.common import get_store

    return get_store()


def _page(page: str, state: dict):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    for k, v in state.items():
        at.session_state[k] = v
    at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at


def _figures(at) -> dict[str, dict]:
    return {s["layout"]["title"]["text"]: s for s in (json.loads(c.proto.spec) for c in at.get("plotly_chart"))}


def _jobs_of(kind: str, keys: list[str]) -> list:
    from pruning_core import jobs

    return [j for j in jobs.list_jobs(_store(), limit=1000) if j.kind == kind and j.key in keys]


def _press_twice(at, button: str, kind: str, keys: list[str]) -> list:
    """Press the page's compute button, then again: the second press attaches to the queued or running jobs
    (or, had both finished in between, finds nothing missing), so each cell has exactly one job."""
    at.button(key=button).click()
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    first = _jobs_of(kind, keys)
    assert sorted(j.key for j in first) == sorted(keys)  # one job per cell, none for anything else
    assert {j.session for j in first} == {at.session_state["_session_id"]}
    at.button(key=button).click()  # shown: the run that submitted counted the cells missing before it did
    at.run()
    assert not at.exception, at.exception
    assert sorted(j.id for j in _jobs_of(kind, keys)) == sorted(j.id for j in first)  # attached, not duplicated
    said = f"0 (attack )?jobs queued, {len(keys)} already running or queued"
    toasts = [t.value for t in at.toast]
    assert any(re.match(said, t) for t in toasts) or (not toasts and not any(j.active for j in _jobs_of(kind, keys)))
    return first


def _wait_all(found: list, timeout: float) -> None:
    from pruning_core import jobs

    for job in found:
        done = jobs.wait(_store(), job.id, timeout=timeout)
        assert done.state == "done", (done.label, done.error)


def test_compare_computes_a_two_seed_grid_through_jobs():
    """Seeds 0,1 on a one-cell grid (magnitude 50%): the button queues exactly the two prune jobs (the dense
    reference is measured inside each run, no job of its own), the pool computes them, and the rerun page's
    accuracy point is the mean of the two stored accuracies with their t-interval."""
    from pruning_core.experiments.config import ExperimentConfig

    tiny = {"cmp_task": "rotten_tomatoes", "cmp_methods": ["magnitude"], "cmp_patterns": ["unstructured"],
            "cmp_sparsities": [0.5], "cmp_calib": 8, "cmp_seq": 32, "cmp_eval": 24, "cmp_seeds": "0,1"}
    configs = [ExperimentConfig.create(method="magnitude", sparsity=0.5, calib_size=8, seq_len=32, eval_size=24,
                                       seed=s) for s in (0, 1)]
    keys = [c.key() for c in configs]
    assert not any(_store().has(k) for k in keys), "another test stored this grid; pick other settings"
    at = _page("compare_page.py", tiny)
    assert "2 runs in the grid: 0 stored, 2 to compute" in [c.value for c in at.caption]
    found = _press_twice(at, "cmp_run", "prune", keys)
    assert len(found) == 2
    _wait_all(found, timeout=240)
    at.run()
    assert not at.exception, at.exception
    assert "2 runs in the grid: 2 stored, 0 to compute" in [c.value for c in at.caption]
    assert not any(b.key == "cmp_run" for b in at.button)
    accs = [_store().load(k)["accuracy"] for k in keys]
    assert accs[0] != accs[1]  # the seeds evaluate different subsets: a spread to draw
    [trace] = _figures(at)["Accuracy vs sparsity"]["data"]  # one method, one pattern: one line
    m, lo, hi = seed_spread(accs)
    assert trace["name"].startswith("magnitude") and len(trace["y"]) == 1  # ONE point for the two seeds
    assert trace["y"] == pytest.approx([sum(accs) / 2]) and m == pytest.approx(sum(accs) / 2)
    assert trace["error_y"]["array"] == pytest.approx([hi - m])
    assert trace["error_y"]["arrayminus"] == pytest.approx([m - lo])
    assert trace["customdata"][0][:2] == pytest.approx([lo, hi])
    assert trace["customdata"][0][2] == "mean of 2 seeds, 95% t-interval"
    assert len(_jobs_of("prune", keys)) == 2  # the rerun submitted nothing


def test_robustness_computes_two_attack_seeds_through_jobs():
    """Seeds 0,1 on a one-cell attack grid (magnitude 50%, pruthi, 4 examples, 30 queries each): the button
    queues exactly the two attack jobs (no dense attack: sparsity 0 is not in the grid; each job prunes its
    target itself), the pool runs them, and each panel's point is the mean over the two seeds with its
    t-interval."""
    from pruning_core.sweeps.spec import attack_grid

    grid = dict(n=4, query_budget=30, visible_only=False, calib_size=8, seq_len=32)
    configs = [c for seed in (0, 1) for c in attack_grid("rotten_tomatoes", ["magnitude"], [0.5],
                                                         recipes=("pruthi",), seed=seed, **grid)]
    keys = [c.key() for c in configs]
    assert len(set(keys)) == 2 and not any(_store().attack_done(k) for k in keys)
    at = _page("robustness_page.py", {"rob_task": "rotten_tomatoes", "rob_methods": ["magnitude"],
                                      "rob_sparsities": [0.5], "rob_recipe": "pruthi", "rob_n": 4, "rob_budget": 30,
                                      "rob_visible": False, "rob_seeds": "0,1", "rob_calib": 8, "rob_seq": 32})
    assert "2 attacks in the grid: 0 stored, 2 to compute" in [c.value for c in at.caption]
    found = _press_twice(at, "rob_run", "attack", keys)
    assert len(found) == 2 and not _jobs_of("prune", [c.run.key() for c in configs])
    _wait_all(found, timeout=300)
    at.run()
    assert not at.exception, at.exception
    assert "2 attacks in the grid: 2 stored, 0 to compute" in [c.value for c in at.caption]
    summaries = [_store().load_attack(k)["summary"] for k in keys]
    assert summaries[0]["accuracy_under_attack"] != summaries[1]["accuracy_under_attack"]  # a spread to draw
    fig = _figures(at)["Robustness vs sparsity under pruthi (rotten_tomatoes, 4 examples)"]
    panels = [t for t in fig["data"] if t["name"] == "magnitude"]  # clean, under attack, success rate
    assert len(panels) == 3 and not any(t["name"] == "dense" for t in fig["data"])
    for trace, measure in zip(panels, ("clean_accuracy", "accuracy_under_attack", "attack_success_rate")):
        values = [s[measure] for s in summaries]
        m, lo, hi = seed_spread(values)
        assert len(trace["y"]) == 1 and trace["y"][0] == pytest.approx(m), measure  # ONE point, the mean
        assert trace["error_y"]["array"] == pytest.approx([hi - m]), measure
        assert trace["error_y"]["arrayminus"] == pytest.approx([m - lo]), measure
        assert trace["customdata"][0][0] == "mean of 2 seeds of 4 examples, 95% t-interval"
    assert len(_jobs_of("attack", keys)) == 2


@pytest.mark.slow
def test_demo_speed_preset_end_to_end_through_the_pool(fresh_app):
    """Demo path (b) on an empty store, the real way (about 4 minutes on a busy 2-core CPU: two prunes of
    64 x 64 calibration texts and 500 evaluated, then 20 timed passes of each model and its dense one): one press
    queues the two prunes; once they are stored the same session's rerun queues the two speed jobs by itself;
    once those are done the preset draws each run's stored speed-up over the dense model."""
    from pruning_core import jobs
    from pruning_core.experiments.config import ExperimentConfig

    keys = [ExperimentConfig.create(model="default", task="rotten_tomatoes", method=m, sparsity=0.5, calib_size=64,
                                    seq_len=64, eval_size=500).key() for m in ("magnitude", "kwon")]
    at = _page("demo_page.py", {})
    at.button(key="demo_speed_run").click()
    at.run()
    assert not at.exception, at.exception
    prunes = jobs.list_jobs(fresh_app)
    assert sorted((j.kind, j.key) for j in prunes) == sorted(("prune", k) for k in keys)
    for j in prunes:
        assert jobs.wait(fresh_app, j.id, timeout=600).state == "done", jobs.get(fresh_app, j.id).error
    at.run()  # what the progress fragment's rerun does once the last prune is done
    assert not at.exception, at.exception
    speeds = [j for j in jobs.list_jobs(fresh_app) if j.kind == "speed"]
    assert sorted(j.result_key for j in speeds) == sorted(keys)  # queued without a second press
    for j in speeds:
        assert jobs.wait(fresh_app, j.id, timeout=600).state == "done", jobs.get(fresh_app, j.id).error
    at.run()
    assert not at.exception, at.exception
    measured = [fresh_app.speeds(k) for k in keys]
    assert [len(m) for m in measured] == [1, 1]  # one measurement per run
    ratios = [m[0]["rows"][0]["latency_ms"] / m[0]["rows"][1]["latency_ms"] for m in measured]
    [fig] = [f for t, f in _figures(at).items() if t.startswith("Speed-up over the dense model")]
    assert fig["data"][0]["y"] == pytest.approx(ratios)
    text = " ".join(m.value for m in at.markdown)
    assert f"runs ×{ratios[0]:.2f} as fast as dense" in text and f"runs ×{ratios[1]:.2f} as fast." in text
    assert len(jobs.list_jobs(fresh_app)) == 4  # the chart's rerun submitted nothing more


def test_a_grid_larger_than_the_session_cap_waits_and_tops_up(fresh_app, monkeypatch):
    """10 missing cells and a cap of 8 jobs per session: the press queues 8 and keeps 2 waiting (said in the
    toast and the progress line); when two of the session's jobs end, the page's poll submits the other two.
    The pool is off and the store is the test's own (no other test's pool takes its jobs): only the queue is
    under test."""
    from pruning_core import jobs

    monkeypatch.setenv("PRUNESCOPE_JOB_POOL", "off")
    grid = {"cmp_task": "rotten_tomatoes", "cmp_methods": ["magnitude", "wanda"], "cmp_patterns": ["unstructured"],
            "cmp_sparsities": [0.1, 0.2, 0.3, 0.4, 0.6], "cmp_calib": 4, "cmp_seq": 16, "cmp_eval": 8,
            "cmp_seeds": "7"}
    at = _page("compare_page.py", grid)
    assert "10 runs in the grid: 0 stored, 10 to compute" in [c.value for c in at.caption]
    sid = at.session_state["_session_id"]
    at.button(key="cmp_run").click()
    at.run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    mine = jobs.list_jobs(_store(), states=("queued", "running"), session=sid)
    assert len(mine) == jobs.MAX_PER_SESSION == 8
    assert any("2 waiting for a free slot" in t.value for t in at.toast), [t.value for t in at.toast]
    assert any("2 waiting for a free slot" in (p.proto.text or "") for p in at.get("progress"))
    for job in mine[:2]:
        jobs.cancel(_store(), job.id)
    at.run()  # the page's poll (here: a rerun) tops up
    assert not at.exception, at.exception
    assert len(jobs.list_jobs(_store(), states=("queued", "running"), session=sid)) == 8
    submitted = {j.key for j in jobs.list_jobs(_store(), session=sid, limit=100)}
    assert len(submitted) == 10
    for job in jobs.list_jobs(_store(), states=("queued", "running"), session=sid):
        jobs.cancel(_store(), job.id)


def test_opening_prune_warms_the_pool_once_for_the_shipped_model(fresh_app, monkeypatch):
    """With no pool running, opening Prune queues one warm-up job for the sidebar's model, task and
    calibration (not again on a rerun or a second session while it waits); a typed model path is never
    warmed (it is loaded only once Prune has checked it). The pool is off: only what is queued is tested."""
    from pruning_core import jobs

    monkeypatch.setenv("PRUNESCOPE_JOB_POOL", "off")
    monkeypatch.setenv("PRUNESCOPE_WARM", "on")
    at = _page("prune_page.py", {})
    at.run()
    _page("prune_page.py", {})  # another session: the queued warm-up is attached to, not doubled
    warm = [j for j in jobs.list_jobs(fresh_app) if j.kind == "warm"]
    assert len(warm) == 1 and warm[0].state == "queued"
    cfg = warm[0].spec["config"]
    assert (cfg["model"], cfg["task"], cfg["calib_size"], cfg["seq_len"]) == ("default", "rotten_tomatoes", 128, 64)
    jobs.cancel(fresh_app, warm[0].id)
    at.text_input(key="model").set_value("assets/models/minilm-rotten_tomatoes")  # another key, but a path
    at.run()
    assert not at.exception, at.exception
    assert not [j for j in jobs.list_jobs(fresh_app) if j.kind == "warm" and j.active]
