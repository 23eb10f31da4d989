"""Shared dashboard state: the results store (one per server process), this browser session's id (its
jobs carry it), run selection, the Prune page's settings (kept across pages), and what the page says about
failures."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from pathlib import Path

import streamlit as st

from dashboard.method_form import option_keys
from pruning_core import PrunescopeError
from pruning_core.storage.store import Store
from pruning_core.storage.demo import import_demo, import_demo_attacks


@st.cache_resource
def get_store() -> Store:
    """The results store (one per server process)."""
    return Store()


SESSION = "_session_id"


def session_id() -> str:
    """This browser session's id (a uuid kept in session state): the `session` of the jobs it submits."""
    if SESSION not in st.session_state:
        st.session_state[SESSION] = uuid.uuid4().hex
    return st.session_state[SESSION]


def jobs_badge() -> str:
    """'Jobs: 1 running, 3 queued' ('Jobs: none running' when idle): one cheap query of the active jobs."""
    from pruning_core import jobs

    try:
        active = jobs.list_jobs(get_store(), states=("queued", "running"))
    except Exception as exc:  # noqa: BLE001 - a badge never breaks a page
        _LOG.warning("could not count the jobs: %s", exc)
        return "Jobs: unknown"
    running = sum(j.state == "running" for j in active)
    if not active:
        return "Jobs: none running"
    return f"Jobs: {running} running, {len(active) - running} queued"


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




# ---- errors shown in the page ------------------------------------------------------------------------------

_LOG = logging.getLogger("prunescope.dashboard")


def error_text(what: str, exc: BaseException) -> str:
    """What the page says about a failure: a PrunescopeError's own one-line message; for anything else only
    its kind (its text can quote a file's contents: it goes to the server's log instead)."""
    if isinstance(exc, PrunescopeError):
        return str(exc)
    _LOG.error("%s failed", what, exc_info=exc)
    return f"{what} failed ({type(exc).__name__}); the details are in the server's log."


# ---- the Prune page's settings: they survive navigation and follow "Open in Prune views" -------------------
# Streamlit forgets the values of widgets that a run does not draw (every widget of the Prune page, once
# another page is shown), so the page keeps a copy outside the widget keys (SAVED) and puts it back into the
# widget keys before drawing them (`kept`). The widgets are drawn without default values: their value is
# always the one in session state, so what the sidebar shows is what Prune runs.

SAVED = "_prune_settings"
UPLOAD = "task_upload"  # {"path", "name"} of the uploaded CSV/TSV the task picker uses

TASK_SOURCES = {"name": "Named", "path": "Path", "upload": "Upload"}

# the widget ranges the sidebar draws (a stored run's value outside them is clamped when it is opened)
LIMITS = {"sparsity": (0.0, 0.95), "budget": (0.0, 0.9), "calib": (1, 4096), "seq_len": (8, 512),
          "eval": (0, 100_000), "seed": (0, 2**31 - 1)}


# the calibration and evaluation both the Prune and the Compare page start from: the settings of the shipped demo
# sweeps (assets/demo/sweep_*.jsonl), so a run made with Prune's defaults is a point of Compare's default curves
SHARED_SETTINGS = {"calib": 128, "seq_len": 64, "eval": 0}  # eval 0 = the whole test split
SHARED_WHY = ("Defaults: calibration 128 × 64 tokens, the whole test split: the shipped demo's settings, shared "
              "by Prune and Compare, so runs made here appear on the other page's curves.")

# the sidebar's own settings; a method's knobs (dashboard.method_form) start at its options' defaults
PRUNE_DEFAULTS = {"model": "default", "task_source": "name", "task": "rotten_tomatoes", "task_path": "",
                  "method": "sparsegpt", "pattern": "unstructured", "sparsity": 0.5, "budget": 0.4,
                  **SHARED_SETTINGS, "seed": 0}


def _option_keys() -> dict[str, dict[str, str]]:
    """method -> option -> the Prune sidebar widget that sets it, for every registered method."""
    from pruning_core.prune import methods

    return {method: option_keys(method) for method in methods.METHODS}


def kept(key: str) -> str:
    """`key`, after putting the remembered value of that Prune widget (else its default) back into session
    state when Streamlit dropped it (the page was not drawn in the last run). Use as `key=kept("x")`."""
    if key not in st.session_state:
        st.session_state[key] = st.session_state.get(SAVED, {}).get(key, PRUNE_DEFAULTS[key])
    return key


def remembered_options(method: str) -> dict:
    """The remembered values of `method`'s knobs (option -> value), for `method_form`."""
    saved = st.session_state.get(SAVED, {})
    return {option: saved[key] for option, key in option_keys(method).items() if key in saved}


def remember_settings() -> None:
    """Copy the Prune widgets' current values out of the widget keys (call after drawing them)."""
    saved = st.session_state.setdefault(SAVED, {})
    keys = [*PRUNE_DEFAULTS, *(key for keys in _option_keys().values() for key in keys.values())]
    saved.update({k: st.session_state[k] for k in keys if k in st.session_state})


def _cast(value, like):
    if isinstance(like, bool):
        return bool(value)
    if isinstance(like, int):
        return int(value)
    if isinstance(like, float):
        return float(value)
    return str(value)


def _clamp(key: str, value):
    lo, hi = LIMITS.get(key, (None, None))
    return value if lo is None else min(max(value, lo), hi)


def settings_from_config(config: dict) -> dict:
    """The Prune widget values that show a stored run's config (model, task, method, pattern, sparsity or
    budget, sizes, seed, the method's options)."""
    from pruning_core.data import tasks as data
    from pruning_core.prune import methods
    from pruning_core.storage.access import uploads_dir

    method = config.get("method", PRUNE_DEFAULTS["method"])
    out = {"model": str(config.get("model", "default")), "method": method}
    task = str(config.get("task", PRUNE_DEFAULTS["task"]))
    if task in data.SHIPPED or task in data.HUB:
        out.update(task_source="name", task=task)
    elif Path(task).expanduser().resolve().parent == uploads_dir():
        out.update(task_source="upload")
    else:
        out.update(task_source="path", task_path=task)
    for key, field in (("calib", "calib_size"), ("seq_len", "seq_len"), ("seed", "seed")):
        if config.get(field) is not None:
            out[key] = _clamp(key, int(config[field]))
    out["eval"] = _clamp("eval", int(config.get("eval_size") or 0))
    meth = methods.METHODS.get(method)
    sparsity = float(config.get("sparsity", 0.5))
    if meth is not None and meth.structured:
        out["budget"] = _clamp("budget", sparsity)
    else:
        out["pattern"] = str(config.get("pattern", "unstructured"))
        if out["pattern"] == "unstructured":
            out["sparsity"] = _clamp("sparsity", sparsity)
    options = config.get("options") or {}
    if meth is not None:
        keys = option_keys(method)
        for f in dataclasses.fields(meth.Options):
            if f.name in options:
                out[keys[f.name]] = _cast(options[f.name], f.default)
    return out


def open_run(key: str, config: dict | None = None) -> None:
    """Show a stored run in the Prune page's views; with its `config`, also set the Prune sidebar to it, so
    what is shown and what the sidebar says agree."""
    st.session_state["run_key"] = key
    if config is not None:
        set_sidebar(config)


def set_sidebar(config: dict) -> None:
    """Set the Prune sidebar to a run's `config` (the widgets take the values when they are drawn next)."""
    values = settings_from_config(config)
    if values.get("task_source") == "upload":
        task = str(config["task"])
        st.session_state[UPLOAD] = {"path": task, "name": Path(task).name.split("-", 1)[-1]}
    st.session_state.setdefault(SAVED, {}).update(values)
    for k in values:  # the Prune widgets take the new values from SAVED when they are drawn next
        st.session_state.pop(k, None)
