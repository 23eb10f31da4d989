"""The dashboard's seams in Streamlit's AppTest: the Prune settings survive navigation and follow "Open in
Prune views"; a prune locks the sidebar, and one stopped by leaving the page is reported, never restarted and
never half-stored; the page reads local paths only under the allowed folders and never echoes a file; an
uploaded CSV is used as the task."""

import json
from pathlib import Path

import pytest

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


def test_a_prune_locks_the_sidebar_and_a_stopped_one_is_reported_not_restarted(monkeypatch):
    """A prune runs exactly the sidebar's config with the sidebar locked; Streamlit stops a running script
    when the page is left or changed (simulated with st.stop() inside the prune): nothing is stored, the next
    page says so, and nothing runs again until Prune is pressed."""
    import streamlit as st

    from dashboard.common import get_store
    from pruning_core.experiments import experiment

    calls = []
    real = experiment.run_experiment

    def stopped(cfg, on_record=None, on_stage=None):
        calls.append(cfg)
        on_stage("Pruning")
        st.stop()  # what a navigation or a click does to a running script

    monkeypatch.setattr(experiment, "run_experiment", stopped)
    at = _app()
    _set(at, method="wanda", seed=5, **TINY)
    at.slider(key="sparsity").set_value(0.7)  # changed together with the click (one message): it counts
    at.button(key="prune_go").click()
    at.run()
    assert not at.exception, at.exception
    assert len(calls) == 1
    cfg = calls[0]
    assert (cfg.model, cfg.task, cfg.method, cfg.pattern, cfg.sparsity) == ("default", "rotten_tomatoes", "wanda",
                                                                          "unstructured", pytest.approx(0.7))
    assert (cfg.calib_size, cfg.seq_len, cfg.eval_size, cfg.seed) == (4, 16, 8, 5)
    # while it runs, the sidebar is locked: it says what runs, its one button is disabled, nothing else to
    # click or change (a second click cannot restart it)
    assert at.button(key="prune_busy").disabled
    assert [b.key for b in at.sidebar.button] == ["prune_busy"]
    for key in ("prune_go", "prune_again", "method", "sparsity", "model", "task", "calib", "seed"):
        with pytest.raises(KeyError):
            _widget(at, key) if key not in ("prune_go", "prune_again") else at.button(key=key)
    assert any("wanda · unstructured · 70% on rotten_tomatoes (default)" in m.value for m in at.sidebar.markdown)
    store = get_store()
    assert not store.has(cfg.key())

    at.switch_page("experiments_page.py")  # the next run, on another page
    at.run()
    assert not at.exception, at.exception
    assert any("interrupted" in t.value and "wanda" in t.value for t in at.toast)
    failures = store.failures()
    assert cfg.key() in set(failures["key"])
    assert "interrupted" in failures.set_index("key").loc[cfg.key(), "error"]
    at.switch_page("prune_page.py")
    at.run()
    assert not at.exception, at.exception
    assert len(calls) == 1 and not store.has(cfg.key())  # not restarted by coming back
    assert any("interrupted" in w.value and "wanda · unstructured · 70%" in w.value for w in at.warning)
    assert not at.button(key="prune_go").disabled and at.selectbox(key="method").value == "wanda"

    monkeypatch.setattr(experiment, "run_experiment", real)
    at.button(key="prune_go").click()  # pressed again: this time it finishes
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert store.has(cfg.key()) and cfg.key() not in set(store.failures()["key"])
    assert at.session_state["run_key"] == cfg.key()
    assert not at.warning and not at.info  # no interruption note; the run shown is the sidebar's
    assert not at.button(key="prune_go").disabled
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
