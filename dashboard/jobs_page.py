"""Jobs page: the server's long work (prunes, attacks, speed, export, sweeps) - running, queued with its
place in the queue, finished, failed with the reason, cancelled - with Cancel, Retry and Open. Redrawn from
the store every two seconds while something is queued or running."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from dashboard.common import get_store, load_mask, load_run, open_run, session_id
from pruning_core import PrunescopeError, jobs

ICONS = {"queued": ":material/schedule:", "running": ":material/autorenew:", "done": ":material/check_circle:",
         "failed": ":material/error:", "cancelled": ":material/cancel:"}
GROUPS = (("running", "Running"), ("queued", "Queued"), ("done", "Finished"), ("failed", "Failed"),
          ("cancelled", "Cancelled"))


def when(t: float | None) -> str:
    return dt.datetime.fromtimestamp(t).strftime("%H:%M:%S") if t else "-"


def took(job) -> str:
    if not job.started:
        return ""
    end = job.finished or dt.datetime.now().timestamp()
    return f"{end - job.started:.0f} s"


def status_text(job, store) -> str:
    """'3 jobs ahead', 'block 3 of 6', 'done in 12 s', 'failed: <reason>'."""
    if job.state == "queued":
        n = jobs.ahead(store, job.id)
        return "starts next" if n == 0 else f"{n} job{'s' * (n != 1)} ahead"
    if job.state == "running":
        return " · ".join(p for p in (job.progress_text, took(job)) if p) or "starting"
    if job.state == "failed":
        return f"failed: {job.error or 'no reason recorded'}"
    return f"{job.state} at {when(job.finished)}" + (f", {took(job)}" if job.state == "done" else "")


def cancel(job_id: int) -> None:
    jobs.cancel(get_store(), job_id)


def retry(job_id: int) -> None:
    try:
        job, how = jobs.retry(get_store(), job_id)
    except PrunescopeError as exc:
        st.session_state["jobs_problem"] = str(exc)
        return
    st.session_state["jobs_problem"] = None
    st.toast(f"Job {job_id} submitted again: {how}" + (f" (job {job.id})" if job else ""))


def open_result(job) -> None:
    """A finished prune: its run in the Prune page's views, the sidebar set to its config."""
    load_run.clear()
    load_mask.clear()
    open_run(job.result_key, (job.spec or {}).get("config"))
    st.switch_page("prune_page.py")


def row(job, store, mine: str) -> None:
    c1, c2, c3 = st.columns([5, 4, 1], vertical_alignment="center")
    owner = " · yours" if job.session == mine else ""
    c1.markdown(f"{job.id} · **{job.kind}** · {job.label}{owner}")
    c2.caption(status_text(job, store))
    if job.state == "running" and job.progress is not None:
        c2.progress(min(max(job.progress, 0.0), 1.0))
    if job.active:
        c3.button("Cancel", key=f"jobs_cancel_{job.id}", on_click=cancel, args=(job.id,), width="stretch")
    elif job.state in ("failed", "cancelled"):
        c3.button("Retry", key=f"jobs_retry_{job.id}", on_click=retry, args=(job.id,), width="stretch")
    elif job.state == "done" and job.kind == "prune" and job.result_key:
        if c3.button("Open", key=f"jobs_open_{job.id}", width="stretch"):
            open_result(job)


def listing(mine_only: bool) -> None:
    store = get_store()
    mine = session_id()
    listed = jobs.list_jobs(store, session=mine if mine_only else None, limit=200)
    problem = st.session_state.get("jobs_problem")
    if problem:
        st.error(problem)
    if not listed:
        st.info("No jobs" + (" of this session" if mine_only else "") + " yet: Prune, Compare and Robustness "
                "submit their work here.")
        return
    counts = {s: sum(j.state == s for j in listed) for s, _ in GROUPS}
    st.caption(" · ".join(f"{n} {s}" for s, n in counts.items() if n))
    for state, title in GROUPS:
        group = [j for j in listed if j.state == state]
        if not group:
            continue
        if state == "queued":  # in the order they will start
            group.sort(key=lambda j: jobs.ahead(store, j.id))
        st.markdown(f"#### {title} ({len(group)})")
        for job in group[:50]:
            row(job, store, mine)


st.title("Jobs")
mine_only = st.toggle("Mine only", False, key="jobs_mine", help="only the jobs this browser session submitted")
active = bool(jobs.list_jobs(get_store(), states=("queued", "running"), limit=1))
st.fragment(listing, run_every=2.0 if active else None)(mine_only)
