"""The issue-16 dashboard views in AppTest and their figure builders: Run against run (two tiny real runs),
the examples that flip, accuracy intervals and the run environment on the cards, the encoder diagram."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from v16_runs import tiny_pair

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")


@pytest.fixture(scope="module")
def pair():
    """The two tiny runs in the test session's results store (conftest points PRUNESCOPE_DB at a temp folder)."""
    from dashboard.common import get_store

    store = get_store()
    return (store, *tiny_pair(store))


def _app():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    return at


def _figures(at) -> dict[str, dict]:
    import json

    out = {}
    for c in at.get("plotly_chart"):
        spec = json.loads(c.proto.spec)
        out[spec["layout"].get("title", {}).get("text", "")] = spec
    return out


def test_diff_page_from_experiments_selection(pair):
    """Two rows ticked on Experiments -> 'Compare these two' -> the diff page with both runs overlaid."""
    store, a, b = pair
    at = _app()
    at.switch_page("experiments_page.py")
    at.run()
    assert at.button(key="compare_two").disabled  # nothing selected yet
    frame = at.dataframe[0].value
    rows = [int(np.flatnonzero(frame["key"].to_numpy() == k)[0]) for k in (a, b)]
    at.session_state["runs_table"] = {"selection": {"rows": rows, "columns": []}}
    at.run()
    assert not at.button(key="compare_two").disabled
    at.button(key="compare_two").click()
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Run against run"
    assert (at.selectbox(key="diff_a").value, at.selectbox(key="diff_b").value) == (a, b)
    ra, rb = store.load(a), store.load(b)
    metrics = {m.label: m.value for m in at.metric}
    assert float(metrics["A: pruned accuracy"]) == pytest.approx(ra["accuracy"], abs=5e-4)
    assert float(metrics["B − A"]) == pytest.approx(rb["accuracy"] - ra["accuracy"], abs=1e-3)
    lo, hi = ra["accuracy_ci"]
    assert any(f"95% CI {lo:.3f}–{hi:.3f}" in c.value for c in at.caption)
    figs = _figures(at)
    local = figs["Local error per module, A and B"]
    assert len(local["data"]) == 2 and all(len(t["y"]) == 36 for t in local["data"])
    cum = figs["Cumulative error across depth, A and B"]
    assert [t["name"] for t in cum["data"]] == ["A: calibration", "A: held-out", "B: calibration", "B: held-out"]
    assert cum["data"][2]["y"][-1] == pytest.approx(rb["blocks"][-1]["cumulative_error"])
    # the mask difference of the first module: the counts add up to its weights and match the numpy ones
    name = at.selectbox(key="diff_module").value
    ma = store.masks(a, [name])[name].numpy().astype(bool)
    mb = store.masks(b, [name])[name].numpy().astype(bool)
    want = {"Kept by both": (ma & mb).sum(), "Kept by A only": (ma & ~mb).sum(), "Kept by B only": (~ma & mb).sum(),
            "Pruned by both": (~ma & ~mb).sum()}
    assert {k: int(metrics[k].replace(",", "")) for k in want} == want
    assert any(t.startswith(f"Mask difference of {name}") for t in figs)


def test_diff_page_picks_and_demo_runs_without_masks(pair):
    """The page's own pickers: B lists only runs of A's model; a demo run (no masks) says so, no crash."""
    store, a, b = pair
    from dashboard.common import demo_imported

    demo_imported()
    at = _app()
    at.switch_page("diff_page.py")
    at.run()
    assert not at.exception, at.exception
    runs = store.runs()
    demo = runs[(runs["model"] == "default") & ~runs["key"].isin([a, b])]["key"].iloc[0]
    at.selectbox(key="diff_a").set_value(a)
    at.run()
    assert any(o.endswith(b) for o in at.selectbox(key="diff_b").options)  # labels end with the key
    at.selectbox(key="diff_b").set_value(demo)
    at.run()
    assert not at.exception, at.exception
    assert any("stored without masks" in i.value for i in at.info)
