"""Curves over a grid of runs: a measure vs sparsity or FLOPs removed, held-out error, prune time, robustness."""

from __future__ import annotations

from typing import Iterable

import numpy as np
import plotly.graph_objects as go

from dashboard.charts.accessors import FLOPS_HELP, _flops_value, flops_reduction, is_structured, run_heldout_error
from dashboard.charts.common import PATTERN_SYMBOLS, method_colors
from dashboard.charts.common import tidy_builders
from dashboard.charts.errors import CUM_HELP, HELDOUT_HELP
from pruning_core.measure.intervals import accuracy_interval, seed_spread


def _run_label(config: dict) -> str:
    return config["method"] if config["pattern"] == "unstructured" else f"{config['method']} {config['pattern']}"


def _by_label(results: Iterable[dict]) -> dict[str, list[dict]]:
    """Runs grouped by 'method' / 'method pattern', each group sorted by requested sparsity."""
    groups: dict[str, list[dict]] = {}
    for r in results:
        groups.setdefault(_run_label(r["config"]), []).append(r)
    return {k: sorted(v, key=lambda r: r["config"]["sparsity"]) for k, v in sorted(groups.items())}


def _style(rows: list[dict], colors: dict) -> tuple[bool, str, str]:
    """(is N:M, colour of the method, marker symbol of the pattern) of a group of runs."""
    c = rows[0]["config"]
    return c["pattern"] != "unstructured", colors[c["method"]], PATTERN_SYMBOLS.get(c["pattern"], "triangle-up")


def _measure_value(r: dict, measure: str) -> float | None:
    if measure == "final_cumulative_error":
        return r["blocks"][-1]["cumulative_error"]
    if measure == "mean_local_error":
        return float(np.mean([layer["local_error"] for layer in r["layers"]]))
    return r.get(measure)


def point_runs(results: Iterable[dict]) -> dict[str, list[list[dict]]]:
    """Per (method, pattern) label, its points in sparsity order, each the runs of one requested sparsity
    (one per seed, in seed order): the point sweep_curves draws from them."""
    out = {}
    for label, rows in _by_label(results).items():
        by_s: dict[float, list[dict]] = {}
        for r in rows:
            by_s.setdefault(r["config"]["sparsity"], []).append(r)
        out[label] = [sorted(v, key=lambda r: r["config"].get("seed", 0)) for _, v in sorted(by_s.items())]
    return out


def seed_point(runs: list[dict], measure: str) -> dict:
    """One point of a curve from the runs of its seeds: x = mean achieved sparsity; with several seeds y = the
    mean over seeds and (lo, hi) its 95% Student-t interval (intervals.seed_spread); with one seed y = the
    run's value and, for accuracy, (lo, hi) its 95% Wilson interval over the evaluated examples (else none)."""
    values = [_measure_value(r, measure) for r in runs]
    x = float(np.mean([r["achieved_sparsity"] for r in runs]))
    n = runs[0].get("eval_examples")
    if len(runs) > 1:
        y, lo, hi = seed_spread(values)
        how = f"mean of {len(runs)} seeds, 95% t-interval"
    else:
        y, lo, hi, how = values[0], None, None, ""
        if measure == "accuracy":
            ci = runs[0].get("accuracy_ci") or accuracy_interval(y, n)
            if ci is not None:
                lo, hi = ci
                how = f"Wilson 95%, {n} examples"
    return {"x": x, "y": y, "lo": lo, "hi": hi, "seeds": len(runs), "how": how, "key": runs[0].get("key")}


def sweep_curves(results: list[dict], measure: str, title: str, y_title: str) -> go.Figure:
    """One line per (method, pattern) of `measure` against achieved sparsity, from result JSONs; runs of the
    same config at several seeds make one point (seed_point: the mean with a 95% t-interval as error bars;
    one seed: the value, with its Wilson interval for accuracy).
    `measure` is a top-level key, or 'final_cumulative_error' / 'mean_local_error'.
    Colour = method (Method.colour); marker = pattern (N:M runs are single markers)."""
    groups = point_runs(results)
    colors = method_colors(pts[0][0]["config"]["method"] for pts in groups.values())
    fig = go.Figure()
    for label, pts in groups.items():
        nm, color, symbol = _style([p[0] for p in pts], colors)
        points = [seed_point(p, measure) for p in pts]
        bars = any(p["lo"] is not None for p in points)
        fig.add_scatter(x=[p["x"] for p in points], y=[p["y"] for p in points], name=label,
                        mode="markers" if nm else "lines+markers", line=dict(color=color),
                        marker=dict(size=11 if nm else 7, color=color, symbol=symbol),
                        error_y=dict(type="data", visible=bars, thickness=1.2, width=4, color=color,
                                     array=[None if p["hi"] is None else p["hi"] - p["y"] for p in points],
                                     arrayminus=[None if p["lo"] is None else p["y"] - p["lo"] for p in points]),
                        customdata=[[p["lo"], p["hi"], p["how"]] for p in points],
                        hovertemplate=f"{label}<br>achieved sparsity %{{x:.3f}}<br>{y_title} %{{y:.4g}}"
                                      + ("<br>%{customdata[0]:.3f}-%{customdata[1]:.3f} (%{customdata[2]})"
                                         if bars else "") + "<extra></extra>")
    if measure == "accuracy" and results:
        fig.add_hline(y=results[0]["dense_accuracy"], line_dash="dot", line_color="gray",
                      annotation_text="dense", annotation_position="bottom left")
    fig.update_layout(title=title, xaxis_title="achieved sparsity", yaxis_title=y_title, margin=dict(t=50, b=30))
    return fig


def heldout_curves(results: list[dict]) -> go.Figure:
    """Cumulative error at the last block on the calibration set (solid) and on the held-out set (dashed)
    against achieved sparsity, one pair of lines per (method, pattern), from the runs that measured
    held-out error (the others are left out). Colour = method."""
    groups = {k: [r for r in rows if run_heldout_error(r) is not None] for k, rows in _by_label(results).items()}
    groups = {k: rows for k, rows in groups.items() if rows}
    colors = method_colors(rows[0]["config"]["method"] for rows in groups.values())
    fig = go.Figure()
    for label, rows in groups.items():
        nm, color, symbol = _style(rows, colors)
        xs = [r["achieved_sparsity"] for r in rows]
        n = [r.get("calib_examples") for r in rows]
        for which, ys, dash, help_ in (
                ("calibration", [r["blocks"][-1]["cumulative_error"] for r in rows], "solid", CUM_HELP),
                ("held-out", [run_heldout_error(r) for r in rows], "dash", HELDOUT_HELP)):
            fig.add_scatter(x=xs, y=ys, name=f"{label}: {which}", legendgroup=label,
                            mode="markers" if nm else "lines+markers", line=dict(color=color, dash=dash),
                            marker=dict(size=11 if nm else 7, color=color,
                                        symbol=symbol if which == "calibration" else f"{symbol}-open"),
                            customdata=n,
                            hovertemplate=f"{label}, {which}<br>achieved sparsity %{{x:.3f}}<br>cumulative error "
                                          f"%{{y:.4g}}<br>%{{customdata}} texts<extra>{help_}</extra>")
    fig.update_layout(title="Calibration vs held-out error at the last block", xaxis_title="achieved sparsity",
                      yaxis_title="cumulative error", legend_title="method: set", margin=dict(t=50, b=30))
    return fig


def prune_time_bars(results: list[dict]) -> go.Figure:
    """Mean prune time per method (and pattern) over the runs given; colour = method."""
    groups = _by_label(results)
    labels = list(groups)
    colors = method_colors(rows[0]["config"]["method"] for rows in groups.values())
    fig = go.Figure(go.Bar(x=labels, y=[float(np.mean([r["prune_seconds"] for r in groups[k]])) for k in labels],
                           marker_color=[colors[groups[k][0]["config"]["method"]] for k in labels],
                           hovertemplate="%{x}: %{y:.2f} s mean prune time (pruning only, evaluation excluded)"
                                         "<extra></extra>"))
    fig.update_layout(title="Prune time per method", yaxis_title="seconds", margin=dict(t=50, b=30))
    return fig


ROBUSTNESS_MEASURES = {
    "clean_accuracy": ("clean accuracy", "solid",
                       "clean accuracy: examples predicted correctly before any attack, over all examples"),
    "accuracy_under_attack": ("accuracy under attack", "dash",
                              "accuracy under attack: examples still correct after the attack, over all examples"),
    "attack_success_rate": ("attack success rate", "dot",
                            "attack success rate: (clean correct - still correct) / clean correct"),
}


def robustness_curves(rows: Iterable[dict], measures: Iterable[str] = tuple(ROBUSTNESS_MEASURES),
                      title: str = "Robustness vs sparsity") -> go.Figure:
    """One line per (method, measure) against requested sparsity: colour = method, line dash = measure.

    `rows` are attack summaries with method, sparsity and the measures (None = undefined, left as a gap).
    The dense model's row (method 'dense' or sparsity 0) is the point at sparsity 0 of every method's
    line; with no pruned rows, the dense point is drawn alone."""
    rows = list(rows)
    measures = list(measures)
    dense = [r for r in rows if r["method"] == "dense" or r["sparsity"] == 0]
    dense_row = dense[0] if dense else None
    groups: dict[str, list[dict]] = {}
    for r in rows:
        if r["method"] != "dense" and r["sparsity"] != 0:
            groups.setdefault(r["method"], []).append(r)
    if not groups and dense_row is not None:
        groups = {"dense": []}
    colors = method_colors(groups)
    fig = go.Figure()
    for method, pts in sorted(groups.items()):
        pts = sorted(pts, key=lambda r: r["sparsity"])
        if dense_row is not None:
            pts = [{**dense_row, "method": method, "sparsity": 0.0}] + pts
        color = colors[method]
        for m in measures:
            label, dash, definition = ROBUSTNESS_MEASURES[m]
            fig.add_scatter(x=[r["sparsity"] for r in pts], y=[r.get(m) for r in pts], mode="lines+markers",
                            name=f"{method}: {label}", legendgroup=method,
                            line=dict(color=color, dash=dash), marker=dict(color=color),
                            customdata=[r.get("n") or r.get("examples") for r in pts],
                            hovertemplate=f"{method}, sparsity %{{x:.0%}}<br>{label} %{{y:.3f}}"
                                          f"<br>%{{customdata}} examples<extra>{definition}</extra>")
    one = len(measures) == 1
    fig.update_layout(title=title, xaxis_title="sparsity (0 = the dense model)",
                      yaxis_title=ROBUSTNESS_MEASURES[measures[0]][0] if one else "fraction of examples",
                      legend_title="method: measure", showlegend=True, margin=dict(t=50, b=30))
    fig.update_xaxes(tickformat=".0%")
    fig.update_yaxes(range=[-0.02, 1.02])
    return fig


def flops_curves(results: Iterable[dict], measure: str = "accuracy", title: str = "Accuracy vs FLOPs removed",
                 y_title: str = "clean accuracy") -> go.Figure:
    """One line per structured method of `measure` against the achieved FLOPs reduction (from each run's stored
    `structure`); unstructured runs are left out. Colour = method (Method.colour)."""
    groups: dict[str, list[dict]] = {}
    for r in results:
        if is_structured(r):
            groups.setdefault(r["config"]["method"], []).append(r)
    colors = method_colors(groups)
    fig = go.Figure()
    for method, rows in sorted(groups.items()):
        rows = sorted(rows, key=flops_reduction)
        color = colors[method]
        fig.add_scatter(x=[flops_reduction(r) for r in rows], y=[_flops_value(r, measure) for r in rows],
                        mode="lines+markers", name=method, line=dict(color=color), marker=dict(color=color, size=8),
                        customdata=[[r["config"]["sparsity"], r["structure"].get("budget_meaning", ""),
                                     r["structure"]["params"] / r["structure"]["params_dense"]] for r in rows],
                        hovertemplate=f"{method}<br>FLOPs removed %{{x:.3f}}<br>{y_title} %{{y:.4g}}<br>budget "
                                      "%{customdata[0]:g} (%{customdata[1]})<br>encoder parameters kept "
                                      f"%{{customdata[2]:.1%}}<extra>{FLOPS_HELP}</extra>")
    flat = [r for rows in groups.values() for r in rows]
    if measure == "accuracy" and flat:
        fig.add_hline(y=flat[0]["dense_accuracy"], line_dash="dot", line_color="gray",
                      annotation_text="dense", annotation_position="bottom left")
    fig.update_layout(title=title, xaxis_title="FLOPs removed (achieved)", yaxis_title=y_title,
                      legend_title="method", margin=dict(t=50, b=30))
    fig.update_xaxes(tickformat=".0%")
    return fig


tidy_builders(globals())  # every figure: wrapped titles, tooltips inside their box, 1e-15 ticks
