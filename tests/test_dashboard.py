"""The dashboard in Streamlit's AppTest, and its chart builders without Streamlit."""

import json
import re
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


ROBUST = [{"method": "dense", "sparsity": 0.0, "clean_accuracy": 0.9, "accuracy_under_attack": 0.3,
           "attack_success_rate": 0.6, "n": 10}]
ROBUST += [{"method": m, "sparsity": s, "clean_accuracy": 0.9 - s / 2 - d, "accuracy_under_attack": 0.3 - s / 4 - d,
            "attack_success_rate": 0.6 + s / 4, "n": 10} for m, d in (("wanda", 0.0), ("magnitude", 0.1))
           for s in (0.7, 0.5)]  # unsorted on purpose


def test_robustness_curves():
    fig = charts.robustness_curves(ROBUST)
    assert len(fig.data) == 6  # 2 methods x 3 measures; the dense row is no line of its own
    by_name = {t.name: t for t in fig.data}
    mag = by_name["magnitude: accuracy under attack"]
    assert list(mag.x) == [0.0, 0.5, 0.7]  # sorted, starting at the shared dense point
    assert list(mag.y) == pytest.approx([0.3, 0.3 - 0.125 - 0.1, 0.3 - 0.175 - 0.1])
    assert list(by_name["wanda: clean accuracy"].y) == pytest.approx([0.9, 0.65, 0.55])
    starts = {m: by_name[f"{m}: attack success rate"].y[0] for m in ("wanda", "magnitude")}
    assert starts == {"wanda": 0.6, "magnitude": 0.6}  # the same dense point for every method
    # colour = method, dash = measure
    assert by_name["wanda: clean accuracy"].line.color == by_name["wanda: attack success rate"].line.color
    assert by_name["wanda: clean accuracy"].line.color != by_name["magnitude: clean accuracy"].line.color
    assert {t.line.dash for t in fig.data if t.legendgroup == "wanda"} == {"solid", "dash", "dot"}
    assert "still correct after the attack" in mag.hovertemplate
    assert "clean correct" in by_name["wanda: attack success rate"].hovertemplate
    one = charts.robustness_curves(ROBUST, measures=("accuracy_under_attack",))
    assert [t.name for t in one.data] == ["magnitude: accuracy under attack", "wanda: accuracy under attack"]
    alone = charts.robustness_curves(ROBUST[:1])  # only the dense model attacked: one point per measure
    assert len(alone.data) == 3 and all(list(t.x) == [0.0] for t in alone.data)
    gap = charts.robustness_curves([{**ROBUST[0], "attack_success_rate": None}])  # undefined ASR: a gap
    assert gap.data[2].y[0] is None


def test_highlight_html_escapes_and_marks_spans():
    text = "<script>alert(1)</script> a good & fun film"
    start = text.index("good")
    out = charts.highlight_html(text, [[start, start + 4], [text.index("fun"), text.index("fun") + 3]], "#abc")
    assert "<script>" not in out and "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert out.count("<mark") == 2 and ">good</mark>" in out and ">fun</mark>" in out
    assert " a <mark" in out and "</mark> &amp; <mark" in out and out.endswith("</mark> film")
    assert charts.highlight_html("a <b> c", []) == "a &lt;b&gt; c"
    # a span over markup is escaped inside the mark; unsorted and overlapping spans are merged in order
    marked = charts.highlight_html("x <i>y</i> z", [[6, 10], [2, 5], [4, 7]])
    assert marked.count("<mark") == 3
    assert "&lt;i&gt;</mark>" in marked and "<i>" not in marked
    assert re.sub(r"</?mark[^>]*>", "", marked) == "x &lt;i&gt;y&lt;/i&gt; z"  # nothing lost or doubled
    rec = {"idx": 3, "result": "successful", "label": 1, "text": "<img src=x onerror=alert(1)> great",
           "perturbed": "<img src=x onerror=alert(1)> gerat", "original_pred": 1, "original_confidence": 0.9,
           "perturbed_pred": 0, "perturbed_confidence": 0.6, "queries": 12, "words": 6, "changed": [5],
           "original_spans": [[29, 34]], "perturbed_spans": [[29, 34]]}
    card = charts.adversarial_example_html(rec, ["rotten", "fresh"])
    assert "<img" not in card and card.count("&lt;img") == 2
    assert ">great</mark>" in card and ">gerat</mark>" in card
    assert "true label: <b>fresh</b>" in card and "fresh (90%) &rarr; rotten (60%)" in card and "queries: 12" in card
    skipped = charts.adversarial_example_html({**rec, "result": "skipped", "perturbed": None, "original_pred": 0,
                                               "original_spans": [], "perturbed_spans": []}, ["rotten", "fresh"])
    assert "perturbed:" not in skipped and "already wrong" in skipped and "<mark" not in skipped


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
    assert len(specs) >= 4  # a fifth (robustness) chart once attacks are stored
    acc = specs[0]
    assert acc["layout"]["title"]["text"] == "Accuracy vs sparsity"
    # magnitude, wanda, sparsegpt unstructured + each at 2:4 and 4:8
    assert len(acc["data"]) == 9
    assert all(len(t["x"]) == 9 for t in acc["data"] if "2:4" not in t["name"] and "4:8" not in t["name"])


def test_robustness_page_attacks_a_tiny_grid():
    """Magnitude at sparsity 0 (dense) and 0.5, 4 examples of DeepWordBug: stored, tabled, plotted, browsed;
    then the Compare page shows the stored attacks."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.switch_page("robustness_page.py")
    at.run()
    assert not at.exception, at.exception
    at.multiselect(key="rob_methods").set_value(["magnitude"])
    at.multiselect(key="rob_sparsities").set_value([0.0, 0.5])
    at.selectbox(key="rob_recipe").set_value("deepwordbug")
    at.number_input(key="rob_n").set_value(4)
    at.run()
    assert any(c.value == "2 attacks in the grid: 0 stored, 2 to compute" for c in at.caption)
    at.button(key="rob_run").click()
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert any(c.value == "2 attacks in the grid: 2 stored, 0 to compute" for c in at.caption)
    assert "rob_run" not in [b.key for b in at.button]  # nothing left to compute
    assert at.expander[0].label.startswith("Attacked 2 models with deepwordbug")
    assert len(at.expander[0].markdown) == 2  # one line per attack
    frame = at.dataframe[0].value
    assert list(frame["method"]) == ["dense", "magnitude"] and list(frame["sparsity"]) == [0.0, 0.5]
    assert (frame["n"] == 4).all() and frame["clean_accuracy"].between(0, 1).all()
    spec = _spec(at.get("plotly_chart")[0])
    assert sorted(t["name"] for t in spec["data"]) == ["magnitude: accuracy under attack",
                                                       "magnitude: attack success rate", "magnitude: clean accuracy"]
    assert all(t["x"] == [0.0, 0.5] for t in spec["data"])
    clean = next(t for t in spec["data"] if t["name"] == "magnitude: clean accuracy")
    assert clean["y"] == pytest.approx(list(frame["clean_accuracy"]))
    cards = at.get("html")
    assert len(cards) == 4 and all("true label:" in c.proto.body for c in cards)  # 4 examples, one page
    at.selectbox(key="rob_pick").select_index(1)
    at.radio(key="rob_filter").set_value("failed")
    at.run()
    assert not at.exception
    counts = dict(re.fullmatch(r"(\w+) \((\d+)\)", o).groups() for o in at.radio(key="rob_filter").options)
    assert counts["all"] == "4" and sum(int(counts[k]) for k in ("successful", "failed", "skipped")) == 4
    cards = at.get("html")
    assert len(cards) == int(counts["failed"]) and all(">failed</span>" in c.proto.body for c in cards)
    if not cards:
        assert any(i.value == "No failed examples in this attack." for i in at.info)

    at.switch_page("compare_page.py")
    at.run()
    at.selectbox(key="cmp_sample").set_value((4, 0, None))
    at.run()
    assert not at.exception, at.exception
    rob = [s for s in map(_spec, at.get("plotly_chart")) if s["layout"]["title"]["text"].startswith("Accuracy under")]
    assert len(rob) == 1
    mag = next(t for t in rob[0]["data"] if t["name"] == "magnitude: accuracy under attack")
    assert mag["x"] == [0.0, 0.5] and mag["y"] == pytest.approx(list(frame["accuracy_under_attack"]))


def test_robustness_page_unavailable_recipe_warns():
    from streamlit.testing.v1 import AppTest

    from pruning_core.robustness import availability

    why = availability()["textfooler"]
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("robustness_page.py")
    at.run()
    at.selectbox(key="rob_recipe").set_value("textfooler")
    at.run()
    assert not at.exception and not at.error
    if why is None:
        pytest.skip("textfooler can run on this machine")
    assert any("cannot run here" in w.value and why in w.value for w in at.warning)
    assert at.button(key="rob_run").disabled
