"""The issue-16 dashboard views in AppTest and their figure builders: Run against run (two tiny real runs),
the examples that flip, accuracy intervals and the run environment on the cards, the encoder diagram."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from v16_runs import tiny_pair

from pruning_core.storage.demo import demo_keys

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
        out[spec["layout"].get("title", {}).get("text", "").replace("<br>", " ")] = spec
    return out


def test_diff_page_from_experiments_selection(pair):
    """Two rows ticked on Experiments -> 'Compare these two' -> the diff page with both runs overlaid."""
    from dashboard.card_notes import delta

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
    b_card = next(m for m in at.metric if m.label == "B: pruned accuracy")  # its delta: none where it rounds to 0
    assert (b_card.delta or None) == delta(rb["accuracy"] - ra["accuracy"], "+.3f", " vs A")
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
    demo = runs[(runs["model"] == "default") & runs["key"].isin(demo_keys())]["key"].iloc[0]  # a shipped run
    at.selectbox(key="diff_a").set_value(a)
    at.run()
    assert any(o.endswith(b) for o in at.selectbox(key="diff_b").options)  # labels end with the key
    at.selectbox(key="diff_b").set_value(demo)
    at.run()
    assert not at.exception, at.exception
    assert any("stored without masks" in i.value for i in at.info)
    # two shipped demo runs that the shipped attacks hit: a deltas chart per recipe with both runs' intervals
    from pruning_core.storage import diff

    shipped = runs[(runs["task"] == "rotten_tomatoes") & runs["key"].isin(demo_keys())]["key"]  # other tests' runs
    hit = [k for k in shipped if diff.attacks_of(store, store.load(k))][:2]  # may hold attacks of other recipes
    at.selectbox(key="diff_a").set_value(hit[0])
    at.run()
    at.selectbox(key="diff_b").set_value(hit[1])
    at.run()
    assert not at.exception, at.exception
    want = diff.compare(store, *hit).attacks
    assert want  # the shipped demo attacks hit both
    figs = _figures(at)
    for recipe, rows in want.items():
        fig = next(f for t, f in figs.items() if t.startswith(f"{recipe}: A"))
        assert fig["data"][0]["x"][1] == pytest.approx(rows[1].a)  # accuracy under attack of A
        assert fig["data"][1]["error_x"]["array"][1] == pytest.approx(rows[1].b_ci[1] - rows[1].b)


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
    demo = runs[runs["key"].isin(demo_keys()) & (runs["pattern"] != "structured")]["key"].iloc[0]  # a shipped run
    at = _open_in_prune_views(demo)
    assert any("re-run it" in i.value and "flip" in i.value for i in at.info)
    assert any(c.value.startswith("95% CI") for c in at.caption)  # computed from accuracy and eval_examples
    assert any(c.value.startswith("Run environment: environment not recorded") for c in at.caption)


# ---- the figure builders, without Streamlit ------------------------------------------------------------------

def _rgb(colour: str) -> tuple[float, float, float]:
    return tuple(float(v) for v in colour[colour.index("(") + 1:-1].split(","))


def _luminance(colour: str) -> float:
    r, g, b = _rgb(colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


LAYERS = [{"name": f"enc.{b}.{k}", "block": b, "kind": k, "achieved_sparsity": s, "local_error": 0.01 * (i + 1),
           "cumulative_error": 0.1 * (b + 1)}
          for i, (b, k, s) in enumerate((b, k, (0.2 + 0.1 * j) % 0.95) for b in range(3)
                                        for j, k in enumerate(("q", "k", "v", "attn_out", "ffn_in", "ffn_out")))]


def test_encoder_diagram_one_box_per_module_colours_monotone():
    from dashboard.charts import diagram

    fig = diagram.encoder_diagram(LAYERS)
    boxes = fig.data[0]
    assert len(boxes.x) == len(LAYERS) == 18
    assert len(set(zip(boxes.x, boxes.y))) == 18  # no two modules share a box
    assert list(boxes.x) == [r["block"] + 1 for r in LAYERS] and 0 not in boxes.x  # x = 0: the embeddings
    assert [c[0] for c in boxes.customdata] == [r["name"] for r in LAYERS]
    order = sorted(range(18), key=lambda i: LAYERS[i]["achieved_sparsity"])
    lum = [_luminance(boxes.marker.color[i]) for i in order]
    assert all(x >= y for x, y in zip(lum, lum[1:])) and lum[0] > lum[-1]  # sparser = darker
    assert fig.data[2].marker.cmin == 0 and fig.data[2].marker.cmax == 1  # sparsity on a fixed 0..1 scale
    err = diagram.encoder_diagram(LAYERS, "local_error")
    lum = [_luminance(c) for c in err.data[0].marker.color]  # local error grows with the module's position
    assert all(x > y for x, y in zip(lum, lum[1:]))
    assert err.data[2].marker.cmax == pytest.approx(0.18)
    with pytest.raises(ValueError):
        diagram.encoder_diagram(LAYERS, "speed")


def test_selected_module_reads_the_click_event():
    from dashboard.charts import diagram

    pick = diagram.selected_module
    assert pick({"selection": {"points": [{"curve_number": 0, "point_index": 4}]}}, LAYERS) == LAYERS[4]["name"]
    assert pick({"selection": {"points": [{"curve_number": 0, "customdata": ["enc.2.v", "V"]}]}}, LAYERS) == "enc.2.v"
    assert pick({"selection": {"points": [{"curve_number": 1, "point_index": 0}]}}, LAYERS) is None  # embeddings
    assert pick({"selection": {"points": []}}, LAYERS) is None and pick(None, LAYERS) is None


def test_structured_diagram_heads_and_neurons():
    from dashboard.charts import diagram

    s = {"heads": [[1, 0, 1, 1], [0, 0, 1, 1]], "neurons_kept": [96, 32], "head_dim": 8, "hidden_size": 32,
         "hidden_kept": 32, "params_dense": 2 * (4 * (4 * 32 * 8 + 3 * 8) + 128 * (2 * 32 + 1) + 2 * 32)}
    fig = diagram.structured_diagram(s)
    heads, ffn = fig.data[0], fig.data[1]
    assert len(heads.x) == 8 and list(heads.text).count("×") == 3
    assert list(heads.marker.color).count(diagram.REMOVED_COLOR) == 3
    assert list(ffn.text) == ["75%", "25%"] and _luminance(ffn.marker.color[0]) < _luminance(ffn.marker.color[1])
    assert "5 of 8 heads kept" in fig.layout.title.text.replace("<br>", " ") and "128 of 256 FFN neurons" in fig.layout.title.text.replace("<br>", " ")


def test_flips_frame_and_confusion_figure():
    from dashboard import flips_view

    pred = {"index": [5, 0, 2], "label": [1, 0, 1], "dense_pred": [1, 0, 0], "dense_conf": [0.9, 0.8, 0.6],
            "pruned_pred": [0, 0, 1], "pruned_conf": [0.7, 0.85, 0.55], "pruned_p_dense": [0.3, 0.85, 0.45],
            "kl": [0.5, 0.01, 0.2]}
    texts = [f"text {i}" for i in range(6)]
    df = flips_view.flips_frame(pred, texts, ("neg", "pos"))
    assert list(df["index"]) == [5, 2, 0]  # largest KL first
    assert list(df["outcome"]) == ["lost", "gained", "right"]
    assert list(df["text"]) == ["text 5", "text 2", "text 0"] and list(df["label"]) == ["pos", "pos", "neg"]
    assert list(df["pruned_pred"]) == ["neg", "pos", "neg"]
    assert flips_view.flips_frame(pred)["text"].tolist() == ["", "", ""]  # no split: no texts, no crash
    assert flips_view.n_classes(pred) == 2 and flips_view.n_classes(pred, ("a", "b", "c")) == 3
    fig = flips_view.confusion_figure([[3, 1], [2, 4]], ("neg", "pos"), "t")
    assert list(fig.data[0].x) == ["neg", "pos"] and np.asarray(fig.data[0].z).tolist() == [[3, 1], [2, 4]]


def test_diff_figures():
    from dashboard.charts import diff as diff_charts
    from pruning_core.storage import diff

    a = np.array([[1, 1, 0, 0]] * 4)
    b = np.array([[1, 0, 1, 0]] * 4)
    md = diff.mask_diff(a, b)
    img = diff_charts.mask_diff_image(md.codes)
    z = np.asarray(img.data[0].z)
    assert z.shape == (4, 4, 3)
    want = [diff_charts.DIFF_COLORS[c] for c in (diff.BOTH, diff.A_ONLY, diff.B_ONLY, diff.NEITHER)]
    assert ["#%02x%02x%02x" % tuple(z[0, j]) for j in range(4)] == [w.lower() for w in want]
    big = diff.mask_diff(np.ones((200, 400)), np.zeros((200, 400)))  # all kept by A only, tiled
    z = np.asarray(diff_charts.mask_diff_image(big.codes).data[0].z)
    assert z.shape[0] <= 96 and z.shape[1] <= 192 and (z == z[0, 0]).all()
    assert "#%02x%02x%02x" % tuple(z[0, 0]) == diff_charts.A_COLOR.lower()
    deltas = diff.accuracy_deltas({"accuracy": 0.8, "dense_accuracy": 0.9, "eval_examples": 100},
                                  {"accuracy": 0.7, "dense_accuracy": 0.9, "eval_examples": 100})
    fig = diff_charts.deltas_figure(deltas, "acc")
    lo, hi = diff.interval({"accuracy": 0.8, "eval_examples": 100})
    assert fig.data[0].x[0] == 0.8 and fig.data[0].error_x.array[0] == pytest.approx(hi - 0.8)
    assert fig.data[0].error_x.arrayminus[0] == pytest.approx(0.8 - lo)
    blocks = diff.align_blocks({"blocks": [{"block": 0, "cumulative_error": 0.1, "heldout_error": None}]},
                               {"blocks": [{"block": 0, "cumulative_error": 0.2, "heldout_error": 0.3}]})
    cum = diff_charts.cumulative_pair(blocks)
    assert [t.name for t in cum.data] == ["A: calibration", "B: calibration", "B: held-out"]  # A has no held-out


def test_structured_run_shows_its_diagram_intervals_and_flips(pair):
    """A tiny Kwon run (30% FLOPs removed) opened in the Prune views: the heads/FFN diagram from its structure
    record, the accuracy intervals, and its flips."""
    import torch

    from pruning_core.experiments.config import ExperimentConfig
    from pruning_core.experiments.experiment import run_experiment

    store = pair[0]
    cfg = ExperimentConfig.create(model="default", task="rotten_tomatoes", method="kwon", sparsity=0.3,
                                  pattern="structured", calib_size=8, seq_len=32, eval_size=32, seed=1,
                                  options={"rearrange_steps": 10})
    if not store.has(cfg.key()):
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            res = run_experiment(cfg)
        finally:
            torch.set_num_threads(before)
        store.save(res.to_json(), res.prune.masks)
    res = store.load(cfg.key())
    at = _open_in_prune_views(cfg.key())
    figs = _figures(at)
    title = next(t for t in figs if t.startswith("Where the model lost units"))
    heads = figs[title]["data"][0]
    s = res["structure"]
    assert len(heads["x"]) == sum(map(len, s["heads"]))
    assert heads["text"].count("×") == sum(map(len, s["heads"])) - sum(map(sum, s["heads"]))
    assert f"{sum(map(sum, s['heads']))} of {sum(map(len, s['heads']))} heads kept" in title
    lo, hi = res["accuracy_ci"]
    assert f"95% CI {lo:.3f}–{hi:.3f} (Wilson, 32 examples)" in [c.value for c in at.caption]
    assert "Dense model: true × predicted" in figs


def test_keys_from_points_maps_sweep_curve_clicks_to_runs():
    from dashboard import charts
    from dashboard.diff_link import keys_from_points

    runs = [{"key": f"k{m}{s}", "config": {"method": m, "pattern": "unstructured", "sparsity": s},
             "achieved_sparsity": s, "accuracy": 0.8 - s / 2, "dense_accuracy": 0.85}
            for m in ("wanda", "sparsegpt") for s in (0.3, 0.5)]
    curves = list(charts._by_label(runs).values())
    fig = charts.sweep_curves(runs, "accuracy", "t", "acc")
    assert [len(t.x) for t in fig.data] == [len(c) for c in curves]  # trace i draws curves[i], in order
    event = {"selection": {"points": [{"curve_number": 0, "point_index": 1}, {"curve_number": 1, "point_index": 0},
                                      {"curve_number": 7, "point_index": 0}]}}
    keys = keys_from_points(event, curves)
    assert keys == [curves[0][1]["key"], curves[1][0]["key"]]
    assert fig.data[0].x[1] == curves[0][1]["achieved_sparsity"]
    assert keys_from_points({"selection": {"points": []}}, curves) == [] and keys_from_points(None, curves) == []
