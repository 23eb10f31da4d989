"""Masks and weights: downsampled keep-mask heatmap, exact zoom, keep profiles, histograms, toy views."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.charts.common import KEEP_SCALE, _array, _mask_array, method_colors
from dashboard.charts.common import tidy_builders


KEEP_HELP = "keep ratio = kept weights / weights in the cell (1 = all kept, 0 = all pruned)"
ZOOM_HELP = "one cell per weight: 1 = kept, 0 = pruned (set to zero)"
PROFILE_HELP = "keep ratio of a row (an output) or a column (an input): kept weights / weights in it"
HIST_HELP = "distribution of the weights; pruned weights (exact zeros) are left out of the 'after' histogram"
TOY_HELP = "output error ||WXᵀ - W'Xᵀ||² / ||WXᵀ||² of the pruned toy matrix on its inputs"
DEPTH_HELP = "cumulative error ||Y_dense - Y_pruned||² / ||Y_dense||² after each layer of the toy stack"


def downsample_mask(mask, max_cells: tuple[int, int] = (96, 192)) -> tuple[np.ndarray, int, int]:
    """Keep ratio averaged over tiles so the grid is at most `max_cells`; returns (grid, tile rows, tile cols)."""
    m = _mask_array(mask)
    rows, cols = m.shape
    tr, tc = max(1, math.ceil(rows / max_cells[0])), max(1, math.ceil(cols / max_cells[1]))
    if tr == 1 and tc == 1:
        return m, 1, 1
    gr, gc = math.ceil(rows / tr), math.ceil(cols / tc)
    padded = np.full((gr * tr, gc * tc), np.nan)
    padded[:rows, :cols] = m
    tiles = padded.reshape(gr, tr, gc, tc)
    return np.nanmean(tiles, axis=(1, 3)), tr, tc


def mask_heatmap(mask, max_cells: tuple[int, int] = (96, 192), title: str = "Keep-mask") -> go.Figure:
    """Heatmap of a keep-mask; large masks are shown as the keep ratio of tiles (at most `max_cells`)."""
    m = _mask_array(mask)
    rows, cols = m.shape
    grid, tr, tc = downsample_mask(m, max_cells)
    r0 = np.arange(grid.shape[0]) * tr
    c0 = np.arange(grid.shape[1]) * tc
    span = [[[f"{a}–{min(a + tr, rows) - 1}" if tr > 1 else str(a),
              f"{b}–{min(b + tc, cols) - 1}" if tc > 1 else str(b)] for b in c0] for a in r0]
    fig = go.Figure(go.Heatmap(z=grid, x=c0, y=r0, zmin=0, zmax=1, colorscale=KEEP_SCALE, customdata=span,
                               colorbar=dict(title="keep"),
                               hovertemplate="rows %{customdata[0]}, cols %{customdata[1]}<br>keep ratio %{z:.2f}"
                                             f"<extra>{KEEP_HELP}</extra>"))
    tiles = f" ({tr}×{tc} weights per cell)" if tr * tc > 1 else ""
    fig.update_layout(title=f"{title}: {rows}×{cols}, kept {m.mean():.1%}{tiles}", xaxis_title="input (column)",
                      yaxis_title="output (row)", margin=dict(t=50, b=30))
    fig.update_yaxes(autorange="reversed")
    return fig


def mask_zoom(mask, row0: int, col0: int, rows: int = 16, cols: int = 32, m: int | None = None,
              title: str = "Mask, zoomed") -> go.Figure:
    """Exact cells of a window of the mask; with `m`, vertical lines between groups of m columns (N:M)."""
    full = _mask_array(mask)
    r0 = int(min(max(row0, 0), max(full.shape[0] - 1, 0)))
    c0 = int(min(max(col0, 0), max(full.shape[1] - 1, 0)))
    win = full[r0:r0 + rows, c0:c0 + cols]
    xs, ys = np.arange(c0, c0 + win.shape[1]), np.arange(r0, r0 + win.shape[0])
    state = np.where(win > 0, "kept", "pruned")
    fig = go.Figure(go.Heatmap(z=win, x=xs, y=ys, zmin=0, zmax=1, colorscale=KEEP_SCALE, showscale=False,
                               xgap=1, ygap=1, customdata=state,
                               hovertemplate="row %{y}, col %{x}: %{customdata}"
                                             f"<extra>{ZOOM_HELP}</extra>"))
    if m:
        for c in range(c0, c0 + win.shape[1] + 1):
            if c % m == 0:
                fig.add_vline(x=c - 0.5, line=dict(color="#E45756", width=2))
    groups = f", groups of {m} columns" if m else ""
    fig.update_layout(title=f"{title}: rows {r0}–{r0 + win.shape[0] - 1}, cols {c0}–{c0 + win.shape[1] - 1}{groups}",
                      xaxis_title="input (column)", yaxis_title="output (row)", margin=dict(t=50, b=30))
    fig.update_yaxes(autorange="reversed")
    return fig


def keep_profiles(mask) -> go.Figure:
    """Keep ratio of every row (output) and every column (input) of a mask, one trace each."""
    m = _mask_array(mask)
    fig = make_subplots(rows=2, cols=1, subplot_titles=("per row (output)", "per column (input)"),
                        vertical_spacing=0.18)
    fig.add_scatter(x=np.arange(m.shape[0]), y=m.mean(axis=1), mode="lines", name="rows", row=1, col=1,
                    hovertemplate=f"row %{{x}}: keep %{{y:.2f}}<extra>{PROFILE_HELP}</extra>")
    fig.add_scatter(x=np.arange(m.shape[1]), y=m.mean(axis=0), mode="lines", name="columns", row=2, col=1,
                    hovertemplate=f"col %{{x}}: keep %{{y:.2f}}<extra>{PROFILE_HELP}</extra>")
    fig.update_yaxes(range=[0, 1.02], title_text="keep ratio")
    fig.update_layout(title="Keep ratio per row and per column", margin=dict(t=60, b=30))
    return fig


def weight_histogram(before, after, absolute: bool = True, bins: int = 60) -> go.Figure:
    """Histograms of the weights before and after pruning on shared bins (pre-binned, so large matrices
    stay small); the pruned weights' zeros are excluded from 'after' and counted in the title."""
    b = _array(before).astype(np.float64).ravel()
    a = _array(after).astype(np.float64).ravel()
    zeros = int((a == 0).sum())
    a = a[a != 0]
    if absolute:
        b, a = np.abs(b), np.abs(a)
    lo, hi = (float(b.min()), float(b.max())) if b.size else (0.0, 1.0)
    if a.size:
        lo, hi = min(lo, float(a.min())), max(hi, float(a.max()))
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    size = edges[1] - edges[0]
    centers = (edges[:-1] + edges[1:]) / 2
    label = "|w|" if absolute else "w"
    fig = go.Figure()
    for name, vals, color in (("before", b, "#9e9e9e"), ("after (non-zero)", a, "#1f4e79")):
        counts, _ = np.histogram(vals, edges)
        fig.add_histogram(x=centers, y=counts, histfunc="sum", name=name, marker_color=color, opacity=0.6,
                          xbins=dict(start=lo, end=hi, size=size),
                          hovertemplate=f"{label} %{{x:.3g}}: %{{y}} weights<extra>{HIST_HELP}</extra>")
    fig.update_layout(barmode="overlay", xaxis_title=label, yaxis_title="weights", yaxis_tickformat=",d", margin=dict(t=50, b=30),
                      title=f"Weights before and after pruning ({zeros:,} zeros after pruning, not shown)")
    return fig


def toy_masks(results: dict[str, dict]) -> go.Figure:
    """One mask heatmap per method (from toy.compare_methods), its output error in the subplot title."""
    names = list(results)
    titles = [f"{n}: output error {results[n]['output_error']:.3g}" for n in names]
    fig = make_subplots(rows=1, cols=max(len(names), 1), subplot_titles=titles or None, horizontal_spacing=0.04)
    for i, n in enumerate(names, start=1):
        m = _mask_array(results[n]["mask"])
        fig.add_heatmap(z=m, zmin=0, zmax=1, colorscale=KEEP_SCALE, showscale=False, xgap=1, ygap=1, name=n,
                        customdata=np.where(m > 0, "kept", "pruned"), row=1, col=i,
                        hovertemplate=f"{n}<br>row %{{y}}, col %{{x}}: %{{customdata}}<extra>{TOY_HELP}</extra>")
        fig.update_yaxes(autorange="reversed", showticklabels=i == 1, row=1, col=i)
    fig.update_layout(title="Same weights, same sparsity: which weights each method keeps",
                      margin=dict(t=70, b=30))
    return fig


def depth_chart(curves: dict[str, list[float]]) -> go.Figure:
    """Cumulative error after each layer of the toy stack, one line per method."""
    fig = go.Figure()
    for name, ys in curves.items():
        xs = ["input"] + [f"layer {i}" for i in range(1, len(ys))]
        fig.add_scatter(x=xs, y=list(ys), mode="lines+markers", name=name,
                        line=dict(color=method_colors([name]).get(name)),
                        hovertemplate=f"{name}, %{{x}}: %{{y:.4g}}<extra>{DEPTH_HELP}</extra>")
    fig.update_layout(title="Error accumulates with depth", yaxis_title="cumulative error", legend_title="method",
                      margin=dict(t=50, b=30))
    return fig


def stored_histogram(hist: dict, name: str = "") -> go.Figure:
    """Before/after |w| histogram from the pre-binned counts stored with a run."""
    edges = np.asarray(hist["edges"])
    centers = (edges[:-1] + edges[1:]) / 2
    fig = go.Figure()
    for label, key, color in (("before", "before", "#9e9e9e"), ("after (non-zero)", "after", "#1f4e79")):
        fig.add_bar(x=centers, y=hist[key], name=label, marker_color=color, opacity=0.6,
                    width=float(edges[1] - edges[0]),
                    hovertemplate=f"|w| %{{x:.3g}}: %{{y}} weights<extra>{HIST_HELP}</extra>")
    fig.update_layout(barmode="overlay", xaxis_title="|w|", yaxis_title="weights", yaxis_tickformat=",d", margin=dict(t=50, b=30),
                      title=f"{name} weights before and after ({hist['zeros_after']:,} zeros after, not shown)")
    return fig


tidy_builders(globals())  # every figure: wrapped titles, tooltips inside their box, 1e-15 ticks
