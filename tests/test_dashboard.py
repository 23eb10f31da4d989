"""The dashboard in Streamlit's AppTest, and its chart builders without Streamlit."""

import json
from pathlib import Path

import pytest

from dashboard import charts

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")

LAYERS = [{"name": f"m{b}{k}", "block": b, "kind": k, "achieved_sparsity": 0.5, "local_error": 0.01 * (b + 1),
           "cumulative_error": 0.02 * (b + 1)} for b in range(3) for k in ("q", "k", "v", "attn_out", "ffn_in", "ffn_out")]
BLOCKS = [{"block": b, "cumulative_error": 0.02 * (b + 1)} for b in range(3)]


def _run(method, pattern, sparsity, acc):
    return {"config": {"method": method, "pattern": pattern, "sparsity": sparsity}, "achieved_sparsity": sparsity,
            "accuracy": acc, "dense_accuracy": 0.9, "prune_seconds": 1.0 + sparsity, "layers": LAYERS,
            "blocks": BLOCKS}


def test_chart_builders():
    bars = charts.local_error_bars(LAYERS)
    assert len(bars.data) == 6 and all(len(t.y) == 3 for t in bars.data)
    assert [t.name for t in bars.data][:3] == ["Q", "K", "V"]
    line = charts.cumulative_error_line(BLOCKS)
    assert list(line.data[0].y) == [0.0, 0.02, 0.04, 0.06]  # starts at the dense baseline
    assert list(line.data[1].y) == [0.0] * 4
    runs = [_run(m, "unstructured", s, 0.9 - s / 2) for m in ("wanda", "sparsegpt") for s in (0.3, 0.5, 0.7)]
    runs += [_run("wanda", "2:4", 0.5, 0.7)]
    curves = charts.sweep_curves(runs, "accuracy", "t", "acc")
    assert sorted(t.name for t in curves.data) == ["sparsegpt", "wanda", "wanda 2:4"]
    assert list(next(t for t in curves.data if t.name == "wanda").x) == [0.3, 0.5, 0.7]
    assert len(charts.prune_time_bars(runs).data[0].x) == 3
    hist = {"edges": [0, 1, 2], "before": [5, 3], "after": [1, 3], "zeros_after": 4}
    fig = charts.stored_histogram(hist, "m")
    assert [list(t.y) for t in fig.data] == [[5, 3], [1, 3]] and "4 zeros" in fig.layout.title.text


def _spec(chart) -> dict:
    return json.loads(chart.proto.spec)


@pytest.fixture(scope="module")
def pruned_app():
    """The Prune page after pruning the shipped model with Wanda at 60% (small calibration)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    assert not at.exception
    at.selectbox(key="method").set_value("wanda")
    at.slider(key="sparsity").set_value(0.6)
    at.number_input(key="calib").set_value(16)
    at.number_input(key="eval").set_value(64)
    at.button[0].click()
    at.run()
    return at


def test_prune_page_runs_on_shipped_model(pruned_app):
    at = pruned_app
    assert not at.exception, at.exception
    assert not at.error
    values = {m.label: m.value for m in at.metric}
    assert abs(float(values["Achieved sparsity"]) - 0.6) < 0.005
    assert float(values["Dense accuracy"]) > 0.8
    specs = [_spec(c) for c in at.get("plotly_chart")]
    titles = [s["layout"].get("title", {}).get("text", "") for s in specs]
    local = specs[titles.index("Local reconstruction error per module")]
    assert len(local["data"]) == 6  # one trace per module kind
    cum = [s for s, t in zip(specs, titles) if t == "Cumulative error across depth"][-1]
    assert len(cum["data"][0]["y"]) == 7  # embeddings + 6 blocks
    assert any(t.startswith("Keep-mask of") for t in titles)
    assert any("before and after" in t for t in titles)


def test_experiments_page_lists_and_opens_the_run(pruned_app):
    at = pruned_app
    at.switch_page("experiments_page.py")
    at.run()
    assert not at.exception
    frame = at.dataframe[0].value
    assert ((frame["method"] == "wanda") & (frame["sparsity"] == 0.6)).any()
    at.selectbox(key="f_method").set_value("wanda")
    at.run()
    assert not at.exception and (at.dataframe[0].value["method"] == "wanda").all()


def test_bad_input_shows_a_message_and_keeps_runs(pruned_app, tmp_path):
    from dashboard.common import get_store

    before = len(get_store().runs())
    bad = tmp_path / "reviews.csv"
    bad.write_text("review,stars\ngreat,5\n")
    at = pruned_app
    at.switch_page("prune_page.py")
    at.run()
    at.text_input(key="task_path").set_value(str(bad))
    at.button[0].click()
    at.run()
    assert not at.exception
    assert at.error and "text,label" in at.error[0].value
    at.text_input(key="task_path").set_value("")
    at.text_input(key="model").set_value("./no/such/model")
    at.button[0].click()
    at.run()
    assert not at.exception and "does not exist" in at.error[0].value
    assert len(get_store().runs()) == before


def test_compare_page_shows_shipped_sweep():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("compare_page.py")
    at.run()
    assert not at.exception
    specs = [_spec(c) for c in at.get("plotly_chart")]
    assert len(specs) == 4
    acc = specs[0]
    # magnitude, wanda, sparsegpt unstructured + each at 2:4 and 4:8
    assert len(acc["data"]) == 9
    assert all(len(t["x"]) == 9 for t in acc["data"] if "2:4" not in t["name"] and "4:8" not in t["name"])
