"""The dashboard's seams in Streamlit's AppTest: the Prune settings survive navigation and follow "Open in
Prune views"; a prune is a job that leaving the page does not stop; the page reads local paths only under the allowed folders and never echoes a file; an
uploaded CSV is used as the task."""

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("PRUNESCOPE_JOB_WORKERS", "1")  # the prune jobs run in one worker process
os.environ.setdefault("PRUNESCOPE_JOB_IDLE", "5")
APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
TINY = {"calib": 4, "seq_len": 16, "eval": 8}  # the sizes of every real prune here (about 2 s each)
SECRET = "TOP-SECRET-7f3a: the lecturer's exam answers"


def _app():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    assert not at.exception, at.exception
    return at


def _widget(at, key):
    for kind in ("number_input", "radio", "selectbox", "slider", "toggle", "text_input"):
        try:
            return getattr(at, kind)(key=key)
        except KeyError:
            continue
    raise KeyError(key)


def _set(at, **values):
    """Set sidebar widgets (key -> value) one at a time, each followed by a run (a method's knobs appear
    only once the method is chosen)."""
    for key, value in values.items():
        _widget(at, key).set_value(value)
        at.run()
        assert not at.exception, at.exception


def _finish(at) -> None:
    """Wait for the prune job the page follows (it runs in the worker pool), then rerun: the page opens it."""
    from dashboard.common import get_store
    from pruning_core import jobs

    if "prune_job" in at.session_state:
        job = jobs.wait(get_store(), at.session_state["prune_job"], timeout=300)
        assert job.state == "done", job.error
        at.run()
        assert not at.exception, at.exception


def _texts(at) -> str:
    """Everything the page shows as text (messages, markdown, captions, toasts), joined."""
    parts = []
    for kind in ("error", "warning", "info", "success", "markdown", "caption", "toast", "exception", "subheader"):
        parts += [str(getattr(e, "value", "")) for e in getattr(at, kind)]
    return "\n".join(parts)


def test_navigation_keeps_the_prune_settings():
    at = _app()
    _set(at, method="akrp", akrp_lambda0=1e-3, sparsity=0.7, task="bbc_news", seed=3, calib=16, model="default ")
    for page in ("learn_page.py", "experiments_page.py"):
        at.switch_page(page)
        at.run()
        assert not at.exception, at.exception
        at.switch_page("prune_page.py")
        at.run()
        assert not at.exception, at.exception
        assert at.selectbox(key="method").value == "akrp", page
        assert at.number_input(key="akrp_lambda0").value == pytest.approx(1e-3)
        assert at.slider(key="sparsity").value == pytest.approx(0.7)
        assert at.selectbox(key="task").value == "bbc_news"
        assert (at.number_input(key="seed").value, at.number_input(key="calib").value) == (3, 16)
        assert at.text_input(key="model").value == "default "
    _set(at, method="sparsegpt")  # another method's knobs, then back: akrp's knob is remembered too
    _set(at, method="akrp")
    assert at.number_input(key="akrp_lambda0").value == pytest.approx(1e-3)


def test_a_prune_is_a_job_that_survives_leaving_the_page():
    """Prune submits exactly the sidebar's config as a job (a widget changed together with the click counts);
    leaving the page for Learn and coming back shows the same job, and its run opens once it is stored;
    nothing runs twice."""
    from dashboard.common import get_store
    from pruning_core import jobs

    at = _app()
    _set(at, method="wanda", seed=5, **TINY)
    at.slider(key="sparsity").set_value(0.7)  # changed together with the click (one message): it counts
    at.button(key="prune_go").click()
    at.run()
    assert not at.exception, at.exception
    store = get_store()
    job = jobs.get(store, at.session_state["prune_job"])
    cfg = job.spec["config"]
    assert (cfg["model"], cfg["task"], cfg["method"], cfg["pattern"], cfg["sparsity"]) == (
        "default", "rotten_tomatoes", "wanda", "unstructured", pytest.approx(0.7))
    assert (cfg["calib_size"], cfg["seq_len"], cfg["eval_size"], cfg["seed"]) == (4, 16, 8, 5)
    assert not at.button(key="prune_go").disabled  # never locked: a second click attaches, never restarts
    at.switch_page("learn_page.py")
    at.run()
    assert not at.exception, at.exception
    at.switch_page("prune_page.py")
    at.run()
    assert not at.exception, at.exception
    assert at.session_state.get("prune_job") == job.id or store.has(job.key)
    at.button(key="prune_go").click()  # pressed again while it runs: attached, not a second job
    at.run()
    assert len([j for j in jobs.list_jobs(store) if j.key == job.key and j.kind == "prune"]) == 1
    assert jobs.wait(store, job.id, timeout=120).state == "done"
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["run_key"] == job.key and store.has(job.key)
    assert not at.warning and not at.info  # the run shown is the sidebar's
    values = {m.label: m.value for m in at.metric}
    assert abs(float(values["Achieved sparsity"]) - 0.7) < 0.01

    _set(at, sparsity=0.4)  # the sidebar moves away from the shown run: the page says so
    assert any("differs (sparsity)" in i.value for i in at.info)


def _stored_run(key: str, **config) -> dict:
    """A shipped demo run's record under another key and config (no masks)."""
    from pruning_core.core.paths import ASSETS_DIR

    with open(ASSETS_DIR / "demo" / "sweep_rotten_tomatoes.jsonl") as f:
        run = json.loads(f.readline())
    run["key"] = key
    run["config"] = run["config"] | config
    return run


def test_open_in_prune_sets_the_sidebar_to_the_run():
    from dashboard.common import get_store

    key = "seam0open0000001"
    get_store().save(_stored_run(key, task="bbc_news", method="sparsegpt", sparsity=0.65, calib_size=32, seq_len=48,
                                 seed=7, eval_size=100, options={"blocksize": 64, "percdamp": 0.05}))
    at = _app()
    _set(at, method="magnitude", magnitude_scope="global", sparsity=0.2)  # a different config in the sidebar
    at.switch_page("experiments_page.py")
    at.run()
    at.selectbox(key="pick_run").set_value(key)
    at.run()
    at.button(key="open").click()
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["run_key"] == key
    got = {k: _widget(at, k).value for k in ("model", "task_source", "task", "method", "pattern", "sparsity", "calib",
                                             "seq_len", "eval", "seed", "sparsegpt_blocksize",
                                             "sparsegpt_percdamp")}
    assert got == {"model": "default", "task_source": "name", "task": "bbc_news", "method": "sparsegpt",
                   "pattern": "unstructured", "sparsity": pytest.approx(0.65), "calib": 32, "seq_len": 48,
                   "eval": 100, "seed": 7, "sparsegpt_blocksize": 64,
                   "sparsegpt_percdamp": pytest.approx(0.05)}
    assert any(s.value.startswith("sparsegpt · unstructured · 65% on bbc_news") for s in at.subheader)
    assert not any("differs" in i.value for i in at.info)  # what is shown is what the sidebar says


def test_settings_from_config_structured_and_clamped():
    from dashboard.common import LIMITS, settings_from_config

    got = settings_from_config({"model": "org/model", "task": "/data/t.csv", "method": "kwon", "sparsity": 0.3,
                                "pattern": "structured", "calib_size": 99999, "seq_len": 32, "seed": 1,
                                "eval_size": None, "options": {"rearrange": False, "rescale": True,
                                                               "damping": 0.2, "rearrange_steps": 7}})
    assert got == {"model": "org/model", "method": "kwon", "task_source": "path", "task_path": "/data/t.csv",
                   "calib": LIMITS["calib"][1], "seq_len": 32, "seed": 1, "eval": 0, "budget": 0.3,
                   "kwon_rearrange": False, "kwon_rearrange_steps": 7, "kwon_rescale": True,
                   "kwon_damping": 0.2}
    nm = settings_from_config({"method": "wanda", "task": "glue/sst2", "pattern": "2:4", "sparsity": 0.5})
    assert nm["pattern"] == "2:4" and "sparsity" not in nm and nm["task"] == "glue/sst2"


@pytest.fixture
def roots(tmp_path, monkeypatch):
    """An allowed folder holding nothing secret, and a file and a model folder outside it that hold a secret."""
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    outside = tmp_path / "outside"
    (outside / "model").mkdir(parents=True)
    (outside / "exam.csv").write_text(f"text,label\n{SECRET},1\n")
    (outside / "model" / "config.json").write_text(json.dumps({"model_type": "bert", "note": SECRET}))
    monkeypatch.setenv("PRUNESCOPE_DATA_ROOTS", str(allowed))
    return allowed, outside


def test_paths_outside_the_allowed_folders_are_refused_unread(roots, monkeypatch):
    from dashboard.common import get_store
    from pruning_core.data import tasks as data

    _, outside = roots
    read = []
    real_table = data._load_table
    monkeypatch.setattr(data, "_load_table", lambda path, split: read.append(path) or real_table(path, split))
    before = len(get_store().runs())
    at = _app()
    _set(at, task_source="path", task_path=str(outside / "exam.csv"), **TINY)
    at.button(key="prune_go").click()
    at.run()
    assert not at.exception, at.exception
    assert at.error and "outside the folders this page may read" in at.error[0].value
    assert "PRUNESCOPE_DATA_ROOTS" in at.error[0].value
    assert SECRET not in _texts(at) and not read  # refused before anything read the file
    _set(at, task_source="name", model=str(outside / "model"))
    at.button(key="prune_go").click()
    at.run()
    assert not at.exception, at.exception
    assert at.error and "outside the folders this page may read" in at.error[0].value
    assert SECRET not in _texts(at)
    assert len(get_store().runs()) == before


def test_an_uploaded_csv_is_the_task():
    from dashboard.common import get_store
    from pruning_core.storage.access import uploads_dir

    rows = "\n".join(f"{t},{y}" for t, y in [("a gorgeous witty movie", 1), ("dull and lifeless", 0),
                                             ("charming and affecting", 1), ("a sour little movie", 0)] * 3)
    content = f"text,label\n{rows}\n".encode()
    at = _app()
    model = str(Path(APP).parents[1] / "assets" / "models" / "minilm-rotten_tomatoes")  # allowed: the assets
    _set(at, task_source="upload", model=model, method="magnitude", **TINY)
    at.file_uploader(key="task_file").set_value(("my reviews.csv", content, "text/csv"))
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert any("my reviews.csv" in c.value for c in at.caption)
    saved = list(uploads_dir().glob("*-my_reviews.csv"))
    assert len(saved) == 1 and saved[0].read_bytes() == content
    assert not [p for p in uploads_dir().iterdir() if p.name.endswith(".part")]
    at.button(key="prune_go").click()
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    _finish(at)
    run = get_store().load(at.session_state["run_key"])
    assert run["config"]["task"] == str(saved[0]) and run["config"]["method"] == "magnitude"
    assert not any("differs" in i.value for i in at.info)

    bad = _app()  # a file that is not a task: one line, nothing saved
    _set(bad, task_source="upload")
    bad.file_uploader(key="task_file").set_value(("notes.csv", b"\xff\xfe\x00garbage", "text/csv"))
    bad.run()
    assert not bad.exception, bad.exception
    assert bad.error and "notes.csv" in bad.error[0].value and "\n" not in bad.error[0].value
    assert len(list(uploads_dir().iterdir())) == 1
