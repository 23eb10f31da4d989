"""Shared dashboard state: the results store (one per server process) and run selection."""

from __future__ import annotations

import streamlit as st

from pruning_core.store import Store
from pruning_core.sweep import import_demo, import_demo_attacks


@st.cache_resource
def get_store() -> Store:
    """The results store (one per server process)."""
    return Store()


@st.cache_resource
def demo_imported() -> int:
    """Copy the shipped demo sweeps into the store once per server (pages that list runs call this)."""
    return import_demo(get_store())


@st.cache_resource
def demo_attacks_imported() -> int:
    """Copy the shipped demo attacks into the store once per server (pages that show attacks call this)."""
    return import_demo_attacks(get_store())


@st.cache_data(max_entries=64, show_spinner=False)
def load_attack_row(key: str) -> dict | None:
    """A finished stored attack's {key, target, complete, config, summary}, else None. Cached: a finished
    attack never changes under its key; callers check `store.attack_done(key)` first (and the Robustness
    page clears this cache after computing), so an unfinished attack's None does not stick."""
    row = get_store().load_attack(key)
    return row if row and row["complete"] else None


@st.cache_data(max_entries=16, show_spinner=False)
def load_attack_examples(key: str) -> list[dict]:
    """The example records of a finished stored attack."""
    return get_store().attack_examples(key)


def clear_attack_caches() -> None:
    load_attack_row.clear()
    load_attack_examples.clear()


@st.cache_data(max_entries=64, show_spinner=False)
def load_run(key: str) -> dict | None:
    """A stored run's JSON (cached: stored runs never change under the same key)."""
    return get_store().load(key)


@st.cache_data(max_entries=16, show_spinner=False)
def load_mask(key: str, name: str):
    masks = get_store().masks(key, [name])
    return masks.get(name)


def open_run(key: str) -> None:
    """Show a stored run in the Prune page's views."""
    st.session_state["run_key"] = key
