"""Per-module local error, cumulative error across depth, and reconstruction training loss."""

from __future__ import annotations

from typing import Iterable

import plotly.graph_objects as go

from pruning_core.model.arch import KIND_LABELS, KINDS
from dashboard.charts.common import CALIB_COLOR, HELDOUT_COLOR, KIND_COLORS, _sequential
from dashboard.charts.common import tidy_builders


LOCAL_HELP = "local reconstruction error ||WX - W'X||² / ||WX||², X = inputs reaching the module in the pruned model"
CUM_HELP = "cumulative error ||Y_dense - Y_pruned||² / ||Y_dense||² at the block output: all error added up to there"
HELDOUT_HELP = ("held-out error: the same cumulative error on a held-out set of the same size from the validation "
                "split, never used to choose masks or fit weights; a gap to calibration = overfitting")
LOSS_HELP = "mean squared error of the trained block(s) to the reconstruction target over calibration tokens"


def local_error_bars(layers: Iterable[dict]) -> go.Figure:
    """Bars of local reconstruction error per module, one trace per module kind."""
    layers = list(layers)
    fig = go.Figure()
    for kind in KINDS:
        rows = [r for r in layers if r["kind"] == kind]
        if not rows:
            continue
        fig.add_bar(x=[f"block {r['block']}" for r in rows], y=[r["local_error"] for r in rows],
                    name=KIND_LABELS[kind], marker_color=KIND_COLORS[kind],
                    customdata=[[r["name"], r["achieved_sparsity"]] for r in rows],
                    hovertemplate="%{customdata[0]}<br>local error %{y:.4g}<br>sparsity %{customdata[1]:.3f}"
                                  f"<extra>{LOCAL_HELP}</extra>")
    fig.update_layout(barmode="group", title="Local reconstruction error per module", yaxis_title="local error",
                      legend_title="module", margin=dict(t=50, b=30))
    if layers and not any(r["local_error"] for r in layers):  # nothing removed: a zero axis, not -1..1
        fig.update_yaxes(range=[0, 1])
    return fig


def cumulative_error_line(blocks: Iterable[dict]) -> go.Figure:
    """Cumulative error at each block output, with the dense model's 0 as the baseline; where the blocks
    carry `heldout_error` (runs that measured it), the same error on the held-out set as a third line."""
    blocks = list(blocks)
    xs = ["embeddings"] + [f"block {b['block']}" for b in blocks]
    held = [b.get("heldout_error") for b in blocks]
    has_held = any(h is not None for h in held)
    fig = go.Figure()
    fig.add_scatter(x=xs, y=[0.0] + [b["cumulative_error"] for b in blocks], mode="lines+markers",
                    name="pruned: calibration" if has_held else "pruned", line=dict(color=CALIB_COLOR),
                    hovertemplate=f"%{{x}}: %{{y:.4g}}<extra>{CUM_HELP}</extra>")
    fig.add_scatter(x=xs, y=[0.0] * (len(blocks) + 1),
                    mode="lines", name="dense (0)", line=dict(dash="dot", color="gray"), hoverinfo="skip")
    if has_held:
        fig.add_scatter(x=xs, y=[0.0] + held, mode="lines+markers", name="pruned: held-out",
                        line=dict(color=HELDOUT_COLOR, dash="dash"), marker=dict(symbol="diamond"),
                        hovertemplate=f"%{{x}}: %{{y:.4g}} held-out<extra>{HELDOUT_HELP}</extra>")
    fig.update_layout(title="Cumulative error across depth", yaxis_title="cumulative error", margin=dict(t=50, b=30))
    return fig


def has_refine_loss(blocks: Iterable[dict]) -> bool:
    """Whether any block of a run carries a reconstruction training loss."""
    return any(b.get("refine_loss") for b in blocks)


def refine_loss_lines(blocks: Iterable[dict], window: int = 1) -> go.Figure:
    """Training loss of the reconstruction stage per epoch, one line per trained window of `window` blocks
    (its loss is stored with the window's last block: 'block 3', or 'blocks 2–3' for cross-block pairs);
    log y axis."""
    fig = go.Figure()
    trained = [b for b in blocks if b.get("refine_loss")]
    colors = _sequential(len(trained))
    for b, color in zip(trained, colors):
        loss = list(b["refine_loss"])
        last = b["block"]
        name = f"blocks {max(last - window + 1, 0)}–{last}" if window > 1 and last > 0 else f"block {last}"
        fig.add_scatter(x=list(range(1, len(loss) + 1)), y=loss, mode="lines+markers", name=name,
                        line=dict(color=color),
                        hovertemplate=f"{name}, epoch %{{x}}: loss %{{y:.4g}}<extra>{LOSS_HELP}</extra>")
    fig.update_layout(title="Reconstruction training loss per epoch", xaxis_title="epoch",
                      yaxis_title="training loss (MSE)", legend_title="block", margin=dict(t=50, b=30))
    fig.update_xaxes(tickformat="d", dtick=1 if max((len(b["refine_loss"]) for b in trained), default=1) <= 12
                     else None)
    fig.update_yaxes(type="log")
    return fig


tidy_builders(globals())  # every figure: wrapped titles, tooltips inside their box, 1e-15 ticks
