"""The Prune page's encoder diagram: where the model lost weights (a box per module, coloured by achieved
sparsity or local error); a clicked box shows that module's errors and opens it in the mask viewer below
(Masks and weights). Structured runs: the heads and FFN neurons kept."""

from __future__ import annotations

import streamlit as st

from dashboard import charts
from dashboard.charts import diagram
from pruning_core.model.arch import KIND_LABELS

PICKED = "mask_module"  # the key of the Prune views' mask viewer selectbox (prune_views.show_unstructured)
_LAST_CLICK = "_diagram_last_click"


def show(res: dict) -> None:
    """The diagram section of a stored run."""
    st.markdown("#### Where the model lost weights")
    if charts.is_structured(res):
        st.plotly_chart(diagram.structured_diagram(res["structure"]), key="diagram_structured")
        st.caption("Each column is one layer: its attention heads (dark = kept, light × = removed) and its FFN "
                   "(the share of neurons kept). Removed units are gone from the model, not zeroed.")
        return
    layers = res.get("layers") or []
    if not layers:
        return
    measure = st.radio("Colour by", list(diagram.MEASURES), format_func=diagram.MEASURES.get, horizontal=True,
                       key="diagram_measure")
    event = st.plotly_chart(diagram.encoder_diagram(layers, measure), key="diagram", on_select="rerun",
                            selection_mode="points")
    names = [r["name"] for r in layers]
    clicked = diagram.selected_module(event, layers)
    if clicked in names and clicked != st.session_state.get(_LAST_CLICK):  # a new click wins over the selectbox
        st.session_state[PICKED] = clicked  # the mask viewer below ("Masks and weights") opens it
    st.session_state[_LAST_CLICK] = clicked
    name = st.session_state.get(PICKED)
    row = layers[names.index(name)] if name in names else layers[0]
    cols = st.columns(5)
    cols[0].metric("Module", f"{row['block']} · {KIND_LABELS[row['kind']]}", help=row["name"])
    cols[1].metric("Achieved sparsity", f"{row['achieved_sparsity']:.3f}", help="zeros / weights of this module")
    cols[2].metric("Local error", f"{row['local_error']:.4g}", help=charts.LOCAL_HELP)
    cols[3].metric("Cumulative error at its block", f"{row['cumulative_error']:.4g}", help=charts.CUM_HELP)
    cols[4].caption(diagram.DIAGRAM_HELP + ": its mask, zoom and weights are shown under *Masks and weights* "
                    "below.")
