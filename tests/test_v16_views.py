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


def _open_in_prune_views(key: str):
    """A fresh app showing stored run `key` on the Prune page (Experiments -> Open in Prune views)."""
    at = _app()
    at.switch_page("experiments_page.py")
    at.run()
    at.selectbox(key="pick_run").set_value(key)
    at.run()
    at.button(key="open").click()
    at.run()
    assert not at.exception, at.exception
    at.switch_page("prune_page.py")  # AppTest reruns the page it was told (st.switch_page does not change it)
    at.run()
    assert not at.exception, at.exception
    return at


def test_prune_views_show_intervals_environment_flips_and_diagram(pair):
    from pruning_core.core import environment
    from pruning_core.measure import flips

    store, a, _ = pair
    res = store.load(a)
    at = _open_in_prune_views(a)
    captions = [c.value for c in at.caption]
    lo, hi = res["accuracy_ci"]
    dlo, dhi = res["dense_accuracy_ci"]
    assert f"95% CI {lo:.3f}–{hi:.3f} (Wilson, 48 examples)" in captions
    assert f"95% CI {dlo:.3f}–{dhi:.3f} (Wilson, 48 examples)" in captions
    assert f"Run environment: {environment.describe(res['environment'])}" in captions
    # the examples that flip: counts from the stored predictions, the table filtered to lost + gained
    s = flips.summary(res["predictions"], 2)
    metrics = {m.label: m.value for m in at.metric}
    assert (int(metrics["Lost"]), int(metrics["Gained"])) == (s["lost"], s["gained"])
    table = next(d.value for d in at.dataframe if "outcome" in d.value.columns)
    assert len(table) == s["lost"] + s["gained"] and set(table["outcome"]) <= {"lost", "gained"}
    assert list(table["kl"]) == sorted(table["kl"], reverse=True)
    from pruning_core.data import tasks

    split = tasks.load("rotten_tomatoes", "test")
    if len(table):
        first = table.iloc[0]
        assert first["text"] == split.texts[int(first["index"])] and first["label"] in split.label_names
    at.multiselect(key="flips_filter").set_value(["lost", "gained", "right", "wrong"])
    at.run()
    table = next(d.value for d in at.dataframe if "outcome" in d.value.columns)
    assert len(table) == 48
    figs = _figures(at)
    dense = figs["Dense model: true × predicted"]["data"][0]["z"]
    assert sum(map(sum, dense)) == 48 and dense == s["dense_confusion"]
    # the diagram: one box per module, the first one opened with its mask
    diag = figs["Where the model lost weights: achieved sparsity per module"]
    assert len(diag["data"][0]["x"]) == 36
    assert at.selectbox(key="mask_module").value == res["layers"][0]["name"]
    assert any(t.startswith(f"Keep-mask of {res['layers'][0]['name']}: 384×384, kept 50.0%") for t in figs)
    at.radio(key="diagram_measure").set_value("local_error")
    at.selectbox(key="mask_module").set_value(res["layers"][7]["name"])  # what a click on its box sets
    at.run()
    assert not at.exception, at.exception
    figs = _figures(at)
    assert "Where the model lost weights: local error per module" in figs
    metrics = {m.label: m.value for m in at.metric}
    assert float(metrics["Local error"]) == pytest.approx(res["layers"][7]["local_error"], rel=1e-3)


def test_demo_run_says_re_run_to_see_flips(pair):
    from dashboard.common import demo_imported

    store, a, b = pair
    demo_imported()
    runs = store.runs()
    demo = runs[~runs["key"].isin([a, b]) & (runs["pattern"] != "structured")]["key"].iloc[0]
    at = _open_in_prune_views(demo)
    assert any("re-run it" in i.value and "flip" in i.value for i in at.info)
    assert any(c.value.startswith("95% CI") for c in at.caption)  # computed from accuracy and eval_examples
    assert any(c.value.startswith("Run environment: environment not recorded") for c in at.caption)
