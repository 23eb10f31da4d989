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


HELD_BLOCKS = [{"block": b, "cumulative_error": 0.02 * (b + 1), "heldout_error": 0.05 * (b + 1),
                "refine_loss": None if b == 1 else [0.4 / (b + 1), 0.1 / (b + 1), 0.05 / (b + 1)]} for b in range(3)]


def test_cumulative_error_line_held_out_and_refine_loss():
    line = charts.cumulative_error_line(HELD_BLOCKS)
    assert [t.name for t in line.data] == ["pruned: calibration", "dense (0)", "pruned: held-out"]
    assert list(line.data[0].y) == [0.0, 0.02, 0.04, 0.06]  # calibration first, as before
    assert list(line.data[1].y) == [0.0] * 4
    assert list(line.data[2].y) == pytest.approx([0.0, 0.05, 0.10, 0.15])
    assert line.data[2].line.dash == "dash" and line.data[0].line.dash in (None, "solid")
    assert line.data[0].line.color != line.data[2].line.color
    assert "held-out set" in line.data[2].hovertemplate
    # old runs (no key) and runs without a held-out set (None): no third line
    assert len(charts.cumulative_error_line(BLOCKS).data) == 2
    assert len(charts.cumulative_error_line([{**b, "heldout_error": None} for b in HELD_BLOCKS]).data) == 2
    # one block measured, one not: a gap, not a zero
    partial = charts.cumulative_error_line([HELD_BLOCKS[0], {**HELD_BLOCKS[1], "heldout_error": None}])
    assert list(partial.data[2].y) == [0.0, 0.05, None]
    assert charts.run_heldout_error({"blocks": HELD_BLOCKS}) == pytest.approx(0.15)  # the last block's
    assert charts.run_heldout_error({"blocks": BLOCKS}) is None and charts.run_heldout_error({"blocks": []}) is None
    assert charts.has_refine_loss(HELD_BLOCKS) and not charts.has_refine_loss(BLOCKS)

    loss = charts.refine_loss_lines(HELD_BLOCKS)
    assert [t.name for t in loss.data] == ["block 0", "block 2"]  # only the blocks that were trained
    assert list(loss.data[0].x) == [1, 2, 3] and list(loss.data[1].y) == pytest.approx([0.4 / 3, 0.1 / 3, 0.05 / 3])
    assert loss.layout.yaxis.type == "log" and loss.layout.xaxis.title.text == "epoch"
    assert len({t.line.color for t in loss.data}) == 2
    cross = [{"block": b, "cumulative_error": 0.1, "refine_loss": [0.3, 0.2] if b % 2 else None} for b in range(4)]
    pairs = charts.refine_loss_lines(cross, window=2)  # cross-block: one loss per pair, at its second block
    assert [t.name for t in pairs.data] == ["blocks 0–1", "blocks 2–3"]


def _held_run(method, pattern, sparsity, held):
    blocks = [{**b, "heldout_error": None if held is None else held * (b["block"] + 1)} for b in BLOCKS]
    return {**_run(method, pattern, sparsity, 0.8), "blocks": blocks, "heldout_error": blocks[-1]["heldout_error"],
            "calib_examples": 16}


def test_heldout_curves_and_method_colours():
    runs = [_held_run(m, "unstructured", s, h * s) for m, h in (("reconstruction", 0.3), ("akrp", 0.1))
            for s in (0.7, 0.5)]
    runs += [_held_run("wanda", "unstructured", 0.5, None)]  # stored before held-out error: left out
    runs += [{k: v for k, v in _held_run("wanda", "unstructured", 0.7, None).items() if k != "heldout_error"}]
    fig = charts.heldout_curves(runs)
    by_name = {t.name: t for t in fig.data}
    assert sorted(by_name) == ["akrp: calibration", "akrp: held-out", "reconstruction: calibration",
                               "reconstruction: held-out"]
    rec_cal, rec_held = by_name["reconstruction: calibration"], by_name["reconstruction: held-out"]
    assert list(rec_held.x) == [0.5, 0.7]  # sorted by sparsity
    assert list(rec_held.y) == pytest.approx([0.3 * 0.5 * 3, 0.3 * 0.7 * 3])  # last block's held-out error
    assert list(rec_cal.y) == pytest.approx([0.06, 0.06])  # last block's calibration error
    assert rec_cal.line.dash == "solid" and rec_held.line.dash == "dash"
    assert rec_cal.line.color == rec_held.line.color == charts.METHOD_COLORS["reconstruction"]
    assert by_name["akrp: held-out"].line.color == charts.METHOD_COLORS["akrp"]
    # one colour per method in every chart: sweep curves, prune time, robustness, held-out, toy depth
    assert len(set(charts.METHOD_COLORS.values())) == len(charts.METHOD_COLORS)
    assert {"akrp", "reconstruction"} <= set(charts.METHOD_COLORS)
    sweep_runs = runs + [_run("wanda", "2:4", 0.5, 0.7), _run("wanda", "4:8", 0.5, 0.75)]
    sweep = {t.name: t for t in charts.sweep_curves(sweep_runs, "accuracy", "t", "acc").data}
    assert sorted(sweep) == ["akrp", "reconstruction", "wanda", "wanda 2:4", "wanda 4:8"]  # names unchanged
    for name, method in (("akrp", "akrp"), ("reconstruction", "reconstruction"), ("wanda 2:4", "wanda")):
        assert sweep[name].line.color == sweep[name].marker.color == charts.METHOD_COLORS[method]
    assert sweep["wanda 2:4"].marker.symbol != sweep["wanda 4:8"].marker.symbol  # same colour, other marker
    bars = charts.prune_time_bars(sweep_runs).data[0]
    assert dict(zip(bars.x, bars.marker.color))["akrp"] == charts.METHOD_COLORS["akrp"]
    rob = charts.robustness_curves([{**r, "method": "akrp"} for r in ROBUST[1:3]] + ROBUST[:1])
    assert {t.line.color for t in rob.data} == {charts.METHOD_COLORS["akrp"]}
    assert charts.depth_chart({"wanda": [0, 0.1]}).data[0].line.color == charts.METHOD_COLORS["wanda"]
    # methods without a colour of their own get distinct fallbacks, the same in every builder
    other = charts.method_colors(["zeta", "alpha", "wanda"])
    assert other["wanda"] == charts.METHOD_COLORS["wanda"] and other["zeta"] != other["alpha"]
    assert not {other["zeta"], other["alpha"]} & set(charts.METHOD_COLORS.values())
    assert charts.heldout_curves(runs[4:]).data == ()  # nothing measured: an empty figure, no error


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


def _prune_with(method: str, **widgets):
    """A fresh app on the Prune page, `method` chosen, the widgets (key -> value) set, Prune pressed."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.selectbox(key="method").set_value(method)
    at.run()  # the method's own knobs appear
    for key, value in widgets.items():
        _widget(at, key).set_value(value)
    at.button[0].click()
    at.run()
    return at


def _widget(at, key):
    for kind in ("number_input", "radio", "selectbox", "slider"):
        try:
            return getattr(at, kind)(key=key)
        except KeyError:
            continue
    raise KeyError(key)


@pytest.fixture
def one_thread():
    """One torch thread while pruning: on a busy 2-core machine, two threads of SparseGPT / AKRP's many
    small operations wait on each other (measured: 50 s instead of 5 s at 16 calibration texts)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_prune_page_reconstruction_shows_held_out_and_loss(one_thread):
    at = _prune_with("reconstruction", calib=16, eval=32, rec_base="wanda", rec_mode="gp", rec_epochs=1)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    values = {m.label: m.value for m in at.metric}
    assert abs(float(values["Achieved sparsity"]) - 0.5) < 0.005 and float(values["Held-out error"]) > 0
    assert any("base = wanda" in c.value and "mode = gp" in c.value and "epochs = 1" in c.value for c in at.caption)
    specs = [_spec(c) for c in at.get("plotly_chart")]
    titles = [s["layout"].get("title", {}).get("text", "") for s in specs]
    cum = [s for s, t in zip(specs, titles) if t == "Cumulative error across depth"][-1]
    names = [t["name"] for t in cum["data"]]
    assert names == ["pruned: calibration", "dense (0)", "pruned: held-out"]
    held = cum["data"][2]["y"]
    assert len(held) == 7 and held[0] == 0 and all(h > 0 for h in held[1:])
    assert held[-1] == pytest.approx(float(values["Held-out error"]), rel=1e-2)
    loss = specs[titles.index("Reconstruction training loss per epoch")]
    assert [t["name"] for t in loss["data"]] == [f"block {b}" for b in range(6)]  # GP trains every block
    assert all(len(t["y"]) == 1 and t["y"][0] > 0 for t in loss["data"])  # 1 epoch


def test_prune_page_akrp_cards(one_thread):
    at = _prune_with("akrp", calib=16, eval=32, lambda0=1e-3)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    values = {m.label: m.value for m in at.metric}
    assert list(values)[:6] == ["Dense accuracy", "Pruned accuracy", "Achieved sparsity", "Prune time",
                                "Peak memory", "Held-out error"]
    assert abs(float(values["Achieved sparsity"]) - 0.5) < 0.005
    assert float(values["Pruned accuracy"]) > 0.5 and float(values["Held-out error"]) > 0
    assert any("lambda0 = 0.001" in c.value for c in at.caption)  # the sidebar knob reached the run
    titles = [_spec(c)["layout"].get("title", {}).get("text", "") for c in at.get("plotly_chart")]
    assert "Reconstruction training loss per epoch" not in titles  # akrp trains nothing


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


def test_compare_page_held_out_chart():
    """Stored runs that measured held-out error (here: the demo SparseGPT run relabelled as akrp and
    reconstruction, with made-up held-out numbers) get the calibration vs held-out chart; the demo runs
    (no held-out error) stay out of it; the new methods are selectable but not chosen by default."""
    from streamlit.testing.v1 import AppTest

    from dashboard.common import demo_imported, get_store
    from pruning_core.sweep import grid

    store = get_store()
    demo_imported()
    one = dict(task="rotten_tomatoes", patterns=["unstructured"], sparsities=[0.5], calib_size=128, seq_len=64)
    base = store.load(grid(methods=["sparsegpt"], **one)[0].key())
    for method, factor in (("akrp", 1.5), ("reconstruction", 4.0)):
        cfg = grid(methods=[method], **one)[0]
        blocks = [{**b, "heldout_error": b["cumulative_error"] * factor} for b in base["blocks"]]
        store.save({**base, "config": cfg.to_dict(), "key": cfg.key(), "blocks": blocks,
                    "heldout_error": blocks[-1]["heldout_error"]})
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("compare_page.py")
    at.run()
    picker = at.multiselect(key="cmp_methods")
    assert picker.value == ["magnitude", "wanda", "sparsegpt"] and {"akrp", "reconstruction"} <= set(picker.options)
    assert "Calibration vs held-out error at the last block" not in [
        _spec(c)["layout"]["title"]["text"] for c in at.get("plotly_chart")]  # demo runs only: no chart
    picker.set_value(["sparsegpt", "akrp", "reconstruction"])
    at.multiselect(key="cmp_patterns").set_value(["unstructured"])
    at.multiselect(key="cmp_sparsities").set_value([0.5])
    at.run()
    assert not at.exception, at.exception
    specs = {s["layout"]["title"]["text"]: s for s in map(_spec, at.get("plotly_chart"))}
    held = {t["name"]: t for t in specs["Calibration vs held-out error at the last block"]["data"]}
    assert sorted(held) == ["akrp: calibration", "akrp: held-out", "reconstruction: calibration",
                            "reconstruction: held-out"]
    last = base["blocks"][-1]["cumulative_error"]
    assert held["reconstruction: held-out"]["y"] == pytest.approx([4.0 * last])
    assert held["akrp: calibration"]["y"] == pytest.approx([last])
    assert held["akrp: held-out"]["line"]["dash"] == "dash"
    assert any(c.value.startswith("2 of 3 runs measured held-out error") for c in at.caption)
    acc = {t["name"]: t for t in specs["Accuracy vs sparsity"]["data"]}
    assert {n: acc[n]["marker"]["color"] for n in acc} == {n: charts.METHOD_COLORS[n] for n in acc}


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
