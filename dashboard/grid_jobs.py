"""A grid of cells (Compare's runs, Robustness's attacks) computed as jobs: the missing cells are submitted
one job per cell, and the grid's state - done, running, queued, failed - is read from the store and the jobs
table, never from the script run, so a reload or another tab sees the same. While cells are queued or
running, a fragment polls every two seconds and reruns the page when a cell finishes (the charts refill)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import streamlit as st

from dashboard.common import error_text, get_store, session_id
from pruning_core import PrunescopeError, jobs


@dataclass(frozen=True)
class GridState:
    total: int
    done: int
    running: int
    queued: int
    failed: list  # the newest job of each cell not done whose last job failed

    @property
    def active(self) -> int:
        return self.running + self.queued

    def text(self, what: str = "cells") -> str:
        """'3 of 8 cells done, 1 running, 2 queued, 1 failed'."""
        parts = [f"{self.done} of {self.total} {what} done", f"{self.running} running", f"{self.queued} queued"]
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        return ", ".join(parts)


def grid_state(store, kind: str, keys: list[str], is_done: Callable[[str], bool]) -> GridState:
    """Where every cell stands: its newest job's state while that is active, else stored (`is_done(key)`),
    else failed if its newest job failed. `keys`: the cells' job keys (prune: the run key, attack: the attack
    key; pruning_core.jobs.job_key)."""
    newest: dict[str, object] = {}
    for job in jobs.list_jobs(store, limit=1000):  # newest first
        if job.kind == kind and job.key not in newest:
            newest[job.key] = job
    done = running = queued = 0
    failed = []
    for key in keys:
        job = newest.get(key)
        if job is not None and job.active:
            running += job.state == "running"
            queued += job.state == "queued"
        elif is_done(key):
            done += 1
        elif job is not None and job.state == "failed":
            failed.append(job)
    return GridState(len(keys), done, running, queued, failed)


PENDING = "_grid_pending"  # session state: kind -> the cells' specs still to submit (over the session's cap)


def _slots(store) -> int:
    """How many more jobs this session may have queued or running (jobs.MAX_PER_SESSION at most)."""
    return jobs.MAX_PER_SESSION - len(jobs.list_jobs(store, states=("queued", "running"), session=session_id()))


def submit_cells(store, kind: str, specs: list[dict], recompute: bool = False) -> dict[str, int]:
    """Submit one job per cell (stored cells are read, not recomputed, unless `recompute`); how many were
    queued, attached, found stored, and left waiting: a session holds at most jobs.MAX_PER_SESSION jobs, so
    the cells beyond that wait in the session and go in as its jobs finish (`top_up`, from `follow`'s
    poll while the page is open). A full server queue stops the submitting with the page's error."""
    counts = {"queued": 0, "attached": 0, "stored": 0, "waiting": 0}
    pending = st.session_state.setdefault(PENDING, {})
    pending[kind] = []
    free = _slots(store)
    for i, spec in enumerate(specs):
        if free <= 0:
            pending[kind] = [(s, recompute) for s in specs[i:]]
            counts["waiting"] = len(pending[kind])
            break
        try:
            _, how = jobs.submit(store, kind, spec, session=session_id(), recompute=recompute)
        except PrunescopeError as exc:
            st.error(f"{sum(counts.values())} of {len(specs)} cells submitted, then: {exc}")
            break
        except Exception as exc:  # noqa: BLE001 - never a traceback in a demo
            st.error(error_text("Submitting the cells", exc))
            break
        counts[how] += 1
        free -= how == "queued"  # attached and stored cells take no slot of this session
    return counts


def top_up(store, kind: str) -> int:
    """Submit this session's waiting cells of `kind` while it has free job slots; how many still wait."""
    pending = st.session_state.get(PENDING, {}).get(kind) or []
    free = _slots(store) if pending else 0
    while pending and free > 0:
        spec, recompute = pending[0]
        try:
            _, how = jobs.submit(store, kind, spec, session=session_id(), recompute=recompute)
        except PrunescopeError:  # the server's queue is full: try again at the next poll
            break
        pending.pop(0)
        free -= how == "queued"
    return len(pending)


def follow(state_now: GridState, poll: Callable[[], GridState], what: str = "cells",
           on_change: Callable[[], None] | None = None, kind: str | None = None) -> None:
    """The grid's progress line; while cells are active (or wait for a slot: `kind`'s `top_up`), a fragment
    re-reads it every two seconds, submits waiting cells as slots free up, and reruns the page (after
    `on_change`, e.g. clearing caches) when the count of done cells changes or all end."""
    waiting = top_up(get_store(), kind) if kind else 0
    if waiting and not state_now.active:
        state_now = poll()
    if not state_now.active and not state_now.failed:
        return

    def panel() -> None:
        left = top_up(get_store(), kind) if kind else 0
        state = poll()
        if state.done != state_now.done or (state_now.active and not state.active):
            if on_change:
                on_change()
            st.rerun()
        frac = state.done / state.total if state.total else 0.0
        st.progress(frac, state.text(what) + (f", {left} waiting for a free slot ({jobs.MAX_PER_SESSION} jobs "
                                              "at a time per session; they go in while this page is open)"
                                              if left else ""))
        if state.failed:
            with st.expander(f"{len(state.failed)} failed", icon=":material/error:"):
                for job in state.failed[:20]:
                    st.markdown(f"job {job.id} · {job.label}: {job.error or 'no reason recorded'}")
                st.caption("Retry them on the Jobs page, or press the compute button again.")

    st.fragment(panel, run_every=2.0 if state_now.active else None)()
