"""Shared pieces of the charts: colours (methods, module kinds, calibration vs held-out), array helpers."""

from __future__ import annotations

import functools
import re
import textwrap
from typing import Iterable

import numpy as np
import plotly.graph_objects as go

from pruning_core.prune import methods


KIND_COLORS = {"q": "#4C78A8", "k": "#72B7B2", "v": "#54A24B", "attn_out": "#EECA3B",
               "ffn_in": "#F58518", "ffn_out": "#E45756"}
CALIB_COLOR = "#1f77b4"
HELDOUT_COLOR = "#d62728"


def _sequential(n: int) -> list[str]:
    """`n` colours from light to dark blue (shallow to deep blocks)."""
    from plotly.colors import sample_colorscale

    return sample_colorscale("Blues", [0.35 + 0.65 * i / max(n - 1, 1) for i in range(n)]) if n else []


# each method declares its colour (pruning_core.prune.methods: Method.colour); the registered ones at import
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


def _keep_grid(z: np.ndarray, ys: list[str], title: str, x_title: str, help_: str, gaps: bool) -> go.Figure:
    z = np.asarray(z, dtype=np.float64)
    state = np.where(z > 0, "kept", "pruned")
    fig = go.Figure(go.Heatmap(z=z, x=np.arange(z.shape[1]), y=ys, zmin=0, zmax=1, colorscale=KEEP_SCALE,
                               showscale=False, customdata=state, xgap=1 if gaps else 0, ygap=1 if gaps else 2,
                               hovertemplate=f"%{{y}}, {x_title} %{{x}}: %{{customdata}}<extra>{help_}</extra>"))
    fig.update_layout(title=title, xaxis_title=x_title, margin=dict(t=50, b=30))
    fig.update_yaxes(autorange="reversed")
    return fig


TITLE_WIDTH = 52  # characters of a title line: a half-width column at 1440 px shows about this many
HOVER_WIDTH = 60  # characters of a tooltip's explanation line
_EXTRA = re.compile(r"<extra>(.+?)</extra>", re.S)


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, break_on_hyphens=False) or [text]


def _single_value_range(values: list) -> list[float] | None:
    """A range around the one distinct number in `values` (Plotly's own would be value ± 1, e.g. -0.5 to 1.5
    for one run at sparsity 0.5); None for two or more values, or none."""
    nums = set()
    for v in values:
        if v is None or isinstance(v, str):
            return None
        if isinstance(v, (int, float, np.floating, np.integer)) and np.isfinite(v):
            nums.add(float(v))
    if len(nums) != 1:
        return None
    v = nums.pop()
    pad = max(abs(v) * 0.1, 0.05)
    return [v - pad, v + pad]


def tidy(fig: go.Figure) -> go.Figure:
    """What every figure needs to read well in a half-width column: a long title wrapped onto lines (never
    cut off) with room above the plot; a tooltip's explanation inside its box on wrapped lines (not in the
    side label Plotly clips at the page's edge), left-aligned; tick labels as 1e-15 rather than SI prefixes
    ('1f'); a single-point axis ranged around its point. Idempotent."""
    title = fig.layout.title.text
    if title and "<br>" not in title and len(title) > TITLE_WIDTH:
        lines = _wrap(title, TITLE_WIDTH)
        fig.update_layout(title_text="<br>".join(lines),
                          margin_t=max(fig.layout.margin.t or 50, 30 + 22 * len(lines)))
    fig.update_layout(hoverlabel=dict(align="left"))
    for trace in fig.data:
        template = getattr(trace, "hovertemplate", None)
        if isinstance(template, str) and _EXTRA.search(template):
            text = _EXTRA.search(template).group(1)
            note = "<br>".join(_wrap(text, HOVER_WIDTH))
            trace.hovertemplate = _EXTRA.sub("", template) + f"<br><span style='font-size:11px'>{note}</span>" \
                                                            "<extra></extra>"
    fig.update_xaxes(exponentformat="e")
    fig.update_yaxes(exponentformat="e")
    for axis, anchor in (("x", "xaxis"), ("y", "yaxis")):
        if axis == "y" and fig.layout.shapes:  # a reference line (dense accuracy) must stay in view
            continue
        values = [v for t in fig.data if getattr(t, f"{axis}axis", None) in (None, axis)
                  and t.type in ("scatter", "scattergl") and getattr(t, axis) is not None for v in getattr(t, axis)]
        span = _single_value_range(values)
        if span is not None and getattr(fig.layout, anchor).range is None:
            fig.update_layout({anchor: {"range": span}})
    return fig


def tidy_builders(namespace: dict) -> None:
    """Wrap every figure builder of a chart module (a public function annotated `-> go.Figure`) with `tidy`."""
    for name, f in list(namespace.items()):
        if callable(f) and not name.startswith("__") and getattr(f, "__annotations__", {}).get("return") == "go.Figure" \
                and not getattr(f, "_tidied", False):
            @functools.wraps(f)
            def built(*args, _f=f, **kwargs):
                return tidy(_f(*args, **kwargs))
            built._tidied = True
            namespace[name] = built
