"""Issue 16 items 7 and 8 on the pages: the Experiments table (user's runs first, demo marker, the run's own
time, its environment; the results download = what the table shows, ISO times), and Compare's two points."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pandas as pd
import pytest

from v16_runs import tiny_pair

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")


@pytest.fixture(scope="module")
def pair():
    from dashboard.common import demo_imported, get_store

    store = get_store()
    demo_imported()
    return (store, *tiny_pair(store))


def _downloads(monkeypatch) -> dict[str, bytes]:
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    seen, original = {}, MemoryMediaFileStorage.load_and_get_id

    def record(self, path_or_data, mimetype, kind, filename=None):
        seen[filename] = path_or_data.encode() if isinstance(path_or_data, str) else bytes(path_or_data)
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    return seen


def test_experiments_lists_own_runs_first_with_time_environment_and_demo_marker(pair, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from pruning_core.storage.demo import demo_keys

    store, a, b = pair
    files = _downloads(monkeypatch)
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.switch_page("experiments_page.py")
    at.run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert list(table["demo"]) == sorted(table["demo"])  # every own run above every demo run
    assert set(table[table["demo"]]["key"]) <= demo_keys() and not set(table[~table["demo"]]["key"]) & demo_keys()
    for key in (a, b):
        row = table[table["key"] == key].iloc[0]
        env = store.load(key)["environment"]
        assert not row["demo"] and row["threads"] == env["threads"] and row["cpu"] == env["cpu"]
        assert row["load_per_core"] == pytest.approx(env["load_per_core"])
        assert row["created"] == dt.datetime.fromtimestamp(env["started"]).isoformat(sep=" ", timespec="seconds")
    assert table[table["demo"]]["created"].isna().all()  # no import time passed off as the run's time
    csv = pd.read_csv(io.BytesIO(files["prunescope_results.csv"]))
    assert list(csv["key"]) == list(table["key"])
    own = csv[~csv["demo"]]
    assert all(dt.datetime.fromisoformat(t) for t in own["created"])  # ISO text, not epoch seconds
    # a filter narrows the download to what the table shows
    at.selectbox(key="f_task").set_value("bbc_news")
    at.run()
    shown = at.dataframe[0].value
    csv = pd.read_csv(io.BytesIO(files["prunescope_results.csv"]))
    assert len(csv) == len(shown) > 0 and set(csv["task"]) == {"bbc_news"}
    assert list(csv["key"]) == list(shown["key"])


def _layer(block: int, kind: str, local: float) -> dict:
    return {"block": block, "kind": kind, "name": f"encoder.layer.{block}.{kind}", "achieved_sparsity": 0.5,
            "local_error": local, "cumulative_error": local, "shape": [384, 384], "seconds": 0.1}


def test_figures_read_well_in_a_half_column():
    """Titles wrap (never cut off), tooltips carry their explanation inside the box, tiny values tick as 1e-15
    (never the SI '1f'), and a chart with one point is ranged around it (not -0.5 to 1.5)."""
    from dashboard import charts
    from dashboard.charts.common import HOVER_WIDTH, TITLE_WIDTH

    heat = charts.mask_heatmap(__import__("numpy").ones((8, 8)), title="Keep-mask of encoder.layer.3.attention.self.query")
    lines = heat.layout.title.text.split("<br>")
    assert len(lines) > 1 and all(len(line) <= TITLE_WIDTH for line in lines)
    assert heat.layout.margin.t >= 30 + 22 * len(lines)
    bars = charts.local_error_bars([_layer(0, "q", 1e-15), _layer(1, "q", 3e-15)])
    assert bars.layout.yaxis.exponentformat == "e" and bars.layout.hoverlabel.align == "left"
    for t in bars.data:
        body = t.hovertemplate
        assert body.endswith("<extra></extra>") and "||WX - W'X||²" in body  # the formula inside the box
        assert all(len(part) <= HOVER_WIDTH for part in body.split("<span style='font-size:11px'>")[1].split("<br>")
                   if "</span>" not in part)
    run = {"config": {"method": "wanda", "pattern": "unstructured", "sparsity": 0.5, "task": "t", "model": "m",
                      "options": {}, "calib_size": 8, "seq_len": 16, "seed": 0},
           "achieved_sparsity": 0.5, "accuracy": 0.8, "dense_accuracy": 0.84, "eval_examples": 40,
           "blocks": [{"block": 0, "cumulative_error": 0.1}], "layers": [_layer(0, "q", 0.1)]}
    one = charts.sweep_curves([run], "accuracy", "Accuracy vs sparsity", "clean accuracy")
    lo, hi = one.layout.xaxis.range
    assert lo < 0.5 < hi and hi - lo <= 0.2 and lo >= 0
    zero = charts.local_error_bars([_layer(0, "q", 0.0), _layer(1, "q", 0.0)])  # nothing removed
    assert tuple(zero.layout.yaxis.range) == (0, 1)
    import numpy as np

    w = np.random.default_rng(0).normal(size=20_000)
    hist = charts.weight_histogram(w, np.where(np.abs(w) > 1, w, 0))
    assert hist.layout.yaxis.tickformat == ",d"  # counts read 5,000, never 0.5e+4


def test_card_deltas_that_round_to_zero_have_no_arrow_and_errors_are_explained():
    from dashboard.card_notes import ERRORS_NOTE, delta

    assert delta(0.0002) is None and delta(-0.0004) is None and delta(0.0, "+.1%") is None
    assert delta(-0.02) == "-0.020" and delta(0.05, "+.3g", " vs calibration") == "+0.05 vs calibration"
    assert "exceed 1" in ERRORS_NOTE and "Local error" in ERRORS_NOTE and "Cumulative error" in ERRORS_NOTE


def test_compare_two_clicked_points_open_run_vs_run():
    """Two points picked on Compare's accuracy chart -> 'Compare these two' -> Run vs run with those runs."""
    from streamlit.testing.v1 import AppTest

    from dashboard.common import demo_imported, get_store

    store = get_store()
    demo_imported()
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.switch_page("compare_page.py")
    at.run()
    assert not at.exception, at.exception
    assert not [b for b in at.button if b.key == "c_compare_two"]  # nothing picked: no button
    at.session_state["c_acc"] = {"selection": {"points": [{"curve_number": 0, "point_index": 0},
                                                          {"curve_number": 0, "point_index": 1}]}}
    at.run()
    assert not at.exception, at.exception
    assert not [c for c in at.caption if "shift-click a second" in c.value]  # two picked: not asked for one more
    at.button(key="c_compare_two").click()
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Run against run"
    a, b = store.load(at.selectbox(key="diff_a").value), store.load(at.selectbox(key="diff_b").value)
    assert a["config"]["method"] == b["config"]["method"] == "magnitude"  # the first curve, sorted by label
    assert (a["config"]["sparsity"], b["config"]["sparsity"]) == (0.1, 0.2)  # its first two points
