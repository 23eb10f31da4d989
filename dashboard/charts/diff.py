"""Run against run: two runs' errors overlaid, their accuracy deltas with intervals, a keep-mask difference."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from dashboard.charts.common import tidy_builders

from dashboard.charts.errors import CUM_HELP, HELDOUT_HELP, LOCAL_HELP
from pruning_core.model.arch import KIND_LABELS

A_COLOR, B_COLOR = "#4C78A8", "#F58518"
# mask difference: per weight, kept by neither / A only / B only / both (pruning_core.storage.diff codes 0..3)
DIFF_COLORS = ("#f2f2f2", A_COLOR, B_COLOR, "#3b3b3b")
DIFF_NAMES = ("pruned by both", "kept by A only", "kept by B only", "kept by both")
DIFF_HELP = ("each cell mixes the colours of its weights: dark = kept by both, blue = A only, orange = B only, "
             "light = neither")


def _module_label(row: dict) -> str:
    return f"{row['block']}·{KIND_LABELS.get(row['kind'], row['kind'])}"


def local_error_pair(modules: list[dict], label_a: str = "A", label_b: str = "B") -> go.Figure:
    """Local error per module of both runs: two bar traces over the same modules (block·kind)."""
    xs = [_module_label(r) for r in modules]
    fig = go.Figure()
    for side, label, color in (("a", label_a, A_COLOR), ("b", label_b, B_COLOR)):
        fig.add_bar(x=xs, y=[r[f"{side}_local"] for r in modules], name=label, marker_color=color,
                    customdata=[[r["name"], r[f"{side}_sparsity"]] for r in modules],
                    hovertemplate=f"{side.upper()}: %{{customdata[0]}}<br>local error %{{y:.4g}}<br>"
                                  f"sparsity %{{customdata[1]:.3f}}<extra>{LOCAL_HELP}</extra>")
    fig.update_layout(barmode="group", title="Local error per module, A and B", yaxis_title="local error",
                      xaxis_title="block · module", legend=dict(orientation="h", y=-0.3), margin=dict(t=50, b=30))
    return fig


def cumulative_pair(blocks: list[dict], label_a: str = "A", label_b: str = "B") -> go.Figure:
    """Cumulative error across depth of both runs, calibration (solid) and held-out (dashed): up to 4 lines,
    each starting at the embeddings' 0."""
    xs = ["embeddings"] + [f"block {r['block']}" for r in blocks]
    fig = go.Figure()
    for side, label, color in (("a", label_a, A_COLOR), ("b", label_b, B_COLOR)):
        calib = [r[f"{side}_calib"] for r in blocks]
        fig.add_scatter(x=xs, y=[0.0] + calib, mode="lines+markers", name=f"{label}: calibration",
                        line=dict(color=color), hovertemplate=f"%{{x}}: %{{y:.4g}}<extra>{CUM_HELP}</extra>")
        held = [r[f"{side}_heldout"] for r in blocks]
        if any(h is not None for h in held):
            fig.add_scatter(x=xs, y=[0.0] + held, mode="lines+markers", name=f"{label}: held-out",
                            line=dict(color=color, dash="dash"), marker=dict(symbol="diamond"),
                            hovertemplate=f"%{{x}}: %{{y:.4g}} held-out<extra>{HELDOUT_HELP}</extra>")
    fig.update_layout(title="Cumulative error across depth, A and B", yaxis_title="cumulative error",
                      legend=dict(orientation="h", y=-0.2), margin=dict(t=50, b=30))
    return fig


MEASURE_LABELS = {"accuracy": "pruned accuracy", "dense_accuracy": "dense accuracy",
                  "clean_accuracy": "clean accuracy", "accuracy_under_attack": "accuracy under attack",
                  "attack_success_rate": "attack success rate"}


def deltas_figure(deltas: list, title: str, label_a: str = "A", label_b: str = "B") -> go.Figure:
    """A and B of each measure (a row each) as dots with their 95% intervals as error bars
    (`deltas`: pruning_core.storage.diff.Delta)."""
    fig = go.Figure()
    ys = [MEASURE_LABELS.get(d.measure, d.measure) for d in deltas]
    for side, label, color, offset in (("a", label_a, A_COLOR, 0), ("b", label_b, B_COLOR, 1)):
        xs, lo, hi, text = [], [], [], []
        for d in deltas:
            v, ci = getattr(d, side), getattr(d, f"{side}_ci")
            xs.append(v)
            lo.append(v - ci[0] if v is not None and ci else 0)
            hi.append(ci[1] - v if v is not None and ci else 0)
            text.append(f"95% CI {ci[0]:.3f}–{ci[1]:.3f}" if ci else "no interval")
        fig.add_scatter(x=xs, y=ys, mode="markers", name=label, marker=dict(color=color, size=11),
                        error_x=dict(type="data", symmetric=False, array=hi, arrayminus=lo, thickness=2),
                        customdata=text, offsetgroup=str(offset),
                        hovertemplate=f"{side.upper()}: %{{y}} %{{x:.3f}}<br>%{{customdata}}<extra></extra>")
    fig.update_layout(title=title, xaxis_title="value (dot) and 95% interval (bar)", scattermode="group",
                      legend=dict(orientation="h", y=-0.35), margin=dict(t=50, b=30, l=10),
                      height=140 + 60 * len(deltas))
    fig.update_xaxes(range=[-0.02, 1.02])
    return fig


def mask_diff_image(codes: np.ndarray, max_cells: tuple[int, int] = (96, 192), title: str = "Mask difference"
                    ) -> go.Figure:
    """The weight-by-weight difference of two keep-masks (codes 0..3: neither / A only / B only / both) as an
    image; a large mask is shown in tiles whose colour mixes the colours of their weights."""
    codes = np.asarray(codes)
    rows, cols = codes.shape
    tr, tc = max(1, math.ceil(rows / max_cells[0])), max(1, math.ceil(cols / max_cells[1]))
    gr, gc = math.ceil(rows / tr), math.ceil(cols / tc)
    frac = np.zeros((gr, gc, 4))
    for code in range(4):
        padded = np.zeros((gr * tr, gc * tc))
        padded[:rows, :cols] = codes == code
        frac[..., code] = padded.reshape(gr, tr, gc, tc).sum(axis=(1, 3))
    frac /= np.maximum(frac.sum(-1, keepdims=True), 1)
    palette = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in DIFF_COLORS], dtype=np.float64)
    rgb = np.rint(frac @ palette).astype(np.uint8)
    share = np.rint(frac * 100).astype(int)
    hover = [[f"rows {a * tr}–{min(a * tr + tr, rows) - 1}, cols {b * tc}–{min(b * tc + tc, cols) - 1}<br>"
              + "<br>".join(f"{DIFF_NAMES[k]}: {share[a, b, k]}%" for k in (3, 1, 2, 0))
              for b in range(gc)] for a in range(gr)]
    fig = go.Figure(go.Image(z=rgb, x0=0, dx=tc, y0=0, dy=tr, hovertext=hover,
                             hovertemplate=f"%{{hovertext}}<extra>{DIFF_HELP}</extra>"))
    tiles = f" ({tr}×{tc} weights per cell)" if tr * tc > 1 else ""
    fig.update_layout(title=f"{title}: {rows}×{cols}{tiles}", xaxis_title="input (column)",
                      yaxis_title="output (row)", margin=dict(t=50, b=30))
    return fig


tidy_builders(globals())  # every figure: wrapped titles, tooltips inside their box, 1e-15 ticks
