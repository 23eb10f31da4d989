"""The teaching toys (dashboard.toy), the mask/weight chart builders, and the Learn page in AppTest."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from dashboard import charts
from pruning_core import PrunescopeError
from pruning_core.prune import masks
from dashboard import toy

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")


# ---- toy.py ------------------------------------------------------------------------------------------

def test_toy_problem_shapes_and_outliers():
    w, x = toy.toy_problem()
    assert w.shape == (16, 32) and x.shape == (256, 32)
    assert w.dtype == torch.float32 and x.dtype == torch.float32
    norms = x.norm(dim=0).sort(descending=True).values
    assert norms[0] > 5 * norms[len(norms) // 2]  # a few features are much larger: outliers
    w2, x2 = toy.toy_problem()
    assert torch.equal(w, w2) and torch.equal(x, x2)  # seeded
    _, flat = toy.toy_problem(outliers=False)
    fnorms = flat.norm(dim=0).sort(descending=True).values
    assert fnorms[0] < 3 * fnorms[len(fnorms) // 2]


@pytest.mark.parametrize("sparsity", [0.3, 0.5, 0.7])
def test_compare_methods_reach_sparsity(sparsity):
    w, x = toy.toy_problem()
    res = toy.compare_methods(w, x, sparsity)
    assert set(res) == {"magnitude", "wanda", "sparsegpt"}
    for name, r in res.items():
        assert r["mask"].dtype == torch.bool and r["mask"].shape == w.shape
        assert abs((1 - r["mask"].float().mean().item()) - sparsity) < 0.02, name
        assert torch.all(r["weight"][~r["mask"]] == 0), name
        assert r["output_error"] > 0
    assert torch.equal(res["magnitude"]["weight"], w * res["magnitude"]["mask"])  # magnitude: no update


@pytest.mark.parametrize("pattern", ["2:4", "4:8"])
def test_compare_methods_nm(pattern):
    w, x = toy.toy_problem()
    pat = masks.parse_pattern(pattern)
    for sparsity in (None, 0.5):
        res = toy.compare_methods(w, x, sparsity, pattern)
        for name, r in res.items():
            assert masks.is_nm(r["weight"], pat), name
            groups = r["mask"].reshape(w.shape[0], -1, pat.m).sum(-1)
            assert torch.all(groups == pat.n), name
    with pytest.raises(PrunescopeError):
        toy.compare_methods(w, x, 0.7, pattern)


def test_methods_disagree_and_sparsegpt_is_best_at_half():
    w, x = toy.toy_problem()
    res = toy.compare_methods(w, x, 0.5)
    err = {k: v["output_error"] for k, v in res.items()}
    assert err["sparsegpt"] <= err["wanda"] <= err["magnitude"]
    assert err["sparsegpt"] <= err["magnitude"]
    assert (res["magnitude"]["mask"] != res["wanda"]["mask"]).sum() > 20  # visibly different masks
    assert (res["wanda"]["mask"] != res["sparsegpt"]["mask"]).sum() > 5


def test_compare_methods_matches_local_error():
    from pruning_core.measure import metrics

    w, x = toy.toy_problem(seed=3)
    r = toy.compare_methods(w, x, 0.5)["wanda"]
    y, y2 = x @ w.T, x @ r["weight"].T
    direct = float((y - y2).double().pow(2).sum() / y.double().pow(2).sum())
    assert r["output_error"] == pytest.approx(direct, rel=1e-3)
    assert r["output_error"] == pytest.approx(metrics.local_error(w, r["weight"], x.T @ x))


def test_compare_methods_bad_input():
    w, x = toy.toy_problem()
    with pytest.raises(PrunescopeError):
        toy.compare_methods(w, x[:, :8], 0.5)
    with pytest.raises(PrunescopeError):
        toy.compare_methods(w, x, 1.2)
    with pytest.raises(PrunescopeError):
        toy.compare_methods(w, x, 0.5, "3:2")


def test_pattern_examples():
    w, _ = toy.toy_problem()
    ex = toy.pattern_examples(w, 0.5)
    assert list(ex) == ["unstructured", "2:4", "structured (rows)"]
    assert all(m.shape == w.shape and m.dtype == torch.bool for m in ex.values())
    assert masks.is_nm(w * ex["2:4"], masks.parse_pattern("2:4"))
    rows = ex["structured (rows)"]
    assert set(rows.all(1).tolist()) | set((~rows).all(1).tolist()) == {True, False}  # whole rows
    assert int(rows.all(1).sum()) == w.shape[0] // 2


@pytest.mark.parametrize("method", toy.TOY_METHODS)
def test_depth_accumulation_grows(method):
    curve = toy.depth_accumulation(sparsity=0.5, method=method)
    assert len(curve) == 9 and curve[0] == 0.0
    assert all(isinstance(v, float) for v in curve)
    assert curve[-1] > 0 and curve[-1] > 2 * curve[1]
    for prev, nxt in zip(curve[1:], curve[2:]):
        assert nxt >= 0.8 * prev  # non-decreasing, up to small wiggles


@pytest.mark.parametrize("method", toy.TOY_METHODS)
def test_depth_accumulation_zero_at_zero_sparsity(method):
    assert toy.depth_accumulation(depth=4, sparsity=0.0, method=method) == [0.0] * 5


def test_depth_accumulation_orders_methods_and_validates():
    curves = {m: toy.depth_accumulation(sparsity=0.5, method=m) for m in toy.TOY_METHODS}
    assert curves["sparsegpt"][-1] < curves["magnitude"][-1]
    with pytest.raises(PrunescopeError):
        toy.depth_accumulation(method="nope")
    with pytest.raises(PrunescopeError):
        toy.depth_accumulation(depth=0)


# ---- chart builders ----------------------------------------------------------------------------------

def _random_mask(rows, cols, keep=0.5, seed=0):
    return torch.rand(rows, cols, generator=torch.Generator().manual_seed(seed)) < keep


def _has_hover(fig):
    """Every trace's tooltip explains what it shows (inside the box: charts.common.tidy moves it there)."""
    note = "<span style='font-size:11px'>"
    return all(t.hovertemplate and note in t.hovertemplate and len(t.hovertemplate.split(note)[1]) > 10
               for t in fig.data)


def test_mask_heatmap_small_is_exact():
    mask = _random_mask(16, 32)
    fig = charts.mask_heatmap(mask)
    assert len(fig.data) == 1 and fig.data[0].type == "heatmap"
    assert np.array_equal(np.asarray(fig.data[0].z), mask.numpy().astype(float))
    assert _has_hover(fig)


def test_mask_heatmap_downsamples_large():
    mask = _random_mask(384, 1536, keep=0.3)
    mask[:4, :8] = True  # one full tile
    fig = charts.mask_heatmap(mask, max_cells=(96, 192))
    z = np.asarray(fig.data[0].z)
    assert z.shape[0] <= 96 and z.shape[1] <= 192
    assert z[0, 0] == 1.0
    assert z.mean() == pytest.approx(mask.float().mean().item(), abs=1e-6)  # tiles are equal here
    assert np.all((z >= 0) & (z <= 1))
    odd = charts.mask_heatmap(_random_mask(100, 250), max_cells=(30, 40))
    assert np.asarray(odd.data[0].z).shape[0] <= 30 and np.asarray(odd.data[0].z).shape[1] <= 40
    assert not np.isnan(np.asarray(odd.data[0].z)).any()


def test_mask_zoom_exact_and_groups():
    mask = _random_mask(64, 128)
    fig = charts.mask_zoom(mask, 8, 16, rows=16, cols=32, m=4)
    assert len(fig.data) == 1
    assert np.array_equal(np.asarray(fig.data[0].z), mask[8:24, 16:48].numpy().astype(float))
    assert list(fig.data[0].x) == list(range(16, 48)) and list(fig.data[0].y) == list(range(8, 24))
    assert len(fig.layout.shapes) == 32 // 4 + 1  # group boundaries, both edges included
    assert len(charts.mask_zoom(mask, 8, 16).layout.shapes) == 0
    edge = charts.mask_zoom(mask, 60, 120)  # clipped at the border
    assert np.asarray(edge.data[0].z).shape == (4, 8)
    assert _has_hover(fig)


def test_keep_profiles():
    mask = torch.zeros(8, 12, dtype=torch.bool)
    mask[:4] = True
    fig = charts.keep_profiles(mask)
    assert len(fig.data) == 2
    assert list(fig.data[0].y) == [1.0] * 4 + [0.0] * 4
    assert list(fig.data[1].y) == [0.5] * 12
    assert _has_hover(fig)


def test_weight_histogram():
    w, _ = toy.toy_problem()
    mask = _random_mask(*w.shape)
    fig = charts.weight_histogram(w, w * mask)
    assert len(fig.data) == 2 and all(t.type == "histogram" for t in fig.data)
    assert sum(fig.data[0].y) == w.numel()
    assert sum(fig.data[1].y) == int(mask.sum())
    assert f"{int((~mask).sum()):,} zeros" in fig.layout.title.text.replace("<br>", " ")
    assert min(fig.data[0].x) >= 0  # |w| by default
    signed = charts.weight_histogram(w, w * mask, absolute=False)
    assert min(signed.data[0].x) < 0
    assert _has_hover(fig)


def test_toy_masks_and_depth_chart():
    w, x = toy.toy_problem()
    res = toy.compare_methods(w, x, 0.5)
    fig = charts.toy_masks(res)
    assert len(fig.data) == 3 and all(t.type == "heatmap" for t in fig.data)
    titles = [a.text for a in fig.layout.annotations]
    for name, r in res.items():
        assert any(name in t and f"{r['output_error']:.3g}" in t for t in titles)
    assert _has_hover(fig)
    curves = {"magnitude": [0.0, 0.1, 0.2], "wanda": [0.0, 0.05, 0.1]}
    depth = charts.depth_chart(curves)
    assert len(depth.data) == 2 and list(depth.data[1].y) == [0.0, 0.05, 0.1]
    assert list(depth.data[0].x) == ["input", "layer 1", "layer 2"]
    assert _has_hover(depth)


# ---- the page ----------------------------------------------------------------------------------------

def test_learn_page_runs():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("learn_page.py")
    at.run()
    assert not at.exception, at.exception
    assert not at.error
    assert len(at.get("plotly_chart")) == 7
    at.slider(key="toy_sparsity").set_value(0.7)
    at.slider(key="depth_sparsity").set_value(0.3)
    t = time.perf_counter()
    at.run()
    assert time.perf_counter() - t < 10  # generous (shared CPU); unloaded, a rerun takes well under 1 s
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 7
    at.selectbox(key="toy_pattern").set_value("2:4")
    at.run()
    assert not at.exception, at.exception
    assert not at.error
    assert at.slider(key="toy_sparsity").disabled
    assert len(at.get("plotly_chart")) == 7
