"""A grid of cells (Compare's runs, Robustness's attacks) computed as jobs: the missing cells are submitted
one job per cell, and the grid's state - done, running, queued, failed - is read from the store and the jobs
table, never from the script run, so a reload or another tab sees the same. While cells are queued or
running, a fragment polls every two seconds and reruns the page when a cell finishes (the charts refill)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import streamlit as st

from dashboard.common import error_text, session_id
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


def submit_cells(store, kind: str, specs: list[dict], recompute: bool = False) -> dict[str, int]:
    """Submit one job per cell (stored cells are read, not recomputed, unless `recompute`); how many were
    queued, attached and found stored. A full queue stops the submitting with the page's error."""
    counts = {"queued": 0, "attached": 0, "stored": 0}
    for spec in specs:
        try:
            _, how = jobs.submit(store, kind, spec, session=session_id(), recompute=recompute)
        except PrunescopeError as exc:
            st.error(f"{sum(counts.values())} of {len(specs)} cells submitted, then: {exc}")
            break
        except Exception as exc:  # noqa: BLE001 - never a traceback in a demo
            st.error(error_text("Submitting the cells", exc))
            break
        counts[how] += 1
    return counts


def follow(state_now: GridState, poll: Callable[[], GridState], what: str = "cells",
           on_change: Callable[[], None] | None = None) -> None:
    """The grid's progress line; while cells are active, a fragment re-reads it every two seconds and reruns
    the page (after `on_change`, e.g. clearing caches) when the count of done cells changes or all end."""
    if not state_now.active and not state_now.failed:
        return

    def panel() -> None:
        state = poll()
        if state.done != state_now.done or (state_now.active and not state.active):
            if on_change:
                on_change()
            st.rerun()
        frac = state.done / state.total if state.total else 0.0
        st.progress(frac, state.text(what))
        if state.failed:
            with st.expander(f"{len(state.failed)} failed", icon=":material/error:"):
                for job in state.failed[:20]:
                    st.markdown(f"job {job.id} · {job.label}: {job.error or 'no reason recorded'}")
                st.caption("Retry them on the Jobs page, or press the compute button again.")

    st.fragment(panel, run_every=2.0 if state_now.active else None)()
