"""The dashboard in Streamlit's AppTest, and its chart builders without Streamlit."""

import json
import os
import re
from pathlib import Path

import pytest

from dashboard import charts

os.environ.setdefault("PRUNESCOPE_JOB_WORKERS", "1")  # the prune jobs run in one worker process
os.environ.setdefault("PRUNESCOPE_JOB_IDLE", "5")
APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")


def _finish(at, timeout: float = 600) -> list[str]:
    """After Prune was pressed: wait for the followed prune job (it runs in the worker pool, not in the
    script), rerunning the page while it runs, then once more (the page opens the run); the lines of the
    job's live progress log (from its events in the store)."""
    from dashboard.common import get_store
    from dashboard.prune_actions import layer_line, step_line
    from pruning_core import jobs
    from pruning_core.prune.records import LayerRecord, StepRecord

    job_id = at.session_state["prune_job"] if "prune_job" in at.session_state else None
    if job_id is None:
        return []
    jobs.wait(get_store(), job_id, timeout=timeout)
    at.run()
    lines = []
    for ev in jobs.events(get_store(), job_id):
        if ev["type"] in ("step", "layer"):
            rec = jobs.record_of(ev)
            lines.append(step_line(rec) if isinstance(rec, StepRecord) else layer_line(rec)
                         if isinstance(rec, LayerRecord) else "")
    return lines

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
    assert [list(t.y) for t in fig.data] == [[5, 3], [1, 3]] and "4 zeros" in fig.layout.title.text.replace("<br>", " ")


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
    assert "still correct after the attack" in mag.hovertemplate.replace("<br>", " ")
    assert "clean correct" in by_name["wanda: attack success rate"].hovertemplate.replace("<br>", " ")
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


# ---- structured pruning: hand-made results (2 layers x 4 heads, FFN width 8, hidden 8, head size 2) ----

HEADS = [[1, 0, 1, 1], [0, 0, 1, 0]]
NEURONS = [[1, 1, 1, 1, 1, 1, 0, 0], [0, 1, 0, 1, 0, 0, 0, 0]]
PARAMS_DENSE = 2 * 4 * (4 * 8 * 2 + 3 * 2) + 2 * 8 * (2 * 8 + 1) + 2 * 2 * 8  # Structure.params() of the full model


def _structure(reduction, **kw):
    return {"heads": HEADS, "neurons_kept": [6, 2], "head_dim": 2, "hidden_kept": 8, "hidden_size": 8,
            "flops_dense": 1000.0, "flops": 1000.0 * (1 - reduction), "flops_reduction": reduction,
            "params_dense": PARAMS_DENSE, "params": 400, "seq_len": 12.5,
            "budget_meaning": "fraction of encoder FLOPs removed", "log": [], **kw}


def _structured_run(method, budget, reduction, acc):
    return {"config": {"method": method, "pattern": "structured", "sparsity": budget}, "achieved_sparsity": 0.5,
            "accuracy": acc, "dense_accuracy": 0.9, "prune_seconds": 2.0, "layers": [],
            "blocks": [{"block": b, "cumulative_error": reduction * (b + 1)} for b in range(2)],
            "structure": _structure(reduction)}


def test_structured_unit_charts():
    s = _structure(0.4)
    assert charts.intermediate_size(s) == 8  # recovered from the dense parameter count
    grid = charts.head_grid(s)
    assert [list(row) for row in grid.data[0].z] == HEADS  # layers x heads, 1 = kept
    assert list(grid.data[0].y) == ["layer 0", "layer 1"] and list(grid.data[0].x) == [0, 1, 2, 3]
    assert grid.layout.title.text.replace("<br>", " ") == "Attention heads kept: 4 of 8"
    assert grid.data[0].customdata[1][0] == "pruned" and grid.data[0].customdata[0][0] == "kept"
    neurons = charts.neuron_map(NEURONS)
    assert [list(row) for row in neurons.data[0].z] == NEURONS and "8 of 16" in neurons.layout.title.text.replace("<br>", " ")
    strip = charts.hidden_strip([[1, 0, 1, 1, 1, 1, 0, 1]])
    assert len(strip.data[0].z) == 1 and list(strip.data[0].z[0]) == [1, 0, 1, 1, 1, 1, 0, 1]
    assert strip.layout.title.text.replace("<br>", " ") == "Hidden channels kept: 6 of 8"
    bars = {t.name: list(t.y) for t in charts.kept_per_layer_bars(s).data}
    assert bars == {"attention heads": [0.75, 0.25], "FFN neurons": [0.75, 0.25]}
    kwon_log = [{"stage": "search", "heads_kept": 4}, {"layer": 0, "heads_kept": 3}, {"layer": 1, "heads_kept": 1}]
    assert charts.log_tables(kwon_log) == [kwon_log[:1], kwon_log[1:]]
    pat_log = [{"step": i, "loss": 1.0 / i, "channels_at_zero": i} for i in (1, 2, 3)] + [{"train_seconds": 1.0}]
    assert [len(t) for t in charts.log_tables(pat_log)] == [3, 1]
    loss = charts.training_loss_line(pat_log)  # the summary row has no loss: left out
    assert list(loss.data[0].x) == [1, 2, 3] and list(loss.data[0].y) == pytest.approx([1.0, 0.5, 1 / 3])
    assert list(loss.data[1].y) == [1, 2, 3] and loss.data[1].yaxis == "y2"
    assert len(charts.training_loss_line([{"step": 1, "loss": 0.3}]).data) == 1  # live records: loss only
    assert charts.is_structured(_structured_run("kwon", 0.4, 0.4, 0.8))
    assert not charts.is_structured(_run("wanda", "unstructured", 0.5, 0.8))
    assert charts.flops_reduction(_run("wanda", "unstructured", 0.5, 0.8)) is None


def test_flops_curves_use_the_stored_reduction():
    runs = [_structured_run("kwon", b, r, 0.9 - r / 2) for b, r in ((0.6, 0.61), (0.2, 0.2004), (0.4, 0.399))]
    runs += [_structured_run("kprune", 0.4, 0.41, 0.8)]
    no_key = _structured_run("pat", 0.3, 0.25, 0.7)
    del no_key["structure"]["flops_reduction"]  # an older record: computed from flops / flops_dense
    runs += [no_key, _run("wanda", "unstructured", 0.5, 0.8)]  # unstructured runs are left out
    fig = charts.flops_curves(runs)
    by_name = {t.name: t for t in fig.data}
    assert sorted(by_name) == ["kprune", "kwon", "pat"]
    assert list(by_name["kwon"].x) == [0.2004, 0.399, 0.61]  # the stored flops_reduction, sorted
    assert list(by_name["kwon"].y) == pytest.approx([0.9 - 0.1002, 0.9 - 0.1995, 0.9 - 0.305])
    assert list(by_name["pat"].x) == pytest.approx([0.25])
    assert {n: t.line.color for n, t in by_name.items()} == {n: charts.METHOD_COLORS[n] for n in by_name}
    assert fig.layout.shapes[0].y0 == 0.9  # the dense model's accuracy
    cum = charts.flops_curves(runs, "final_cumulative_error", "t", "cumulative error")
    assert list(next(t for t in cum.data if t.name == "kprune").y) == pytest.approx([0.82])  # last block
    assert charts.flops_curves([_run("wanda", "unstructured", 0.5, 0.8)]).data == ()


def _measurement(structured: bool, semi: bool = False):
    return {"rows": [{"model": "dense", "latency_ms": 20.0, "throughput": 400.0,
                      "flops": 1000.0 if structured else None, "sparsity": 0.0},
                     {"model": "run", "latency_ms": 10.0 if structured else 19.8, "throughput": 700.0,
                      "flops": 450.0 if structured else None, "sparsity": 0.5}],
            "device": "cpu: test", "threads": 1, "seq_len": 24, "batch_sizes": [1, 32], "repeats": 3,
            "semi_structured": semi}


def test_speed_bars_dense_vs_pruned():
    rec = _structured_run("kwon", 0.5, 0.55, 0.8)
    fig = charts.speed_bars(_measurement(True), rec)
    assert [list(t.y) for t in fig.data] == [[0.0, 0.5], [1.0, 0.45], [20.0, 10.0], [400.0, 700.0]]
    assert all(list(t.x) == ["dense", "kwon"] for t in fig.data)
    assert list(fig.data[2].marker.color) == [charts.DENSE_COLOR, charts.METHOD_COLORS["kwon"]]
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["weights removed", "FLOPs executed<br>(× dense)", "latency (ms)<br>batch 1",
                      "throughput (seq/s)<br>batch 32"]
    assert fig.layout.title.text.replace("<br>", " ").startswith("Sparsity is not speed")
    caption = charts.speed_caption(_measurement(True), rec)
    assert "physically smaller" in caption and "55% of the FLOPs removed" in caption and "×2.00 in latency" in caption
    flat = _run("wanda", "unstructured", 0.5, 0.8)
    values = charts.speed_values(_measurement(False), flat)
    assert values["flops"] == (1.0, 1.0)  # zeros run on dense kernels: every multiply-add still done
    assert "dense kernels" in charts.speed_caption(_measurement(False), flat)
    assert charts.speed_values(_measurement(False, semi=True), flat)["flops"] == (1.0, None)
    assert "semi-structured" in charts.speed_caption(_measurement(False, semi=True), flat)


def test_zip_folder(tmp_path):
    import io
    import zipfile

    from dashboard.run_actions import load_snippet, zip_folder

    folder = tmp_path / "abc"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"\0" * 100)
    (folder / "sub" / "x.txt").write_text("x")
    with zipfile.ZipFile(io.BytesIO(zip_folder(folder))) as zf:
        assert sorted(zf.namelist()) == ["abc/config.json", "abc/model.safetensors", "abc/sub/x.txt"]
        assert zf.read("abc/model.safetensors") == b"\0" * 100
        assert zf.getinfo("abc/model.safetensors").compress_type == zipfile.ZIP_STORED
    assert "trust_remote_code=True" in load_snippet(folder, True) and "trust_remote" not in load_snippet(folder, False)


def _spec(chart) -> dict:
    return json.loads(chart.proto.spec)


def _values(v):
    """A list from a Plotly JSON array (plain, or typed {dtype, bdata, shape} as numpy arrays are sent)."""
    if isinstance(v, dict) and "bdata" in v:
        import base64

        import numpy as np

        shape = [int(n) for n in str(v.get("shape", "-1")).split(",")]
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).reshape(shape).tolist()
    return v


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
    at.button(key="prune_go").click()
    at.run()
    _finish(at)
    return at


def test_prune_page_runs_on_shipped_model(pruned_app):
    at = pruned_app
    assert not at.exception, at.exception
    assert not at.error
    values = {m.label: m.value for m in at.metric}
    assert abs(float(values["Achieved sparsity"]) - 0.6) < 0.005
    assert float(values["Dense accuracy"]) > 0.8
    specs = [_spec(c) for c in at.get("plotly_chart")]
    titles = [s["layout"].get("title", {}).get("text", "").replace("<br>", " ") for s in specs]
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
    at.button(key="prune_go").click()
    at.run()
    at.live_lines = _finish(at)
    return at


def _widget(at, key):
    for kind in ("number_input", "radio", "selectbox", "slider", "toggle"):
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
    at = _prune_with("reconstruction", calib=16, eval=32, reconstruction_base="wanda", reconstruction_mode="gp",
                     reconstruction_epochs=1)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    values = {m.label: m.value for m in at.metric}
    assert abs(float(values["Achieved sparsity"]) - 0.5) < 0.005 and float(values["Held-out error"]) > 0
    assert any("base = wanda" in c.value and "mode = gp" in c.value and "epochs = 1" in c.value for c in at.caption)
    specs = [_spec(c) for c in at.get("plotly_chart")]
    titles = [s["layout"].get("title", {}).get("text", "").replace("<br>", " ") for s in specs]
    cum = [s for s, t in zip(specs, titles) if t == "Cumulative error across depth"][-1]
    names = [t["name"] for t in cum["data"]]
    assert names == ["pruned: calibration", "dense (0)", "pruned: held-out"]
    held = cum["data"][2]["y"]
    assert len(held) == 7 and held[0] == 0 and all(h > 0 for h in held[1:])
    assert held[-1] == pytest.approx(float(values["Held-out error"]), rel=1e-2)
    loss = specs[titles.index("Reconstruction training loss per epoch")]
    assert [t["name"] for t in loss["data"]] == [f"block {b}" for b in range(6)]  # GP trains every block
    assert all(len(t["y"]) == 1 and t["y"][0] > 0 for t in loss["data"])  # 1 epoch


@pytest.mark.slow  # a real AKRP prune through the page: about half a minute
def test_prune_page_akrp_cards(one_thread):
    at = _prune_with("akrp", calib=16, eval=32, akrp_lambda0=1e-3)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    values = {m.label: m.value for m in at.metric}
    assert list(values)[:6] == ["Dense accuracy", "Pruned accuracy", "Achieved sparsity", "Prune time",
                                "Peak memory", "Held-out error"]
    assert abs(float(values["Achieved sparsity"]) - 0.5) < 0.005
    assert float(values["Pruned accuracy"]) > 0.5 and float(values["Held-out error"]) > 0
    assert any("lambda0 = 0.001" in c.value for c in at.caption)  # the sidebar knob reached the run
    titles = [_spec(c)["layout"].get("title", {}).get("text", "").replace("<br>", " ") for c in at.get("plotly_chart")]
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


def test_bad_input_shows_a_message_and_keeps_runs(pruned_app, tmp_path, monkeypatch):
    from dashboard.common import get_store

    monkeypatch.setenv("PRUNESCOPE_DATA_ROOTS", str(tmp_path))  # the page reads local paths under these only
    before = len(get_store().runs())
    bad = tmp_path / "reviews.csv"
    bad.write_text("review,stars\ngreat,5\n")
    at = pruned_app
    at.switch_page("prune_page.py")
    at.run()
    at.radio(key="task_source").set_value("path")
    at.run()
    at.text_input(key="task_path").set_value(str(bad))
    at.button(key="prune_go").click()
    at.run()
    assert not at.exception
    assert at.error and "text,label" in at.error[0].value
    at.radio(key="task_source").set_value("name")
    at.text_input(key="model").set_value(str(tmp_path / "no/such/model"))
    at.button(key="prune_go").click()
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
    assert acc["layout"]["title"]["text"].replace("<br>", " ") == "Accuracy vs sparsity"
    # magnitude, wanda, sparsegpt unstructured + each at 2:4 and 4:8
    assert len(acc["data"]) == 9
    assert all(len(t["x"]) == 9 for t in acc["data"] if "2:4" not in t["name"] and "4:8" not in t["name"])


def test_compare_page_held_out_chart():
    """Stored runs that measured held-out error (here: the demo SparseGPT run relabelled as akrp and
    reconstruction, with made-up held-out numbers) get the calibration vs held-out chart; the demo runs
    (no held-out error) stay out of it; the new methods are selectable but not chosen by default."""
    from streamlit.testing.v1 import AppTest

    from dashboard.common import demo_imported, get_store
    from pruning_core.sweeps.spec import grid

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
        _spec(c)["layout"]["title"]["text"].replace("<br>", " ") for c in at.get("plotly_chart")]  # demo runs only: no chart
    picker.set_value(["sparsegpt", "akrp", "reconstruction"])
    at.multiselect(key="cmp_patterns").set_value(["unstructured"])
    at.multiselect(key="cmp_sparsities").set_value([0.5])
    at.run()
    assert not at.exception, at.exception
    specs = {s["layout"]["title"]["text"].replace("<br>", " "): s for s in map(_spec, at.get("plotly_chart"))}
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
    at.selectbox(key="rob_task").set_value("rotten_tomatoes")  # the page opens on the shipped BBC News grid
    at.checkbox(key="rob_visible").uncheck()
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
    from dashboard.common import get_store
    from pruning_core import jobs

    attacks = [j for j in jobs.list_jobs(get_store()) if j.kind == "attack"][:2]
    assert len(attacks) == 2  # one job per missing attack, the page does not attack in its script
    assert any("of 2 attacks done" in p.proto.text for p in at.get("progress")) \
        or all(get_store().attack_done(j.key) for j in attacks)
    for job in attacks:
        assert jobs.wait(get_store(), job.id, timeout=600).state == "done"
    at.run()
    assert not at.exception, at.exception
    assert any(c.value == "2 attacks in the grid: 2 stored, 0 to compute" for c in at.caption)
    assert "rob_run" not in [b.key for b in at.button]  # nothing left to compute
    frame = at.dataframe[0].value
    assert list(frame["method"]) == ["dense", "magnitude"] and list(frame["sparsity"]) == [0.0, 0.5]
    assert (frame["n"] == 4).all() and frame["clean_accuracy"].between(0, 1).all()
    spec = _spec(at.get("plotly_chart")[0])  # small multiples: clean | under attack | success rate
    assert sorted(t["name"] for t in spec["data"]) == ["dense"] * 3 + ["magnitude"] * 3
    assert all(t["x"] == ([0.0] if t["name"] == "dense" else [0.5]) for t in spec["data"])  # one method: no dodge
    clean = [t for t in spec["data"] if t.get("xaxis", "x") == "x"]  # the first panel
    assert sorted(y for t in clean for y in t["y"]) == pytest.approx(sorted(frame["clean_accuracy"]))
    cards = [c for c in at.get("html") if "what it put there" not in c.proto.body]  # not the colour legend
    assert len(cards) == 4 and all("true label:" in c.proto.body for c in cards)  # 4 examples, one page
    at.selectbox(key="rob_pick").select_index(1)
    at.radio(key="rob_filter").set_value("failed")
    at.run()
    assert not at.exception
    counts = dict(re.fullmatch(r"(\w+) \((\d+)\)", o).groups() for o in at.radio(key="rob_filter").options)
    assert counts["all"] == "4" and sum(int(counts[k]) for k in ("successful", "failed", "skipped")) == 4
    cards = [c for c in at.get("html") if "what it put there" not in c.proto.body]
    assert len(cards) == int(counts["failed"]) and all(">failed</span>" in c.proto.body for c in cards)
    if not cards:
        assert any(i.value == "No failed examples in this attack." for i in at.info)
    at.checkbox(key="rob_visible").check()  # a visible-words-only attack is another attack, not the stored one
    at.run()
    assert any(c.value == "2 attacks in the grid: 0 stored, 2 to compute" for c in at.caption)
    at.checkbox(key="rob_visible").uncheck()
    at.run()

    at.switch_page("compare_page.py")
    at.run()
    at.selectbox(key="cmp_sample").set_value((4, 0, None, False))
    at.run()
    assert not at.exception, at.exception
    rob = [s for s in map(_spec, at.get("plotly_chart")) if s["layout"]["title"]["text"].replace("<br>", " ").startswith("Accuracy under")]
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


# ---- structured methods in the app ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def kwon_app():
    """The Prune page after pruning the shipped model with Kwon et al. at 30% FLOPs removed (8 calibration texts,
    16 evaluation examples, at most 10 swaps per layer), on one torch thread (see `one_thread`)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    at = _prune_with("kwon", calib=8, eval=16, budget=0.3, kwon_rearrange_steps=10)
    yield at
    torch.set_num_threads(before)


def _titles(at) -> list[str]:
    return [_spec(c)["layout"].get("title", {}).get("text", "").replace("<br>", " ") for c in at.get("plotly_chart")]


def test_prune_page_kwon_structured_views(kwon_app):
    from dashboard.common import get_store

    at = kwon_app
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    with pytest.raises(KeyError):
        at.selectbox(key="pattern")  # a structured method has no pattern to choose
    assert at.slider(key="budget").label == "Encoder FLOPs removed"
    assert any("rearrange_steps = 10" in c.value for c in at.caption)  # the knob reached the run
    rec = get_store().load(at.session_state["run_key"])
    assert rec["config"]["pattern"] == "structured" and rec["layers"] == []
    values = {m.label: m.value for m in at.metric}
    assert 0.3 <= float(values["FLOPs removed"]) < 0.33  # never over the budget's FLOPs
    assert float(values["FLOPs removed"]) == pytest.approx(rec["structure"]["flops_reduction"], abs=5e-4)
    heads = sum(map(sum, rec["structure"]["heads"]))
    assert values["Heads kept (of 72)"] == f"{heads}" and values["Hidden channels kept (of 384)"] == "384"
    assert values["FFN neurons kept (of 9,216)"] == f"{sum(rec['structure']['neurons_kept']):,}"
    assert values["Encoder parameters: 10.64M →"] == f"{rec['structure']['params'] / 1e6:.2f}M"
    specs = {s["layout"]["title"]["text"].replace("<br>", " "): s for s in map(_spec, at.get("plotly_chart")) if s["layout"].get("title")}
    grid = next(v for k, v in specs.items() if k.startswith("Attention heads kept"))
    assert _values(grid["data"][0]["z"]) == rec["structure"]["heads"]  # 6 layers x 12 heads, as stored
    neurons = next(v for k, v in specs.items() if k.startswith("FFN neurons kept"))
    assert [sum(row) for row in _values(neurons["data"][0]["z"])] == rec["structure"]["neurons_kept"]
    assert "Kept per layer" in specs and not any(t.startswith("Hidden channels") for t in specs)
    cum = [s for t, s in specs.items() if t == "Cumulative error across depth"][-1]
    assert len(cum["data"][0]["y"]) == 7 and cum["data"][2]["name"] == "pruned: held-out"
    assert not any(t.startswith("Keep-mask of") for t in specs)  # no per-module mask viewer
    lines = at.live_lines  # the job's live progress log
    assert any(v.startswith("step 1 of 15: Fisher information of 8 examples") for v in lines)
    assert any(v.startswith("step 15 of 15: layer 5 FFN: mask tuning · FLOPs kept") for v in lines)
    logs = [d for d in at.dataframe if "outcome" not in d.value.columns]  # not the table of flips
    assert len(logs) == 2  # the step log: the search, then one row per layer
    assert list(logs[1].value["layer"]) == list(range(6))


def test_prune_page_export_button(kwon_app):
    """Export into the default root beside the (temporary) results store: a clear error for a folder in the way,
    then the folder, how to load it and the zip download."""
    import os

    from dashboard.common import get_store
    from pruning_core.experiments import export

    at, store = kwon_app, get_store()
    key = at.session_state["run_key"]
    root = export.default_root(store)
    assert root.parent == Path(os.environ["PRUNESCOPE_DB"]).parent  # never the user's own store
    (root / key).mkdir(parents=True)
    (root / key / "notes.txt").write_text("not an export")
    at.button(key="prune_export").click()
    at.run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error if "is not empty" in e.value]  # a PrunescopeError, not a traceback
    (root / key / "notes.txt").unlink()
    at.button(key="prune_export").click()
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    folder = root / key
    meta = json.loads((folder / "prunescope.json").read_text())
    assert meta["key"] == key and meta["pattern"] == "structured"
    assert {"config.json", "model.safetensors", "modeling_pruned_bert.py"} <= {p.name for p in folder.iterdir()}
    assert any(str(folder) in s.value for s in at.success)
    assert any("trust_remote_code=True" in c.value and str(folder) in c.value for c in at.code)
    assert at.button(key="prune_export").label == "Export again"
    assert [b.key for b in at.get("download_button") if b.key != "flips_csv"] == ["prune_zip"]


def test_prune_page_measures_speed(kwon_app):
    from dashboard.common import get_store

    at = kwon_app
    key = at.session_state["run_key"]
    assert at.button(key="prune_speed").label == "Measure speed"
    assert any(c.value.startswith("Not measured yet") for c in at.caption)
    at.number_input(key="prune_speed_repeats").set_value(1)
    at.button(key="prune_speed").click()
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    stored = get_store().load_speed(key)
    assert stored is not None and stored["repeats"] == 1
    chart = next(s for s in map(_spec, at.get("plotly_chart")) if s["layout"]["title"]["text"].replace("<br>", " ").startswith("Sparsity"))
    lat = chart["data"][2]
    assert lat["x"] == ["dense", "kwon"]
    assert _values(lat["y"]) == pytest.approx([r["latency_ms"] for r in stored["rows"]])
    assert _values(chart["data"][1]["y"])[1] < 0.7  # FLOPs executed: the smaller model does less work
    assert any("physically smaller" in c.value for c in at.caption)
    assert at.button(key="prune_speed").label == "Measure again"


def test_stored_speed_shows_at_once_for_an_unstructured_run(pruned_app):
    """A stored measurement is drawn on revisit without measuring; unstructured zeros: same FLOPs, same speed."""
    from dashboard.common import get_store

    at = pruned_app
    at.switch_page("prune_page.py")
    at.run()
    key = at.session_state["run_key"]
    get_store().save_speed(key, {**_measurement(False), "key": key})
    at.run()
    assert not at.exception, at.exception
    chart = next(s for s in map(_spec, at.get("plotly_chart")) if s["layout"]["title"]["text"].replace("<br>", " ").startswith("Sparsity"))
    assert [_values(t["y"]) for t in chart["data"]] == [[0.0, 0.5], [1.0, 1.0], [20.0, 19.8], [400.0, 700.0]]
    assert any("dense kernels" in c.value and "stored with the run" in c.value for c in at.caption)
    assert at.button(key="prune_speed").label == "Measure again"


@pytest.mark.slow  # PAT training steps through the page
def test_prune_page_pat_sidebar_and_live_loss():
    """PAT's knobs (baseline hides the mask schedule), then a tiny real run: the loss line fills in live, the
    hidden-channel strip and the training loss are drawn."""
    import torch

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.selectbox(key="method").set_value("pat")
    at.run()
    assert at.slider(key="budget").label == "Hidden channels removed"
    assert {"pat_steps", "pat_lr", "pat_lora_rank", "pat_mask_lr", "pat_prune_end"} <= {w.key
                                                                                  for w in at.number_input}
    at.toggle(key="pat_baseline").set_value(True)
    at.run()
    keys = {w.key for w in at.number_input}
    assert {"pat_steps", "pat_lr", "pat_lora_rank"} <= keys and not {"pat_mask_lr", "pat_prune_end"} & keys
    at.toggle(key="pat_baseline").set_value(False)
    for key, value in dict(calib=8, eval=16, budget=0.25, pat_steps=10, pat_batch_size=2, pat_train_size=8).items():
        _widget(at, key).set_value(value)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        at.button(key="prune_go").click()
        at.run()
        lines = _finish(at)
    finally:
        torch.set_num_threads(before)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    values = {m.label: m.value for m in at.metric}
    assert values["Hidden channels kept (of 384)"] == "288"  # round(0.25 * 384) = 96 removed
    titles = _titles(at)
    assert "Hidden channels kept: 288 of 384" in titles and "Training loss per logged step" in titles
    assert not any(t.startswith("Attention heads kept") for t in titles)  # pat keeps every head: no grid
    assert any(c.value.startswith("Every attention head and FFN neuron is kept") for c in at.caption)
    assert any(v.startswith("step 10 of 10: tuning") for v in lines)  # the job's live progress log


def test_compare_page_structured_flops_chart():
    """Structured runs of the grid (hand-made records under the grid's keys) get the FLOPs-removed chart with the
    stored reductions; the unstructured charts of the same grid still draw."""
    from streamlit.testing.v1 import AppTest

    from dashboard.common import demo_imported, get_store
    from pruning_core.experiments.config import ExperimentConfig

    store = get_store()
    demo_imported()
    reductions = {("kwon", 0.3): 0.3012, ("kwon", 0.5): 0.5004, ("kprune", 0.5): 0.5101}
    for (method, s), red in reductions.items():
        cfg = ExperimentConfig.create(task="rotten_tomatoes", method=method, sparsity=s, calib_size=128, seq_len=64)
        rec = _structured_run(method, s, red, 0.9 - red / 3)
        store.save({**rec, "config": cfg.to_dict(), "key": cfg.key(), "dense_accuracy": 0.9, "eval_examples": 10})
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("compare_page.py")
    at.run()
    at.multiselect(key="cmp_methods").set_value(["wanda", "kwon", "kprune"])
    at.multiselect(key="cmp_patterns").set_value(["unstructured"])
    at.multiselect(key="cmp_sparsities").set_value([0.3, 0.5])
    at.run()
    assert not at.exception, at.exception
    assert any(c.value == "6 runs in the grid: 5 stored, 1 to compute" for c in at.caption)  # kprune at 0.3
    specs = {s["layout"]["title"]["text"].replace("<br>", " "): s for s in map(_spec, at.get("plotly_chart"))}
    flops = {t["name"]: t for t in specs["Accuracy vs FLOPs removed"]["data"]}
    assert sorted(flops) == ["kprune", "kwon"]
    assert _values(flops["kwon"]["x"]) == [0.3012, 0.5004] and _values(flops["kprune"]["x"]) == [0.5101]
    assert flops["kwon"]["line"]["color"] == charts.METHOD_COLORS["kwon"]
    acc = {t["name"] for t in specs["Accuracy vs sparsity"]["data"]}
    assert acc == {"wanda"}  # structured runs stay off the sparsity charts
    bars = specs["Prune time per method"]["data"][0]["x"]
    assert "kwon structured" in bars


def test_experiments_page_lists_structured_runs(kwon_app):
    from dashboard.common import get_store
    from pruning_core.experiments import export

    at = kwon_app
    key = at.session_state["run_key"]
    at.switch_page("experiments_page.py")
    at.run()
    assert not at.exception, at.exception
    frame = at.dataframe[0].value
    row = frame[frame["key"] == key].iloc[0]
    assert row["pattern"] == "structured"
    assert row["flops_reduction"] == pytest.approx(get_store().load(key)["structure"]["flops_reduction"])
    assert frame[frame["pattern"] != "structured"]["flops_reduction"].isna().all()
    assert "kwon structured, budget 30%" in at.selectbox(key="pick_run").format_func(key)
    at.selectbox(key="pick_run").set_value(key)
    at.run()
    assert not at.exception, at.exception
    exported = (export.default_root(get_store()) / key / "prunescope.json").is_file()
    assert at.button(key="exp_export").label == ("Export again" if exported else "Export model")


def _capture_downloads(monkeypatch) -> dict:
    """file name -> bytes of every st.download_button the app renders (AppTest keeps them in memory)."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    seen = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def record(self, path_or_data, mimetype, kind, filename=None):
        seen[filename] = path_or_data.encode() if isinstance(path_or_data, str) else bytes(path_or_data)
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    return seen


def test_experiments_page_downloads_the_results_table_and_lists_failures(monkeypatch):
    """The flat results table (results.runs_table) as CSV and Parquet, both parsing back to the stored runs;
    recorded sweep failures in an expander."""
    import io

    import pandas as pd
    from streamlit.testing.v1 import AppTest

    from dashboard.common import demo_imported, get_store
    from pruning_core.experiments.config import ExperimentConfig

    store = get_store()
    demo_imported()
    bad = ExperimentConfig.create(method="magnitude", sparsity=0.5, calib_size=3, seq_len=12, eval_size=5)
    store.record_failure(bad.key(), "run", bad.to_dict(), "Traceback ...\nRuntimeError: out of tea")
    key = store.runs()["key"].iloc[0]
    want = store.load(key)["accuracy"]
    files = _capture_downloads(monkeypatch)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("experiments_page.py")
    at.run()
    assert not at.exception, at.exception
    assert {"prunescope_results.csv", "prunescope_results.parquet"} <= set(files), sorted(files)
    for table in (pd.read_csv(io.BytesIO(files["prunescope_results.csv"])),
                  pd.read_parquet(io.BytesIO(files["prunescope_results.parquet"]))):
        assert len(table) == len(store.runs()) and table["key"].is_unique
        row = table[table["key"] == key]
        assert len(row) == 1 and row["accuracy"].iloc[0] == pytest.approx(want)
    box = next(e for e in at.expander if e.label.startswith("Failed configs"))
    failed = box.dataframe[0].value
    row = failed[failed["key"] == bad.key()].iloc[0]
    assert row["error"] == "RuntimeError: out of tea" and row["method"] == "magnitude"


def test_compare_page_runs_the_missing_configs_as_jobs():
    """'Compute the missing runs' submits one prune job per missing run; the page shows the grid's progress
    (from the store, so a fresh session - a reload - sees it too) and the run ends up stored exactly once."""
    from streamlit.testing.v1 import AppTest

    from dashboard.common import get_store
    from pruning_core import jobs
    from pruning_core.experiments.config import ExperimentConfig

    store = get_store()
    cfg = ExperimentConfig.create(method="magnitude", sparsity=0.5, calib_size=4, seq_len=24, eval_size=8)
    store.delete(cfg.key())
    tiny = {"cmp_methods": ["magnitude"], "cmp_patterns": ["unstructured"], "cmp_sparsities": [0.5], "cmp_calib": 4,
            "cmp_seq": 24, "cmp_eval": 8}  # set before the page first draws: no 243-run default grid to chart
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    for k, v in tiny.items():
        at.session_state[k] = v
    at.switch_page("compare_page.py")
    at.run()
    assert any(c.value == "1 runs in the grid: 0 stored, 1 to compute" for c in at.caption)
    at.button(key="cmp_run").click()
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    [job] = [j for j in jobs.list_jobs(store) if j.kind == "prune" and j.key == cfg.key()]
    if job.active or jobs.get(store, job.id).active:
        reloaded = AppTest.from_file(APP, default_timeout=120)  # a new browser session
        reloaded.run()
        for k, v in tiny.items():
            reloaded.session_state[k] = v
        reloaded.switch_page("compare_page.py")
        reloaded.run()
        assert not reloaded.exception, reloaded.exception
        bars = [p.proto.text for p in reloaded.get("progress")]
        assert any("of 1 runs done" in b for b in bars) or store.has(cfg.key()), bars
    assert jobs.wait(store, job.id, timeout=120).state == "done"
    assert (store.runs()["key"] == cfg.key()).sum() == 1
    at.run()
    assert not at.exception, at.exception
    assert any(c.value == "1 runs in the grid: 1 stored, 0 to compute" for c in at.caption)
    assert "cmp_run" not in [b.key for b in at.button]
    acc = next(s for s in map(_spec, at.get("plotly_chart")) if s["layout"]["title"]["text"].replace("<br>", " ") == "Accuracy vs sparsity")
    assert acc["data"][0]["y"] == pytest.approx([store.load(cfg.key())["accuracy"]])
