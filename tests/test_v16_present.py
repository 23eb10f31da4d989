"""Issue 16 items 5 and 6 in AppTest: the Robustness page opens on the shipped BBC News grid (small multiples
with Wilson intervals, no green highlights), presentation mode (?present=1, large fonts, fixed axes, a
chance-level line) and the Demo path page's three presets, all on a fresh store with nothing computed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import plotly.graph_objects as go
import pytest

from pruning_core.measure.intervals import accuracy_interval

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")


def _app(page: str | None = None, present: bool = False):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=180)
    if present:
        at.query_params["present"] = "1"
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    assert not at.exception, at.exception
    return at


def _figures(at) -> dict[str, dict]:
    return {s["layout"]["title"]["text"]: s for s in (json.loads(c.proto.spec) for c in at.get("plotly_chart"))}


def _greenish(hex_colour: str) -> bool:
    r, g, b = (int(hex_colour.lstrip("#")[i:i + 2], 16) for i in (0, 2, 4))
    return g > r + 20 and g > b + 20


def test_robustness_page_opens_on_the_bbc_demo_with_three_panels(fresh_app):
    from pruning_core import jobs

    at = _app("robustness_page.py")
    assert at.selectbox(key="rob_task").value == "bbc_news"
    assert sorted(at.multiselect(key="rob_methods").value) == ["akrp", "sparsegpt"]
    assert sorted(at.multiselect(key="rob_sparsities").value) == [0.0, 0.6, 0.7, 0.8]
    assert at.checkbox(key="rob_visible").value and at.number_input(key="rob_n").value == 40
    assert "7 attacks in the grid: 7 stored, 0 to compute" in [c.value for c in at.caption]
    assert jobs.list_jobs(fresh_app) == []  # nothing submitted, nothing computed
    (spec,) = _figures(at).values()
    layout = spec["layout"]
    assert {k for k in layout if re.fullmatch(r"xaxis\d*", k)} == {"xaxis", "xaxis2", "xaxis3"}  # small multiples
    titles = [a["text"] for a in layout["annotations"] if a.get("yref") == "paper"]
    assert titles == ["clean accuracy", "accuracy under attack", "attack success rate"]
    assert sum(s.get("type") == "line" and s["y0"] == s["y1"] for s in layout["shapes"]) == 3  # dense reference
    under = {t["name"]: t for t in spec["data"] if t.get("xaxis") == "x2"}  # accuracy under attack
    assert [c[3] for c in under["akrp"]["customdata"]] == [0.6, 0.7, 0.8] and under["dense"]["x"] == [0.0]
    assert under["akrp"]["x"] == pytest.approx([0.6, 0.7, 0.8], abs=0.03)  # dodged a little, left of sparsegpt
    assert all(a < s for a, s in zip(under["akrp"]["x"], under["sparsegpt"]["x"]))
    assert under["akrp"]["y"] == pytest.approx([0.45, 0.5, 0.5]) and under["dense"]["y"] == pytest.approx([0.65])
    for name in ("akrp", "sparsegpt"):  # error bars are the Wilson intervals of 40 examples
        t = under[name]
        for y, plus, minus in zip(t["y"], t["error_y"]["array"], t["error_y"]["arrayminus"]):
            lo, hi = accuracy_interval(y, 40)
            assert (y - minus, y + plus) == pytest.approx((lo, hi))
    a80, s80 = (accuracy_interval(under[m]["y"][-1], 40) for m in ("akrp", "sparsegpt"))
    assert s80[1] < a80[0]  # at 80% the intervals separate (the shipped demo's claim)
    assert under["akrp"]["marker"]["color"] != under["sparsegpt"]["marker"]["color"]
    cards = [h.proto.body for h in at.get("html")]
    assert sum("true label:" in c for c in cards) == 5  # one page of the example browser
    marks = re.findall(r"background-color: (#[0-9a-fA-F]{6})", " ".join(cards).replace("&#x27;", "'"))
    assert marks and not any(_greenish(c) for c in marks), set(marks)
    assert any("what it put there" in c for c in cards)  # the legend line of the highlight colours


def test_rotten_tomatoes_demo_stays_reachable(fresh_app):
    at = _app("robustness_page.py")
    next(b for b in at.button if b.label == "Rotten Tomatoes").click()
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="rob_task").value == "rotten_tomatoes"
    assert "13 attacks in the grid: 13 stored, 0 to compute" in [c.value for c in at.caption]


def test_presentation_mode_from_the_url_styles_every_chart(fresh_app):
    at = _app(present=True)
    assert at.toggle(key="presentation").value
    assert at.title[0].value == "Demo path"  # the landing page while presenting
    figs = _figures(at)
    acc = next(f for t, f in figs.items() if t.startswith("Accuracy after pruning"))
    assert acc["layout"]["font"]["size"] >= 20 and acc["layout"]["title"]["font"]["size"] >= 24
    chance = [s for s in acc["layout"]["shapes"] if s.get("name") == "chance level"]
    assert [s["y0"] for s in chance] == [0.5]  # rotten_tomatoes: two classes
    assert acc["layout"]["yaxis"]["range"] == [0, 1.05]
    rob = next(f for t, f in figs.items() if t.startswith("Under attack by deepwordbug: bbc_news"))
    chance = [s for s in rob["layout"]["shapes"] if s.get("name") == "chance level"]
    assert sorted(s["yref"] for s in chance) == ["y", "y2"] and {s["y0"] for s in chance} == {0.2}  # 5 classes
    assert all(a["font"]["size"] >= 17 for a in rob["layout"]["annotations"])
    at.toggle(key="presentation").set_value(False)
    at.run()
    assert "present" not in at.query_params
    plain = next(f for t, f in _figures(at).items() if t.startswith("Accuracy after pruning"))
    assert "font" not in plain["layout"] and not any(s.get("name") == "chance level"
                                                     for s in plain["layout"].get("shapes", []))


def test_presentation_toggle_sets_the_query_param(fresh_app):
    at = _app("robustness_page.py")
    assert not at.toggle(key="presentation").value and "present" not in at.query_params
    at.toggle(key="presentation").set_value(True)
    at.run()
    assert not at.exception, at.exception
    assert at.query_params.get("present") in ("1", ["1"])
    (spec,) = _figures(at).values()
    assert spec["layout"]["font"]["size"] >= 20


def test_style_fixes_axes_and_keeps_the_figure():
    from dashboard import presentation

    fig = go.Figure(go.Scatter(x=[0.5, 0.6], y=[0.8, 0.7]))
    fig.update_layout(title="t", xaxis_title="achieved sparsity", yaxis_title="accuracy")
    styled = presentation.style(fig, chance=0.25)
    assert styled.layout.xaxis.range == (-0.04, 1.0) and styled.layout.yaxis.range == (0, 1.05)
    assert [s.y0 for s in styled.layout.shapes] == [0.25]
    assert fig.layout.xaxis.range is None and not fig.layout.shapes  # the page's figure is not changed
    err = go.Figure(go.Scatter(x=[0, 1], y=[0.2, 1.7]))
    err.update_layout(yaxis_title="cumulative error")
    assert presentation.style(err).layout.yaxis.range is None  # data beyond 1: left to autorange
    assert presentation.chance_level("bbc_news") == pytest.approx(0.2)
    assert presentation.chance_level("no-such-task") is None


def test_demo_path_presets_render_on_a_fresh_store(fresh_app):
    from pruning_core import jobs

    at = _app("demo_page.py")
    assert [s.value for s in at.subheader] == ["1 · Which method keeps the accuracy?", "2 · Is a sparse model faster?",
                                               "3 · Does a pruned model stay robust?"]
    figs = _figures(at)
    assert len(figs) == 2  # (a) and (c) from the shipped demos; (b) has nothing measured on a fresh store
    acc = next(f for t, f in figs.items() if t.startswith("Accuracy after pruning"))
    assert sorted(t["name"] for t in acc["data"]) == ["magnitude", "sparsegpt", "wanda"]
    text = " ".join(m.value for m in at.markdown)
    assert "akrp keeps 0.50 [0.35, 0.65]" in text and "sparsegpt 0.15 [0.07, 0.29]" in text
    assert "do not overlap" in text
    assert any("prunes rotten_tomatoes's model twice" in i.value for i in at.info)
    assert at.button(key="demo_speed_run").label.startswith("Prune the two models")
    assert jobs.list_jobs(fresh_app) == []
    at.button(key="demo_open_robustness").click()
    at.run()
    assert not at.exception, at.exception
    at.switch_page("robustness_page.py")  # AppTest reruns the page it was told (st.switch_page does not change it)
    at.run()
    assert at.selectbox(key="rob_task").value == "bbc_news" and at.number_input(key="rob_n").value == 40
    at.switch_page("demo_page.py")
    at.run()
    at.button(key="demo_open_compare").click()
    at.run()
    at.switch_page("compare_page.py")
    at.run()
    assert not at.exception, at.exception
    assert at.multiselect(key="cmp_sparsities").value == [0.5, 0.7]
    assert "6 runs in the grid: 6 stored, 0 to compute" in [c.value for c in at.caption]


def test_demo_path_speed_preset_submits_then_shows_a_stored_comparison(fresh_app):
    """(b) on a fresh store: the button queues the two prunes (cancelled here); once both runs and their speed
    measurements are stored the preset draws the speed-up of each over the dense model and narrates it."""
    from pruning_core import jobs
    from pruning_core.experiments.config import ExperimentConfig

    configs = [ExperimentConfig.create(model="default", task="rotten_tomatoes", method=m, sparsity=0.5,
                                       calib_size=64, seq_len=64, eval_size=500) for m in ("magnitude", "kwon")]
    at = _app("demo_page.py")
    at.button(key="demo_speed_run").click()
    at.run()
    assert not at.exception, at.exception
    queued = [j for j in jobs.list_jobs(fresh_app) if j.kind == "prune"]
    assert sorted(j.key for j in queued) == sorted(c.key() for c in configs)
    for j in queued:
        jobs.cancel(fresh_app, j.id)
    for c, latency in zip(configs, (9.8, 4.0)):  # stand-ins for the two runs and their measurements
        fresh_app.save({"key": c.key(), "config": c.to_dict(), "accuracy": 0.8, "dense_accuracy": 0.84})
        fresh_app.save_speed(c.key(), {"device": "cpu", "threads": 2, "batch_sizes": [1, 32], "seq_len": 128,
                                       "rows": [{"latency_ms": 10.0}, {"latency_ms": latency}]})
    at = _app("demo_page.py")
    speed = next(f for t, f in _figures(at).items() if t.startswith("Speed-up over the dense model"))
    assert speed["data"][0]["y"] == pytest.approx([10.0 / 9.8, 10.0 / 4.0])
    text = " ".join(m.value for m in at.markdown)
    assert "×1.02 as fast as dense" in text and "×2.50 as fast" in text
