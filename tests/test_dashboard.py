"""The dashboard in Streamlit's AppTest, and its chart builders without Streamlit."""

from pathlib import Path

import pytest

from dashboard import charts

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")

LAYERS = [{"name": f"m{b}{k}", "block": b, "kind": k, "achieved_sparsity": 0.5, "local_error": 0.01 * (b + 1),
           "cumulative_error": 0.02 * (b + 1)} for b in range(3) for k in ("q", "k", "v", "attn_out", "ffn_in", "ffn_out")]
BLOCKS = [{"block": b, "cumulative_error": 0.02 * (b + 1)} for b in range(3)]


def test_chart_builders():
    bars = charts.local_error_bars(LAYERS)
    assert len(bars.data) == 6 and all(len(t.y) == 3 for t in bars.data)
    assert [t.name for t in bars.data][:3] == ["Q", "K", "V"]
    line = charts.cumulative_error_line(BLOCKS)
    assert list(line.data[0].y) == [0.0, 0.02, 0.04, 0.06]  # starts at the dense baseline
    assert list(line.data[1].y) == [0.0] * 4


def test_prune_page_runs_on_shipped_model():
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
    assert not at.exception, at.exception
    assert not at.error
    labels = [m.label for m in at.metric]
    assert "Accuracy" in labels and "Achieved sparsity" in labels
    sparsity = next(m for m in at.metric if m.label == "Achieved sparsity").value
    assert abs(float(sparsity) - 0.6) < 0.005


def test_prune_page_bad_input_shows_message():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.text_input[0].set_value("./no/such/model")
    at.button[0].click()
    at.run()
    assert not at.exception
    assert at.error and "does not exist" in at.error[0].value
