"""Robustness as small multiples: clean accuracy | accuracy under attack | attack success rate against sparsity,
one colour per method, the dense model as a reference line in each panel, every point with its 95% Wilson
interval (pruning_core.measure.intervals) as error bars."""

from __future__ import annotations

import math
from typing import Iterable

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.charts.common import DENSE_COLOR, method_colors
from pruning_core.measure.intervals import accuracy_interval, seed_spread

PANELS = (("clean_accuracy", "clean accuracy", "examples predicted correctly before any attack, over all examples"),
          ("accuracy_under_attack", "accuracy under attack",
           "examples still correct after the attack, over all examples"),
          ("attack_success_rate", "attack success rate", "(clean correct − still correct) / clean correct"))
ACCURACY_PANELS = ("clean_accuracy", "accuracy_under_attack")  # the panels a chance-level line belongs to
DODGE = 0.025  # horizontal offset between methods at one sparsity (the hover shows the requested sparsity)


def _trials(row: dict, measure: str) -> int | None:
    """How many examples a measure is a proportion of: all attacked examples for the accuracies, the clean
    correct ones for the success rate."""
    n = row.get("n") or row.get("examples")
    if not n:
        return None
    if measure == "attack_success_rate":
        clean = row.get("clean_accuracy")
        return None if clean is None else round(clean * n)
    return int(n)


def interval(row: dict, measure: str) -> tuple[float, float] | None:
    """The 95% interval of one row's `measure`: across seeds for a row of seed_means, else the Wilson interval
    of its sample (None where the measure or its sample is missing)."""
    if "seed_ci" in row:
        return row["seed_ci"].get(measure)
    return accuracy_interval(row.get(measure), _trials(row, measure))


def seed_means(rows: Iterable[dict]) -> list[dict]:
    """The rows of one (method, sparsity) at several attack seeds as one row: each measure the mean over seeds,
    its 95% t-interval (intervals.seed_spread) in `seed_ci`, `seeds` how many. A single row is kept as it is."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["method"], r["sparsity"]), []).append(r)
    out = []
    for group in groups.values():
        if len(group) == 1:
            out.append(group[0])
            continue
        row, ci = {**group[0], "seeds": len(group)}, {}
        for measure, _, _ in PANELS:
            m, lo, hi = seed_spread([r.get(measure) for r in group])
            row[measure] = None if math.isnan(m) else m
            ci[measure] = None if math.isnan(m) else (lo, hi)
        out.append({**row, "seed_ci": ci})
    return out


def _sample(row: dict) -> str:
    n = row.get("n") or row.get("examples")
    if row.get("seeds", 1) > 1:
        return f"mean of {row['seeds']} seeds of {n} examples, 95% t-interval"
    return f"Wilson 95%, {n} examples"


def _errors(rows: list[dict], measure: str) -> tuple[list, list, list]:
    ys, plus, minus = [], [], []
    for r in rows:
        y, ci = r.get(measure), interval(r, measure)
        ys.append(y)
        plus.append(None if ci is None or y is None else ci[1] - y)
        minus.append(None if ci is None or y is None else y - ci[0])
    return ys, plus, minus


def robustness_panels(rows: Iterable[dict], title: str = "Robustness vs sparsity") -> go.Figure:
    """Three panels side by side (clean accuracy, accuracy under attack, attack success rate) against requested
    sparsity. `rows`: attack summaries with method, sparsity, n and the three measures (None = undefined).
    Pruned models: one colour per method, a line through its sparsities; the dense model (method 'dense' or
    sparsity 0): a gray point at 0 and a dotted horizontal reference line across each panel. Error bars: 95%
    Wilson intervals; rows of several attack seeds at one (method, sparsity) are drawn as their mean with a 95%
    t-interval (seed_means). Axes are fixed (fractions 0-1, sparsity 0-1) so a sequence of grids compares by eye."""
    rows = seed_means(rows)
    dense = next((r for r in rows if r["method"] == "dense" or r["sparsity"] == 0), None)
    groups: dict[str, list[dict]] = {}
    for r in rows:
        if r is not dense and r["method"] != "dense" and r["sparsity"] != 0:
            groups.setdefault(r["method"], []).append(r)
    colors = method_colors([*groups, "dense"])
    fig = make_subplots(rows=1, cols=len(PANELS), shared_yaxes=True, horizontal_spacing=0.07,
                        subplot_titles=[label for _, label, _ in PANELS])
    for col, (measure, label, definition) in enumerate(PANELS, start=1):
        first = col == 1
        for i, (method, pts) in enumerate(sorted(groups.items())):
            pts = sorted(pts, key=lambda r: r["sparsity"])
            ys, plus, minus = _errors(pts, measure)
            shift = DODGE * (i - (len(groups) - 1) / 2)  # side by side, so error bars at one sparsity do not hide
            fig.add_scatter(x=[r["sparsity"] + shift for r in pts], y=ys, mode="lines+markers", name=method,
                            legendgroup=method, showlegend=first, line=dict(color=colors[method]),
                            marker=dict(color=colors[method], size=8),
                            error_y=dict(type="data", array=plus, arrayminus=minus, visible=True, thickness=1.5,
                                         width=5, color=colors[method]),
                            customdata=[[_sample(r), lo, hi, r["sparsity"]] for r, lo, hi in
                                        zip(pts, *_bounds(pts, measure))],
                            hovertemplate=f"{method}, sparsity %{{customdata[3]:.0%}}<br>{label} %{{y:.3f}} "
                                          "(95% interval %{customdata[1]:.2f}-%{customdata[2]:.2f})"
                                          f"<br>%{{customdata[0]}}<extra>{definition}</extra>",
                            row=1, col=col)
        if dense is not None and dense.get(measure) is not None:
            ys, plus, minus = _errors([dense], measure)
            lo, hi = _bounds([dense], measure)
            fig.add_scatter(x=[0.0], y=ys, mode="markers", name="dense", legendgroup="dense", showlegend=first,
                            marker=dict(color=DENSE_COLOR, size=9, symbol="diamond"),
                            error_y=dict(type="data", array=plus, arrayminus=minus, visible=True, thickness=1.5,
                                         width=5, color=DENSE_COLOR),
                            customdata=[[_sample(dense), lo[0], hi[0]]],
                            hovertemplate=f"dense model<br>{label} %{{y:.3f}} (95% interval "
                                          "%{customdata[1]:.2f}-%{customdata[2]:.2f})<br>%{customdata[0]}"
                                          f"<extra>{definition}</extra>", row=1, col=col)
            fig.add_hline(y=dense[measure], line_dash="dot", line_color=DENSE_COLOR, row=1, col=col,
                          annotation_text=f"dense {dense[measure]:.2f}", annotation_position="top right")
        fig.update_xaxes(title_text="sparsity", row=1, col=col)
    fig.update_xaxes(range=[-0.04, 1.0], tickformat=".0%", dtick=0.2)
    fig.update_yaxes(range=[0, 1.05])
    fig.update_yaxes(title_text="fraction of examples", row=1, col=1)
    fig.update_layout(title=title, legend_title="method", margin=dict(t=90, b=40), height=420,
                      meta={"accuracy_axes": ["y", "y2"]})
    return fig


def _bounds(rows: list[dict], measure: str) -> tuple[list, list]:
    cis = [interval(r, measure) for r in rows]
    return [None if c is None else c[0] for c in cis], [None if c is None else c[1] for c in cis]


def highlight_legend_html() -> str:
    """One line saying what the two highlight colours of an adversarial example mean."""
    from dashboard.charts.cards import HIGHLIGHT_ORIGINAL, HIGHLIGHT_PERTURBED, highlight_html

    return ('<div style="font-size:0.9em;color:#444">'
            f'{highlight_html("word", [[0, 4]], HIGHLIGHT_ORIGINAL)} a word the attack changed (original text) '
            f'&nbsp;·&nbsp; {highlight_html("w0rd", [[0, 4]], HIGHLIGHT_PERTURBED)} what it put there '
            "(perturbed text)</div>")
