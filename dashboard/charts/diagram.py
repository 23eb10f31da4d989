"""Where the model lost weights (netron-like): the encoder drawn as a column per block, the embeddings at the
left, a box per module (Q, K, V, attention output, FFN in, FFN out) coloured by achieved sparsity or local
error; structured runs: a box per attention head (kept or removed) and one per FFN coloured by neurons kept."""

from __future__ import annotations

from typing import Iterable

import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from dashboard.charts.accessors import intermediate_size
from dashboard.charts.common import DENSE_COLOR
from dashboard.charts.common import tidy_builders
from pruning_core.model.arch import KIND_LABELS, KINDS

MEASURES = {"achieved_sparsity": "achieved sparsity", "local_error": "local error"}
SCALE = "OrRd"  # light = little lost, dark = much lost
KEPT_COLOR, REMOVED_COLOR = "#1f4e79", "#e6e6e6"
SHORT = {"q": "Q", "k": "K", "v": "V", "attn_out": "Out", "ffn_in": "FFN in", "ffn_out": "FFN out"}
DIAGRAM_HELP = ("one column per block, bottom to top in the order the data flows (Q, K, V, attention output, "
                "FFN in, FFN out); click a box to open it")


def colours(values: list[float], vmin: float, vmax: float) -> list[str]:
    """`values` on the diagram's sequential scale, `vmin` lightest and `vmax` darkest."""
    span = vmax - vmin if vmax > vmin else 1.0
    return sample_colorscale(SCALE, [min(max((v - vmin) / span, 0.0), 1.0) for v in values])


def _range(measure: str, values: list[float]) -> tuple[float, float]:
    return (0.0, 1.0) if measure == "achieved_sparsity" else (0.0, max(values, default=0.0) or 1.0)


def encoder_diagram(layers: Iterable[dict], measure: str = "achieved_sparsity") -> go.Figure:
    """One box per pruned module (trace 0, in the order of `layers`, so a clicked point's index is the module's
    position there), the embeddings as one grey box at the left (trace 1), a colour bar (trace 2)."""
    if measure not in MEASURES:
        raise ValueError(f"colour by one of {', '.join(MEASURES)}; got '{measure}'")
    layers = list(layers)
    values = [float(r[measure]) for r in layers]
    vmin, vmax = _range(measure, values)
    fills = colours(values, vmin, vmax)
    dark = [(v - vmin) / ((vmax - vmin) or 1.0) > 0.55 for v in values]
    rows = {k: i for i, k in enumerate(KINDS)}
    fig = go.Figure()
    fig.add_scatter(
        x=[r["block"] + 1 for r in layers], y=[rows.get(r["kind"], len(KINDS)) for r in layers],
        mode="markers+text", name="modules", text=[SHORT.get(r["kind"], r["kind"]) for r in layers],
        textfont=dict(size=10, color=["white" if d else "#222" for d in dark]),
        marker=dict(symbol="square", size=44, color=fills, line=dict(color="#555", width=1)),
        customdata=[[r["name"], KIND_LABELS.get(r["kind"], r["kind"]), r["achieved_sparsity"], r["local_error"],
                     r.get("cumulative_error", float("nan"))] for r in layers],
        hovertemplate="<b>%{customdata[0]}</b> (%{customdata[1]})<br>achieved sparsity %{customdata[2]:.3f}<br>"
                      "local error %{customdata[3]:.4g}<br>cumulative error at its block %{customdata[4]:.4g}"
                      "<extra>click to open its mask</extra>")
    fig.add_scatter(x=[0], y=[(len(KINDS) - 1) / 2], mode="markers+text", name="embeddings", text=["emb"],
                    marker=dict(symbol="square", size=60, color=DENSE_COLOR), textfont=dict(color="white"),
                    hovertemplate="embeddings: not pruned<extra></extra>")
    fig.add_scatter(x=[None], y=[None], mode="markers", showlegend=False, hoverinfo="skip",
                    marker=dict(colorscale=SCALE, cmin=vmin, cmax=vmax, color=[vmin], showscale=True,
                                colorbar=dict(title=MEASURES[measure], thickness=14)))
    blocks = sorted({r["block"] for r in layers})
    fig.update_xaxes(tickvals=[0] + [b + 1 for b in blocks], ticktext=["embeddings"] + [f"block {b}" for b in blocks],
                     range=[-0.7, (max(blocks) + 1.7) if blocks else 1], showgrid=False, zeroline=False)
    fig.update_yaxes(tickvals=list(range(len(KINDS))), ticktext=[KIND_LABELS[k] for k in KINDS],
                     range=[-0.7, len(KINDS) - 0.3], showgrid=False, zeroline=False)
    fig.update_layout(title=f"Where the model lost weights: {MEASURES[measure]} per module", showlegend=False,
                      height=420, margin=dict(t=50, b=30), clickmode="event+select", dragmode=False)
    return fig


def selected_module(event, layers: list[dict]) -> str | None:
    """The module name of the box clicked in `encoder_diagram` (the event `st.plotly_chart(on_select=...)`
    returns), or None when nothing (or the embeddings) is selected."""
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return None
    for p in points or []:
        if p.get("curve_number", 0) != 0:
            continue
        data = p.get("customdata")
        if data:
            return str(data[0])
        i = p.get("point_index", p.get("point_number"))
        if i is not None and 0 <= int(i) < len(layers):
            return layers[int(i)]["name"]
    return None


def structured_diagram(structure: dict) -> go.Figure:
    """A structured run's encoder: per layer a column of head boxes (kept dark, removed light with ×) and an FFN
    box coloured by the fraction of neurons kept; the embeddings box names the hidden width kept."""
    heads = structure["heads"]
    n_layers, n_heads = len(heads), len(heads[0]) if heads else 0
    kept = [float(n) for n in structure["neurons_kept"]]
    width = intermediate_size(structure)
    fig = go.Figure()
    xs, ys, fill, text, info = [], [], [], [], []
    for layer, row in enumerate(heads):
        for h, k in enumerate(row):
            xs.append(layer + 1)
            ys.append(h)
            fill.append(KEPT_COLOR if k else REMOVED_COLOR)
            text.append("" if k else "×")
            info.append(f"layer {layer}, head {h}: {'kept' if k else 'removed'}")
    fig.add_scatter(x=xs, y=ys, mode="markers+text", name="heads", text=text, marker=dict(
        symbol="square", size=18, color=fill, line=dict(color="#555", width=1)), textfont=dict(color="#c00"),
        customdata=info, hovertemplate="%{customdata}<extra></extra>")
    frac = [k / width if width else 0.0 for k in kept]
    fills = sample_colorscale("Blues", [0.1 + 0.9 * f for f in frac])
    fig.add_scatter(x=[i + 1 for i in range(n_layers)], y=[n_heads + 1.5] * n_layers, mode="markers+text",
                    name="FFN", text=[f"{f:.0%}" for f in frac], textfont=dict(size=10, color=[
                        "white" if f > 0.55 else "#222" for f in frac]),
                    marker=dict(symbol="square", size=40, color=fills, line=dict(color="#555", width=1)),
                    customdata=[[i, int(k), width] for i, k in enumerate(kept)],
                    hovertemplate="layer %{customdata[0]} FFN: %{customdata[1]:,} of %{customdata[2]:,} neurons "
                                  "kept<extra></extra>")
    hidden = f"{structure.get('hidden_kept', '?')}/{structure.get('hidden_size', '?')}"
    fig.add_scatter(x=[0], y=[(n_heads + 1.5) / 2], mode="markers+text", name="embeddings", text=["emb"],
                    marker=dict(symbol="square", size=60, color=DENSE_COLOR), textfont=dict(color="white"),
                    hovertemplate=f"embeddings: hidden channels kept {hidden}<extra></extra>")
    fig.update_xaxes(tickvals=list(range(n_layers + 1)),
                     ticktext=["embeddings"] + [f"layer {i}" for i in range(n_layers)], range=[-0.7, n_layers + 0.7],
                     showgrid=False, zeroline=False)
    fig.update_yaxes(tickvals=list(range(n_heads)) + [n_heads + 1.5],
                     ticktext=[f"head {h}" for h in range(n_heads)] + ["FFN neurons"], showgrid=False,
                     zeroline=False, range=[-0.8, n_heads + 2.6])
    n_kept = sum(map(sum, heads))
    fig.update_layout(title=f"Where the model lost units: {n_kept} of {n_layers * n_heads} heads kept, "
                            f"{int(sum(kept)):,} of {width * n_layers:,} FFN neurons, hidden {hidden}",
                      showlegend=False, height=260 + 24 * n_heads, margin=dict(t=50, b=30), dragmode=False)
    return fig


tidy_builders(globals())  # every figure: wrapped titles, tooltips inside their box, 1e-15 ticks
