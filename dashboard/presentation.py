"""Presentation mode: a sidebar toggle on every page, kept in session state and in the URL (`?present=1`, so a
reload or a shared link keeps it). When on: large fonts in the page (CSS) and in every chart, fixed axes so a
sequence of runs compares by eye (accuracy and sparsity 0-1, cumulative error 0-1 where the data fit), and a
chance-level line (1 / number of classes of the page's task) on accuracy axes.

Charts are styled in one place: `install()` wraps Streamlit's `plotly_chart` so every figure any page draws goes
through `style()` while the mode is on (the wrapper reads this session's state, so other sessions are untouched).
"""

from __future__ import annotations

import copy

import plotly.graph_objects as go
import streamlit as st

PARAM = "present"
KEY = "presentation"
TASK_KEY = "_present_task"
FONT, TITLE_FONT, SMALL_FONT = 20, 26, 17
CSS = """<style>
html { font-size: 20px; }
[data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li { font-size: 1.1rem; }
[data-testid="stCaptionContainer"] { font-size: 0.95rem; }
</style>"""


def is_on() -> bool:
    """Whether presentation mode is on for this session (first read from the URL's `?present=1`)."""
    try:
        if KEY not in st.session_state:
            st.session_state[KEY] = st.query_params.get(PARAM) == "1"
        return bool(st.session_state[KEY])
    except Exception:  # noqa: BLE001 - outside a Streamlit run (a figure built in a test): off
        return False


def scale() -> float:
    """How much larger the page's text is (1 when off): for heights given in pixels, e.g. a table's rows."""
    return 20 / 16 if is_on() else 1.0


def _sync_url() -> None:
    if st.session_state.get(KEY):
        st.query_params[PARAM] = "1"
    elif PARAM in st.query_params:
        del st.query_params[PARAM]


def sidebar_toggle() -> bool:
    """The toggle (every page: app.py draws it), the URL kept in step, the CSS when on. Returns whether it is on."""
    is_on()  # initialise from the URL before the widget reads its key
    st.sidebar.toggle("Presentation mode", key=KEY, on_change=_sync_url,
                      help="large fonts, fixed axes (accuracy and sparsity 0-1), a chance-level line on accuracy "
                           "charts, and the Demo path first in the menu; kept in the link (?present=1)")
    on = bool(st.session_state[KEY])
    _sync_url()  # a page change drops the query string: put it back
    if on:
        st.html(CSS)
    st.session_state[TASK_KEY] = None  # each page says which task its charts show (note_task)
    return on


def note_task(task: str | None) -> None:
    """Say which task this page's charts show: its chance level is the line drawn on accuracy axes."""
    st.session_state[TASK_KEY] = task


def chance_level(task: str | None) -> float | None:
    """1 / number of classes of a shipped task (None for an unknown task or one with fewer than two classes)."""
    from pruning_core.data import tasks as data

    info = data.task_info(task) if task else None
    k = len(info.label_names) if info else 0
    return 1.0 / k if k >= 2 else None


def _axis_names(fig: go.Figure, letter: str) -> list[str]:
    return [k for k in fig.layout.to_plotly_json() if k.startswith(f"{letter}axis")] or [f"{letter}axis"]


def _title(axis) -> str:
    return ((axis.title.text if axis.title else "") or "").lower()


def _ys_on(fig: go.Figure, ref: str) -> list[float]:
    vals = []
    for t in fig.data:
        if (getattr(t, "yaxis", None) or "y") == ref and getattr(t, "y", None) is not None:
            vals += [float(v) for v in t.y if isinstance(v, (int, float))]
    return vals


def style(fig: go.Figure, chance: float | None = None) -> go.Figure:
    """A copy of `fig` for a projector: large fonts (layout, title, legend, subplot titles, hover), fixed axes
    (an axis titled with 'sparsity' or 'accuracy' 0-1; 'cumulative error' 0-1 when every value fits) and, given
    `chance`, a dashed chance-level line on every accuracy axis (titled 'accuracy', or listed in
    layout.meta['accuracy_axes'])."""
    fig = go.Figure(copy.deepcopy(fig.to_dict()))
    fig.update_layout(font=dict(size=FONT), title_font_size=TITLE_FONT, legend_font_size=SMALL_FONT,
                      hoverlabel_font_size=SMALL_FONT)
    for ann in fig.layout.annotations or ():  # subplot titles and line labels
        ann.font.size = SMALL_FONT + (2 if ann.yref == "paper" else 0)
    meta = fig.layout.meta if isinstance(fig.layout.meta, dict) else {}
    accuracy_refs = set(meta.get("accuracy_axes") or ())
    for name in _axis_names(fig, "x"):
        axis = fig.layout[name]
        if "sparsity" in _title(axis):
            axis.range = [-0.04, 1.0]
    for name in _axis_names(fig, "y"):
        axis, ref = fig.layout[name], "y" + name[len("yaxis"):]
        title = _title(axis)
        if "accuracy" in title:
            accuracy_refs.add(ref)
            axis.range = [0, 1.05]
        elif "cumulative error" in title and all(0 <= v <= 1 for v in _ys_on(fig, ref)):
            axis.range = [0, 1.05]
    if chance is not None:
        for ref in sorted(accuracy_refs):
            xref = "x" + ref[1:]
            fig.add_shape(type="line", xref=f"{xref} domain", yref=ref, x0=0, x1=1, y0=chance, y1=chance,
                          line=dict(color="#b22222", dash="dash", width=2), name="chance level")
            fig.add_annotation(xref=f"{xref} domain", yref=ref, x=0, y=chance, text=f"chance {chance:.2f}",
                               showarrow=False, xanchor="left", yanchor="bottom",
                               font=dict(size=SMALL_FONT, color="#b22222"))
    top = fig.layout.margin.t if fig.layout.margin and fig.layout.margin.t else 50
    fig.update_layout(margin=dict(t=max(top, 70) + 20))
    return fig


_INSTALLED = {"done": False}


def install() -> None:
    """Route every `plotly_chart` (st.plotly_chart and column.plotly_chart) through `style` while this session
    is in presentation mode. Idempotent; the wrapper reads the running session's state."""
    if _INSTALLED["done"]:
        return
    from streamlit.delta_generator import DeltaGenerator

    original = DeltaGenerator.plotly_chart

    def plotly_chart(self, figure_or_data, *args, **kwargs):
        if isinstance(figure_or_data, go.Figure) and is_on():
            figure_or_data = style(figure_or_data, chance_level(st.session_state.get(TASK_KEY)))
        return original(self, figure_or_data, *args, **kwargs)

    DeltaGenerator.plotly_chart = plotly_chart
    st.plotly_chart = st._main.plotly_chart  # the module-level function is bound to the main area at import
    _INSTALLED["done"] = True


def switch_page(page: str) -> None:
    """st.switch_page that keeps `?present=1` (a switch otherwise clears the query string)."""
    st.switch_page(page, query_params={PARAM: "1"} if is_on() else None)
