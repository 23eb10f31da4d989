"""Any pruning method's knobs, drawn from its option metadata (`pruning_core.prune.methods.base.knob`).

The form reads each field of the method's `Options`: a bool is a toggle, a string with choices a radio or
a select box, a number a number input with the field's range, step and format (or a slider where the
metadata asks). A knob whose `shown_when` does not hold is not drawn and keeps its default (left out of the
returned dict, so the run's key is the one of its defaults); `more` knobs go in an expander; the method's
`note` on the chosen options is shown below. A new method needs no code here."""

from __future__ import annotations

import dataclasses

import streamlit as st

from pruning_core.prune import methods
from pruning_core.prune.methods.base import choice_values, shown


def option_key(method: str, option: str, key_prefix: str = "") -> str:
    """The widget key of a method's option: 'akrp_lambda0' (with a prefix: 'cmp_akrp_lambda0')."""
    return f"{key_prefix}{method}_{option}"


def option_keys(method: str, key_prefix: str = "") -> dict[str, str]:
    """option -> widget key, for every option of `method` (empty for a method not registered)."""
    cls = methods.METHODS.get(method)
    if cls is None:
        return {}
    return {f.name: option_key(method, f.name, key_prefix) for f in dataclasses.fields(cls.Options)}


def _bound(meta, names: tuple[str, ...], kind: type):
    value = next((meta[n] for n in names if n in meta), None)
    return None if value is None else kind(value)


def _widget(f: dataclasses.Field, key: str):
    """Draw one knob; returns its value as the field's type."""
    meta, kind = f.metadata, type(f.default)
    label, help_ = meta.get("label", f.name), meta.get("help") or None
    widget = meta.get("widget")
    if kind is bool:
        draw = st.checkbox if widget == "checkbox" else st.toggle
        return bool(draw(label, key=key, help=help_))
    if kind is str:
        choices = meta.get("choices")
        if not choices:
            return st.text_input(label, key=key, help=help_).strip()
        labels = choices if isinstance(choices, dict) else {}
        fmt = lambda v: labels.get(v, v)  # noqa: E731
        if widget == "radio" or (widget is None and len(choices) <= 4):
            return str(st.radio(label, choice_values(meta), horizontal=True, key=key, help=help_, format_func=fmt))
        return str(st.selectbox(label, choice_values(meta), key=key, help=help_, format_func=fmt))
    lo = _bound(meta, ("ui_min", "ge", "gt"), kind)
    hi = _bound(meta, ("ui_max", "le", "lt"), kind)
    step = _bound(meta, ("step",), kind)
    if widget == "slider" and lo is not None and hi is not None:
        return kind(st.slider(label, lo, hi, step=step, key=key, help=help_))
    return kind(st.number_input(label, lo, hi, step=step, format=meta.get("format"), key=key, help=help_))


def method_form(method_name: str, key_prefix: str = "", values: dict | None = None) -> dict:
    """Draw `method_name`'s knobs and return the options they set (hidden knobs left out). A knob's widget
    starts at `values[option]` when given (e.g. remembered settings), else at the option's default; once
    drawn, its value lives under `option_key(method_name, option, key_prefix)` in session state."""
    cls = methods.METHODS[method_name]
    fields = dataclasses.fields(cls.Options)
    keys = option_keys(method_name, key_prefix)
    values = values or {}
    for f in fields:
        if keys[f.name] not in st.session_state:
            st.session_state[keys[f.name]] = values.get(f.name, f.default)
    current = {f.name: st.session_state[keys[f.name]] for f in fields}
    visible = [f for f in fields if shown(f.metadata, current)]
    out = {f.name: _widget(f, keys[f.name]) for f in visible if not f.metadata.get("more")}
    more = [f for f in visible if f.metadata.get("more")]
    if more:
        with st.expander(f"More {method_name} knobs"):
            out.update({f.name: _widget(f, keys[f.name]) for f in more})
    note = cls().note(cls.Options(**{**{f.name: f.default for f in fields}, **out}))
    if note:
        st.caption(note)
    return out
