"""The live progress of a prune job, drawn from the store's job events (not from this script run): any tab,
page or reloaded browser that attaches to the job draws the same bar, lines and charts. The events read so
far are kept in session state, so a rerun reads only the new ones."""

from __future__ import annotations

import re
from pathlib import Path

import streamlit as st

from dashboard import charts
from dashboard.common import get_store
from dashboard.prune_actions import LiveRecords, layer_line, refine_line, step_line
from pruning_core.prune.records import BlockRecord, LayerRecord, StepRecord

LIVE = "_live_job"  # {"job", "seq", "records", "lines", "stage"}: what this session has read of a job's events
_OF = re.compile(r"\bof (\d+)\b")


@st.cache_data(max_entries=32, show_spinner=False)
def blocks_of(model: str, task: str) -> int | None:
    """How many encoder blocks a local model has (read from its config.json, no weights loaded); None where
    it cannot be told without loading (a hub id)."""
    from pruning_core.model.models import is_local, read_config, resolve

    try:
        name = resolve(model, task)
        if not is_local(name):
            return None
        cfg = read_config(Path(name).expanduser())
    except Exception:  # noqa: BLE001 - the progress text then comes from the job row
        return None
    n = cfg.get("num_hidden_layers", cfg.get("n_layers"))
    return int(n) if n else None


def n_blocks(job) -> int:
    """The block count of a prune job's model: its config.json, else the job's own progress text."""
    config = (job.spec or {}).get("config") or {}
    n = blocks_of(str(config.get("model", "default")), str(config.get("task", "")))
    if n is None:
        found = _OF.search(job.progress_text or "")
        n = int(found.group(1)) if found else 0
    return max(n, 1)


def read_live(job) -> dict:
    """This session's copy of `job`'s events, brought up to date (only the events after the last one read)."""
    from pruning_core import jobs

    live = st.session_state.get(LIVE)
    if not live or live["job"] != job.id:
        live = {"job": job.id, "seq": 0, "records": LiveRecords(n_blocks(job)), "lines": [], "bar": None,
                "stage": ""}
        st.session_state[LIVE] = live
    for ev in jobs.events(get_store(), job.id, after=live["seq"]):
        live["seq"] = ev["seq"]
        if ev["type"] == "stage":
            live["stage"] = str(ev["data"].get("stage") or ev["data"].get("text") or ev["data"].get("label") or "")
            continue
        if ev["type"] not in ("layer", "block", "step"):
            continue
        rec = jobs.record_of(ev)
        moved = live["records"].add(rec)
        if moved is not None:
            live["bar"] = moved
        if isinstance(rec, StepRecord):
            live["lines"].append(step_line(rec))
        elif isinstance(rec, LayerRecord):
            live["lines"].append(layer_line(rec))
        elif isinstance(rec, BlockRecord) and rec.refine_loss:
            live["lines"].append(refine_line(rec))
    return live


def ahead_text(n: int) -> str:
    return "no job ahead of yours: it starts next" if n == 0 else f"{n} job{'s' * (n != 1)} ahead of yours"


def draw(job) -> None:
    """The progress of an active prune job: its place in the queue, or its bar, lines and live charts."""
    from pruning_core import jobs

    if job.state == "queued":
        st.progress(0.0, f"Queued: {ahead_text(jobs.ahead(get_store(), job.id))}")
        return
    live = read_live(job)
    records = live["records"]
    fraction, text = live["bar"] or (0.0, live["stage"] or "starting")
    st.progress(min(max(fraction, 0.0), 1.0), f"Running: {text}" + (f" · {live['stage']}" if live["stage"]
                                                                        and live["bar"] else ""))
    if records.blocks:
        st.plotly_chart(charts.cumulative_error_line(records.blocks), key=f"live_cum_{job.id}")
    if any(s.get("loss") is not None for s in records.steps):
        st.plotly_chart(charts.training_loss_line(records.steps), key=f"live_loss_{job.id}")
    if live["lines"]:
        with st.expander(f"Progress log ({len(live['lines'])} lines)", expanded=True):
            for line in live["lines"][-60:]:
                st.markdown(line)
