"""Structured runs: FLOPs removed, layer x head keep grid, FFN-neuron map, hidden-channel strip, training loss."""

from __future__ import annotations

from typing import Iterable

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.charts.accessors import intermediate_size
from dashboard.charts.common import CALIB_COLOR, HELDOUT_COLOR, KIND_COLORS, _array, _keep_grid, _mask_array
from dashboard.charts.common import tidy_builders


HEAD_HELP = "an attention head of the layer: kept (its Q/K/V/output slices stay) or pruned (removed from the model)"
NEURON_HELP = "an FFN neuron (a row of the FFN input and a column of the FFN output projection): kept or removed"
HIDDEN_HELP = ("a hidden channel: one coordinate of the residual stream, removed from every layer at once "
               "(embeddings, attention, FFN, LayerNorms)")
STEP_LOSS_HELP = "training loss of the step's batch: task cross-entropy + identity loss of the adapters"


def head_grid(structure: dict) -> go.Figure:
    """Layer x head keep grid of a structured run (1 = kept, 0 = pruned), from the stored `structure.heads`."""
    z = np.asarray(structure["heads"], dtype=np.float64)
    fig = _keep_grid(z, [f"layer {i}" for i in range(z.shape[0])],
                     f"Attention heads kept: {int(z.sum())} of {z.size}", "head", HEAD_HELP, gaps=True)
    fig.update_xaxes(dtick=1)
    return fig


def neuron_map(mask) -> go.Figure:
    """Layer x FFN-neuron keep map from the stored `structure.neurons` mask [layers, neurons]."""
    z = _mask_array(mask)
    fig = _keep_grid(z, [f"layer {i}" for i in range(z.shape[0])],
                     f"FFN neurons kept: {int(z.sum()):,} of {z.size:,} (layers × neurons)", "neuron", NEURON_HELP,
                     gaps=False)
    fig.update_layout(height=120 + 32 * z.shape[0])
    return fig


def hidden_strip(mask) -> go.Figure:
    """The 1 x hidden keep strip of the hidden channels (PAT), from `structure.hidden` ([1, hidden] or [hidden])."""
    z = _array(mask).astype(np.float64).reshape(1, -1)
    fig = _keep_grid(z, ["hidden"], f"Hidden channels kept: {int(z.sum())} of {z.size}", "channel", HIDDEN_HELP,
                     gaps=False)
    fig.update_layout(height=220)
    fig.update_yaxes(showticklabels=False)
    return fig


def kept_per_layer_bars(structure: dict) -> go.Figure:
    """Fraction of attention heads and of FFN neurons kept in each layer (counts in the hover)."""
    heads = np.asarray(structure["heads"], dtype=np.float64)
    width = intermediate_size(structure)
    xs = [f"layer {i}" for i in range(heads.shape[0])]
    fig = go.Figure()
    fig.add_bar(x=xs, y=heads.mean(1), name="attention heads", marker_color=KIND_COLORS["q"],
                customdata=np.stack([heads.sum(1), np.full(len(xs), heads.shape[1])], 1),
                hovertemplate="%{x}: %{customdata[0]:.0f} of %{customdata[1]:.0f} heads kept<extra></extra>")
    kept = np.asarray(structure["neurons_kept"], dtype=np.float64)
    fig.add_bar(x=xs, y=kept / width, name="FFN neurons", marker_color=KIND_COLORS["ffn_in"],
                customdata=np.stack([kept, np.full(len(xs), width)], 1),
                hovertemplate="%{x}: %{customdata[0]:,.0f} of %{customdata[1]:,.0f} neurons kept<extra></extra>")
    fig.update_layout(barmode="group", title="Kept per layer", yaxis_title="fraction kept", legend_title="unit",
                      margin=dict(t=50, b=30))
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%")
    return fig


def training_loss_line(rows: Iterable[dict], title: str = "Training loss per step") -> go.Figure:
    """Loss against step from rows with `step` and `loss` (PAT's StepRecords or its stored log); where the rows
    carry `channels_at_zero`, that count on a second axis."""
    rows = [r for r in rows if r.get("step") is not None and r.get("loss") is not None]
    zeros = [r.get("channels_at_zero") for r in rows]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_scatter(x=[r["step"] for r in rows], y=[r["loss"] for r in rows], mode="lines+markers", name="loss",
                    line=dict(color=CALIB_COLOR),
                    hovertemplate=f"step %{{x}}: loss %{{y:.4g}}<extra>{STEP_LOSS_HELP}</extra>")
    if rows and all(z is not None for z in zeros):
        fig.add_scatter(x=[r["step"] for r in rows], y=zeros, mode="lines", name="channels at 0",
                        line=dict(color=HELDOUT_COLOR, dash="dot"), secondary_y=True,
                        hovertemplate="step %{x}: %{y} channels with mask 0<extra></extra>")
        fig.update_yaxes(title_text="channels at 0", secondary_y=True, rangemode="tozero", tickformat="d",
                         showgrid=False)
    fig.update_layout(title=title, xaxis_title="step", margin=dict(t=50, b=30))
    fig.update_yaxes(title_text="loss", secondary_y=False)
    return fig


tidy_builders(globals())  # every figure: wrapped titles, tooltips inside their box, 1e-15 ticks
