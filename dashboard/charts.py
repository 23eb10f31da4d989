"""Plotly figure builders: pure functions of results (testable without Streamlit)."""

from __future__ import annotations

from typing import Iterable

import plotly.graph_objects as go

from pruning_core.arch import KIND_LABELS, KINDS

KIND_COLORS = {"q": "#4C78A8", "k": "#72B7B2", "v": "#54A24B", "attn_out": "#EECA3B",
               "ffn_in": "#F58518", "ffn_out": "#E45756"}

LOCAL_HELP = "local reconstruction error ||WX - W'X||² / ||WX||², X = inputs reaching the module in the pruned model"
CUM_HELP = "cumulative error ||Y_dense - Y_pruned||² / ||Y_dense||² at the block output: all error added up to there"


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
    return fig


def cumulative_error_line(blocks: Iterable[dict]) -> go.Figure:
    """Cumulative error at each block output, with the dense model's 0 as the baseline."""
    blocks = list(blocks)
    fig = go.Figure()
    fig.add_scatter(x=["embeddings"] + [f"block {b['block']}" for b in blocks],
                    y=[0.0] + [b["cumulative_error"] for b in blocks], mode="lines+markers", name="pruned",
                    hovertemplate=f"%{{x}}: %{{y:.4g}}<extra>{CUM_HELP}</extra>")
    fig.add_scatter(x=["embeddings"] + [f"block {b['block']}" for b in blocks], y=[0.0] * (len(blocks) + 1),
                    mode="lines", name="dense (0)", line=dict(dash="dot", color="gray"), hoverinfo="skip")
    fig.update_layout(title="Cumulative error across depth", yaxis_title="cumulative error", margin=dict(t=50, b=30))
    return fig
