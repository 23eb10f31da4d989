"""Plotly figure builders (and the escaped HTML of adversarial examples): pure functions of results,
testable without Streamlit."""

from __future__ import annotations

import html
import math
from typing import Iterable

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from pruning_core import methods
from pruning_core.arch import KIND_LABELS, KINDS

KIND_COLORS = {"q": "#4C78A8", "k": "#72B7B2", "v": "#54A24B", "attn_out": "#EECA3B",
               "ffn_in": "#F58518", "ffn_out": "#E45756"}

LOCAL_HELP = "local reconstruction error ||WX - W'X||² / ||WX||², X = inputs reaching the module in the pruned model"
CUM_HELP = "cumulative error ||Y_dense - Y_pruned||² / ||Y_dense||² at the block output: all error added up to there"
HELDOUT_HELP = ("held-out error: the same cumulative error on a held-out set of the same size from the validation "
                "split, never used to choose masks or fit weights; a gap to calibration = overfitting")
LOSS_HELP = "mean squared error of the trained block(s) to the reconstruction target over calibration tokens"
CALIB_COLOR = "#1f77b4"
HELDOUT_COLOR = "#d62728"


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


def _sequential(n: int) -> list[str]:
    """`n` colours from light to dark blue (shallow to deep blocks)."""
    from plotly.colors import sample_colorscale

    return sample_colorscale("Blues", [0.35 + 0.65 * i / max(n - 1, 1) for i in range(n)]) if n else []


# ---- masks, weights and teaching toys -------------------------------------------------------------

KEEP_HELP = "keep ratio = kept weights / weights in the cell (1 = all kept, 0 = all pruned)"
ZOOM_HELP = "one cell per weight: 1 = kept, 0 = pruned (set to zero)"
PROFILE_HELP = "keep ratio of a row (an output) or a column (an input): kept weights / weights in it"
HIST_HELP = "distribution of the weights; pruned weights (exact zeros) are left out of the 'after' histogram"
TOY_HELP = "output error ||WXᵀ - W'Xᵀ||² / ||WXᵀ||² of the pruned toy matrix on its inputs"
DEPTH_HELP = "cumulative error ||Y_dense - Y_pruned||² / ||Y_dense||² after each layer of the toy stack"
# each method declares its colour (pruning_core.methods: Method.colour); the registered ones at import
METHOD_COLORS = {name: cls.colour for name, cls in methods.METHODS.items() if cls.colour}
OTHER_COLORS = ("#9D755D", "#72B7B2", "#FF9DA6", "#BAB0AC", "#EECA3B")  # methods without a colour of their own
DENSE_COLOR = "#7f7f7f"
PATTERN_SYMBOLS = {"unstructured": "circle", "2:4": "diamond", "4:8": "square"}
KEEP_SCALE = [[0.0, "#f2f2f2"], [1.0, "#1f4e79"]]


def _array(x) -> np.ndarray:
    """A numpy array from a torch tensor, numpy array or nested list."""
    if hasattr(x, "detach"):  # a torch tensor (half precision converted: numpy lacks bfloat16)
        x = x.detach().cpu()
        x = (x.float() if x.dtype.is_floating_point and x.element_size() < 4 else x).numpy()
    return np.asarray(x)


def _mask_array(mask) -> np.ndarray:
    m = _array(mask)
    if m.ndim != 2:
        raise ValueError(f"a mask is 2-D (rows x cols); got shape {m.shape}")
    return m.astype(np.float64)


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
    fig.update_layout(barmode="overlay", xaxis_title=label, yaxis_title="weights", margin=dict(t=50, b=30),
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
    fig.update_layout(barmode="overlay", xaxis_title="|w|", yaxis_title="weights", margin=dict(t=50, b=30),
                      title=f"{name} weights before and after ({hist['zeros_after']:,} zeros after, not shown)")
    return fig


def _own_colour(name: str) -> str | None:
    cls = methods.METHODS.get(name)
    return cls.colour if cls is not None else None


def method_colors(names: Iterable[str]) -> dict[str, str]:
    """One colour per method, the same in every chart: the method's own (`Method.colour`), then OTHER_COLORS
    in name order for methods without one ('dense' is gray)."""
    names = sorted(set(names))
    others = [n for n in names if not _own_colour(n) and n != "dense"]
    out = {n: OTHER_COLORS[others.index(n) % len(OTHER_COLORS)] for n in others}
    out.update({n: _own_colour(n) for n in names if _own_colour(n)})
    if "dense" in names:
        out["dense"] = DENSE_COLOR
    return out


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


def sweep_curves(results: list[dict], measure: str, title: str, y_title: str) -> go.Figure:
    """One line per (method, pattern) of `measure` against requested sparsity, from result JSONs.
    `measure` is a top-level key, or 'final_cumulative_error' / 'mean_local_error'.
    Colour = method (Method.colour); marker = pattern (N:M runs are single markers)."""
    def value(r):
        if measure == "final_cumulative_error":
            return r["blocks"][-1]["cumulative_error"]
        if measure == "mean_local_error":
            return float(np.mean([layer["local_error"] for layer in r["layers"]]))
        return r[measure]

    groups = _by_label(results)
    colors = method_colors(rows[0]["config"]["method"] for rows in groups.values())
    fig = go.Figure()
    for label, rows in groups.items():
        nm, color, symbol = _style(rows, colors)
        fig.add_scatter(x=[r["achieved_sparsity"] for r in rows], y=[value(r) for r in rows], name=label,
                        mode="markers" if nm else "lines+markers", line=dict(color=color),
                        marker=dict(size=11 if nm else 7, color=color, symbol=symbol),
                        hovertemplate=f"{label}<br>achieved sparsity %{{x:.3f}}<br>{y_title} %{{y:.4g}}<extra></extra>")
    if measure == "accuracy" and results:
        fig.add_hline(y=results[0]["dense_accuracy"], line_dash="dot", line_color="gray",
                      annotation_text="dense", annotation_position="bottom left")
    fig.update_layout(title=title, xaxis_title="achieved sparsity", yaxis_title=y_title, margin=dict(t=50, b=30))
    return fig


def run_heldout_error(r: dict) -> float | None:
    """A run's held-out error at the last block (None for runs stored before it was measured)."""
    held = r.get("heldout_error")
    if held is None and r.get("blocks"):
        held = r["blocks"][-1].get("heldout_error")
    return held


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


# ---- robustness under attack ------------------------------------------------------------------------

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


HIGHLIGHT_ORIGINAL = "#f8c9c4"  # words the attack changed, in the original text
HIGHLIGHT_PERTURBED = "#c9e7c3"  # their replacements, in the perturbed text


def highlight_html(text: str, spans: Iterable[Iterable[int]], color: str = HIGHLIGHT_ORIGINAL) -> str:
    """`text` as HTML with the character `spans` ([start, end) pairs) wrapped in <mark>.

    Every piece of `text` is escaped, so user text can never inject HTML; spans are sorted, clipped to
    the text and overlaps merged into the earlier span."""
    parts, pos = [], 0
    style = html.escape(f"background-color: {color}; padding: 0 2px; border-radius: 3px", quote=True)
    for start, end in sorted((int(a), int(b)) for a, b in spans):
        start, end = max(start, pos), min(end, len(text))
        if end <= start:
            continue
        parts.append(html.escape(text[pos:start]))
        parts.append(f'<mark style="{style}">{html.escape(text[start:end])}</mark>')
        pos = end
    parts.append(html.escape(text[pos:]))
    return "".join(parts)


RESULT_COLORS = {"successful": "#E45756", "failed": "#54A24B", "skipped": "#7f7f7f"}
RESULT_HELP = {"successful": "the attack flipped a correct prediction",
               "failed": "the model stayed correct under attack",
               "skipped": "the model was already wrong on the clean text: nothing to attack"}


def adversarial_example_html(rec: dict, label_names: Iterable[str] = ()) -> str:
    """One attacked example as an HTML card: result, true label, original and perturbed text with the
    changed words highlighted, predictions with confidence before and after, queries. All text escaped."""
    names = list(label_names)

    def name(i: int) -> str:
        return html.escape(names[i] if 0 <= i < len(names) else str(i))

    kind = rec["result"]
    badge = (f'<span style="background:{RESULT_COLORS.get(kind, DENSE_COLOR)};color:white;padding:1px 8px;'
             f'border-radius:8px;font-size:0.85em" title="{html.escape(RESULT_HELP.get(kind, ""))}">'
             f'{html.escape(kind)}</span>')
    before = f"{name(rec['original_pred'])} ({rec['original_confidence']:.0%})"
    head = (f"{badge} &nbsp;<b>#{int(rec['idx'])}</b> &nbsp;true label: <b>{name(rec['label'])}</b>"
            f" &nbsp;·&nbsp; queries: {int(rec['queries'])}")
    text_style = "white-space: pre-wrap; margin: 4px 0"
    rows = [f'<div style="{text_style}"><span style="color:#666">original:</span> '
            f'{highlight_html(rec["text"], rec.get("original_spans") or [], HIGHLIGHT_ORIGINAL)}</div>']
    if rec.get("perturbed") is not None:
        rows.append(f'<div style="{text_style}"><span style="color:#666">perturbed:</span> '
                    f'{highlight_html(rec["perturbed"], rec.get("perturbed_spans") or [], HIGHLIGHT_PERTURBED)}'
                    "</div>")
        after = f"{name(rec['perturbed_pred'])} ({rec['perturbed_confidence']:.0%})"
        changed = len(rec.get("changed") or [])
        pred = (f"prediction: {before} &rarr; {after} after the attack"
                f" &nbsp;·&nbsp; {changed} of {int(rec['words'])} words changed")
    else:
        pred = f"prediction: {before}, already wrong; not attacked"
    return (f'<div style="font-size:0.95em">{head}{"".join(rows)}'
            f'<div style="color:#444;font-size:0.9em">{pred}</div></div>')


# ---- structured pruning: kept units, FLOPs, speed ---------------------------------------------------

HEAD_HELP = "an attention head of the layer: kept (its Q/K/V/output slices stay) or pruned (removed from the model)"
NEURON_HELP = "an FFN neuron (a row of the FFN input and a column of the FFN output projection): kept or removed"
HIDDEN_HELP = ("a hidden channel: one coordinate of the residual stream, removed from every layer at once "
               "(embeddings, attention, FFN, LayerNorms)")
FLOPS_HELP = ("FLOPs removed: 1 - FLOPs of the pruned encoder / FLOPs of the dense encoder, matrix multiplications "
              "at the calibration texts' average length")
STEP_LOSS_HELP = "training loss of the step's batch: task cross-entropy + identity loss of the adapters"


def is_structured(res: dict) -> bool:
    """Whether a stored run removed whole units (it carries a `structure` record)."""
    return bool(res.get("structure"))


def flops_reduction(res: dict) -> float | None:
    """A structured run's achieved FLOPs reduction (the stored `flops_reduction`, else 1 - flops / flops_dense);
    None for unstructured runs."""
    s = res.get("structure")
    if not s:
        return None
    if s.get("flops_reduction") is not None:
        return float(s["flops_reduction"])
    return 1 - s["flops"] / s["flops_dense"]


def intermediate_size(structure: dict) -> int:
    """FFN width of the dense model, recovered from the stored dense parameter count (the structure record
    stores kept neurons per layer, not the width): params = L H (4 d d_h + 3 d_h) + L F (2 d + 1) + 2 L d."""
    layers, heads = len(structure["heads"]), len(structure["heads"][0])
    d, dh = structure["hidden_size"], structure["head_dim"]
    rest = structure["params_dense"] - 2 * layers * d - layers * heads * (4 * d * dh + 3 * dh)
    return round(rest / (layers * (2 * d + 1)))


def _keep_grid(z: np.ndarray, ys: list[str], title: str, x_title: str, help_: str, gaps: bool) -> go.Figure:
    z = np.asarray(z, dtype=np.float64)
    state = np.where(z > 0, "kept", "pruned")
    fig = go.Figure(go.Heatmap(z=z, x=np.arange(z.shape[1]), y=ys, zmin=0, zmax=1, colorscale=KEEP_SCALE,
                               showscale=False, customdata=state, xgap=1 if gaps else 0, ygap=1 if gaps else 2,
                               hovertemplate=f"%{{y}}, {x_title} %{{x}}: %{{customdata}}<extra>{help_}</extra>"))
    fig.update_layout(title=title, xaxis_title=x_title, margin=dict(t=50, b=30))
    fig.update_yaxes(autorange="reversed")
    return fig


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


def log_tables(log: Iterable[dict]) -> list[list[dict]]:
    """A method's step log split into tables: runs of consecutive entries with the same fields (Kwon: the
    search, then one row per layer; PAT: one row per logged step, then its summary)."""
    tables: list[list[dict]] = []
    for entry in log:
        if tables and set(tables[-1][-1]) == set(entry):
            tables[-1].append(entry)
        else:
            tables.append([entry])
    return tables


def _flops_value(r: dict, measure: str) -> float:
    return r["blocks"][-1]["cumulative_error"] if measure == "final_cumulative_error" else r[measure]


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


SPEED_PANELS = (("weights removed", "fraction of weights that are zero or removed"),
                ("FLOPs executed<br>(× dense)", "multiply-adds the kernels actually run, relative to the dense model"),
                ("latency (ms)<br>batch {b0}", "median time of one forward pass; lower is faster"),
                ("throughput (seq/s)<br>batch {b1}", "sequences per second at the larger batch; higher is faster"))


def speed_values(measurement: dict, record: dict) -> dict[str, tuple[float | None, float | None]]:
    """(dense, pruned) per panel of `speed_bars`: achieved sparsity, FLOPs executed relative to dense
    (structured: the smaller model's count; unstructured and N:M zeros run on dense kernels: 1, None where
    semi-structured kernels ran), latency (ms) and throughput (sequences/s)."""
    dense, run = measurement["rows"][0], measurement["rows"][1]
    if dense.get("flops") and run.get("flops") is not None:
        flops = run["flops"] / dense["flops"]
    else:
        flops = None if measurement.get("semi_structured") else 1.0
    sparsity = run.get("sparsity")
    if sparsity is None:
        sparsity = record.get("achieved_sparsity")
    return {"sparsity": (0.0, sparsity), "flops": (1.0, flops), "latency": (dense["latency_ms"], run["latency_ms"]),
            "throughput": (dense["throughput"], run["throughput"])}


def speed_bars(measurement: dict, record: dict) -> go.Figure:
    """Dense vs pruned side by side: weights removed, FLOPs executed, latency and throughput, from a
    `speed.measure_run` measurement and the run's record. Dense is gray, the pruned model its method's colour."""
    values = speed_values(measurement, record)
    b0, b1 = measurement["batch_sizes"]
    method = record["config"]["method"]
    color = method_colors([method])[method]
    titles = [t.format(b0=b0, b1=b1) for t, _ in SPEED_PANELS]
    fig = make_subplots(rows=1, cols=4, subplot_titles=titles, horizontal_spacing=0.07)
    fmts = (".3f", ".3f", ".1f", ".0f")
    for i, ((name, (d, p)), (_, help_), fmt) in enumerate(zip(values.items(), SPEED_PANELS, fmts), start=1):
        fig.add_bar(x=["dense", method], y=[d, p], marker_color=[DENSE_COLOR, color], showlegend=False,
                    name=titles[i - 1], text=[None if v is None else format(v, fmt) for v in (d, p)],
                    textposition="auto", row=1, col=i,
                    hovertemplate=f"%{{x}}: %{{y:{fmt}}}<extra>{help_}</extra>")
    fig.update_layout(title=f"Sparsity is not speed: dense vs {method}, measured on {measurement['device']} "
                            f"({measurement['threads']} threads, {measurement['seq_len']} tokens)",
                      margin=dict(t=100, b=30), height=380)
    return fig


def speed_caption(measurement: dict, record: dict) -> str:
    """One sentence on what the measurement shows: speed follows removed FLOPs, not zeros."""
    v = speed_values(measurement, record)
    (d_lat, p_lat), (d_thr, p_thr) = v["latency"], v["throughput"]
    sparsity = v["sparsity"][1] or 0.0
    speed = f"speed-up ×{d_lat / p_lat:.2f} in latency, ×{p_thr / d_thr:.2f} in throughput"
    if is_structured(record):
        return (f"**Sparsity is not speed.** This model is physically smaller: {flops_reduction(record):.0%} of the "
                f"FLOPs removed and {sparsity:.0%} of the encoder weights, so it runs on smaller dense matrices "
                f"({speed}).")
    if measurement.get("semi_structured"):
        return (f"**Sparsity is not speed.** {sparsity:.0%} of the weights are zero in a 2:4 pattern, run here on "
                f"semi-structured sparse kernels ({speed}).")
    return (f"**Sparsity is not speed.** {sparsity:.0%} of the weights are zero, but the zeros are still stored and "
            f"multiplied by dense kernels, so the model does the same work ({speed}, i.e. within measurement "
            "noise). Removing whole heads, neurons or channels (kprune, kwon, pat) makes the matrices smaller, and "
            "that is what runs faster.")
