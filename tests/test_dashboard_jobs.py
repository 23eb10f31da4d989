"""The dashboard on the job system (AppTest; the jobs run in the real worker pool of the tests' temporary
store): Prune queues a job instead of pruning in the script, the page with ?job=ID re-attaches to its
progress, a stored config says "Stored - open", two sessions asking for one config get one job, and the
Jobs page lists and cancels."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("PRUNESCOPE_JOB_WORKERS", "1")
os.environ.setdefault("PRUNESCOPE_JOB_IDLE", "5")

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
TINY = {"calib": 4, "seq_len": 16, "eval": 8}  # about 2 s a prune


def _app(**query):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update(query)
    at.run()
    assert not at.exception, at.exception
    return at


def _set(at, **values):
    for key, value in values.items():
        for kind in ("number_input", "selectbox", "slider"):
            try:
                getattr(at, kind)(key=key).set_value(value)
                break
            except KeyError:
                continue
        else:
            raise KeyError(key)
        at.run()
        assert not at.exception, at.exception


def _config(method: str, sparsity: float, seed: int = 0):
    from pruning_core.experiments.config import ExperimentConfig

    return ExperimentConfig.create(method=method, sparsity=sparsity, calib_size=TINY["calib"],
                                   seq_len=TINY["seq_len"], eval_size=TINY["eval"], seed=seed)


def _store():
    from dashboard.common import get_store

    return get_store()


def _prune_jobs(key: str) -> list:
    from pruning_core import jobs

    return [j for j in jobs.list_jobs(_store()) if j.kind == "prune" and j.key == key]


def test_prune_queues_a_job_then_opens_its_run():
    from pruning_core import jobs

    cfg = _config("magnitude", 0.45, seed=11)
    at = _app()
    _set(at, method="magnitude", sparsity=0.45, seed=11, **TINY)
    assert at.button(key="prune_go").label == "Prune" and at.button(key="prune_go_top").label == "Prune"
    at.button(key="prune_go_top").click()  # the main area's button: the same as the sidebar's
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    [job] = _prune_jobs(cfg.key())  # one job, with the sidebar's config
    assert at.session_state["prune_job"] == job.id and at.query_params["job"] in (str(job.id), [str(job.id)])
    assert job.session == at.session_state["_session_id"]
    assert not _store().has(cfg.key())  # the script did not prune: the job does
    assert at.button(key="prune_go").label in ("Running - attach", "Queued - 0 ahead") or _store().has(cfg.key())
    assert any(f"job {job.id}" in m.value for m in at.markdown) or _store().has(cfg.key())
    done = jobs.wait(_store(), job.id, timeout=120)
    assert done.state == "done" and done.result_key == cfg.key(), done.error
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["run_key"] == cfg.key() and "prune_job" not in at.session_state
    assert "job" not in at.query_params
    values = {m.label: m.value for m in at.metric}
    assert abs(float(values["Achieved sparsity"]) - 0.45) < 0.01
    assert float(values["Pruned accuracy"]) == pytest.approx(_store().load(cfg.key())["accuracy"], abs=5e-4)
    assert at.button(key="prune_go").label == "Stored - open"
    at.button(key="prune_go").click()  # a stored config opens, nothing queued
    at.run()
    assert len(_prune_jobs(cfg.key())) == 1 and at.session_state["run_key"] == cfg.key()


def test_the_page_with_a_job_in_the_url_shows_its_progress_and_its_run():
    from pruning_core import jobs

    cfg = _config("wanda", 0.35, seed=12)
    job, how = jobs.submit(_store(), "prune", {"config": cfg.to_dict()}, session="someone-else")
    assert how == "queued"
    at = _app(job=str(job.id))  # a reload (or a shared link) of the page that followed it
    assert at.session_state["prune_job"] == job.id
    assert at.selectbox(key="method").value == "wanda"  # the sidebar shows the job's config
    assert at.slider(key="sparsity").value == pytest.approx(0.35)
    current = jobs.get(_store(), job.id)
    if current.active:
        bars = at.get("progress")
        assert bars and any(f"job {job.id}" in m.value for m in at.markdown)
        assert at.button(key="prune_cancel")
    # while it runs, every rerun reads the new events: the bar and the live chart's last block agree
    while jobs.get(_store(), job.id).state == "running":
        at.run()
        live = at.session_state["_live_job"] if "_live_job" in at.session_state else None
        if live and live["records"].blocks:
            last = live["records"].blocks[-1]["block"]  # the chart's last point is "block {last}"
            assert live["bar"][1] == f"block {last} done ({len(live['records'].blocks)} of 6)"
            assert live["bar"][0] == pytest.approx(len(live["records"].blocks) / 6)
    assert jobs.wait(_store(), job.id, timeout=120).state == "done"
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["run_key"] == cfg.key()
    assert any(m.label == "Achieved sparsity" for m in at.metric)


def test_two_sessions_asking_for_one_config_get_one_job():
    from pruning_core import jobs

    cfg = _config("magnitude", 0.25, seed=13)
    a, b = _app(), _app()
    for at in (a, b):
        _set(at, method="magnitude", sparsity=0.25, seed=13, **TINY)
    a.button(key="prune_go").click()
    a.run()
    b.run()  # b's button now says the config is running or queued
    assert b.button(key="prune_go").label in ("Running - attach", "Queued - 0 ahead", "Stored - open")
    b.button(key="prune_go").click()
    b.run()
    assert not a.exception and not b.exception
    found = _prune_jobs(cfg.key())
    assert len(found) == 1
    if "prune_job" in b.session_state:
        assert a.session_state["prune_job"] == b.session_state["prune_job"] == found[0].id
    assert a.session_state["_session_id"] != b.session_state["_session_id"]
    assert jobs.wait(_store(), found[0].id, timeout=120).state == "done"
    for at in (a, b):
        at.run()
        assert at.session_state["run_key"] == cfg.key()


def test_jobs_page_lists_and_cancels():
    from pruning_core import jobs

    store = _store()
    first = jobs.submit(store, "prune", {"config": _config("magnitude", 0.15, seed=14).to_dict()}, session="x")[0]
    second = jobs.submit(store, "prune", {"config": _config("magnitude", 0.15, seed=15).to_dict()}, session="x")[0]
    at = _app()
    at.switch_page("jobs_page.py")
    at.run()
    assert not at.exception, at.exception
    texts = " ".join(m.value for m in at.markdown)
    assert f"{first.id} · **prune**" in texts and f"{second.id} · **prune**" in texts
    assert any(c.value.startswith("Jobs:") for c in at.sidebar.caption)  # the badge on every page
    if jobs.get(store, second.id).active:
        at.button(key=f"jobs_cancel_{second.id}").click()
        at.run()
        assert not at.exception, at.exception
        assert jobs.wait(store, second.id, timeout=60).state == "cancelled"
        assert not store.has(jobs.get(store, second.id).key)
        assert at.button(key=f"jobs_retry_{second.id}")
    at.toggle(key="jobs_mine").set_value(True)  # this session submitted none of them
    at.run()
    assert not at.exception and any(i.value.startswith("No jobs of this session") for i in at.info)
    assert jobs.wait(store, first.id, timeout=120).state == "done"
    at.toggle(key="jobs_mine").set_value(False)
    at.run()
    at.button(key=f"jobs_open_{first.id}").click()  # a finished prune opens in the Prune views
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["run_key"] == first.result_key
    assert at.slider(key="sparsity").value == pytest.approx(0.15) and at.number_input(key="seed").value == 14
    assert any(m.label == "Achieved sparsity" for m in at.metric)
