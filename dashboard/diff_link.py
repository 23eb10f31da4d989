"""The way into Run against run from other pages: two selected runs -> the diff page, preset."""

from __future__ import annotations

import streamlit as st

PAIR = "diff_pair"  # (key A, key B): read (and removed) by the diff page before it draws its pickers


def open_pair(key_a: str, key_b: str) -> None:
    """Show runs `key_a` and `key_b` on the Run-vs-run page."""
    st.session_state[PAIR] = (key_a, key_b)
    st.switch_page("diff_page.py")


def compare_two_button(view, rows: list[int], key: str = "compare_two") -> None:
    """A 'Compare these two' button under a table of runs (`view`, a frame with `key` and `model` columns),
    enabled when exactly two of its `rows` (positions) are selected and they prune the same model."""
    chosen = [view.iloc[i] for i in rows if 0 <= i < len(view)]
    same_model = len(chosen) == 2 and chosen[0]["model"] == chosen[1]["model"]
    why = ("select two rows of the table (tick the boxes at their left)" if len(chosen) != 2 else
           "the two runs prune different models" if not same_model else
           "overlay the two selected runs: errors, accuracy deltas, mask difference")
    if st.button("Compare these two", key=key, disabled=not same_model, help=why, icon=":material/compare_arrows:"):
        open_pair(str(chosen[0]["key"]), str(chosen[1]["key"]))
    if len(chosen) == 2 and not same_model:
        st.caption("The two selected runs prune different models: Run vs run compares runs of one model.")


def keys_from_points(event, curves: list[list[dict]]) -> list[str]:
    """The run keys of the points selected in a chart whose trace i draws the runs `curves[i]` in order (as
    charts.sweep_curves draws `charts._by_label(results).values()`); other traces' points are ignored."""
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return []
    keys = []
    for p in points or []:
        c, i = p.get("curve_number"), p.get("point_index", p.get("point_number"))
        if c is not None and i is not None and 0 <= c < len(curves) and 0 <= i < len(curves[c]):
            key = curves[c][i].get("key")
            if key and key not in keys:
                keys.append(key)
    return keys
