"""Prune page: pick a model, task, method, pattern and sparsity; watch the pruning happen.

The sidebar's values live in session state (common.kept): they survive a visit to another page, "Open in
Prune views" sets them to the opened run, and Prune submits exactly what they show as a job
(pruning_core.jobs): the prune runs in a worker process, never in this script. A stored config opens at
once; a config already queued or running attaches to that job (one job however many tabs ask). The job id
is kept in session state and in the URL (?job=ID), and its progress is read from the store, so leaving the
page, reloading it or closing the tab never stops the prune: coming back shows the same live progress."""

from __future__ import annotations

import streamlit as st

st.title("Prune a model")  # painted before the heavy imports below (torch, transformers) finish
TOP = st.container()  # the Prune button and the state of the sidebar's config, drawn once it is known

from dashboard import job_progress  # noqa: E402
from dashboard.common import (SHARED_WHY, TASK_SOURCES, UPLOAD, error_text, get_store, kept, load_mask, load_run,  # noqa: E402
                              open_run, remember_settings, remembered_options, session_id, set_sidebar)
from dashboard.method_form import method_form  # noqa: E402
from dashboard.prune_actions import (UPLOAD_LIMIT_MB, budget_label, describe, differences,  # noqa: E402
                                     make_config, preflight, save_upload)
from dashboard.prune_views import show  # noqa: E402
from pruning_core import PrunescopeError, jobs  # noqa: E402
from pruning_core.data import tasks as data  # noqa: E402
from pruning_core.prune import methods  # noqa: E402
from pruning_core.prune.masks import PATTERNS, parse_pattern  # noqa: E402

REQUEST = "prune_request"  # set by the Prune / Recompute buttons' callbacks, consumed by the next run only
JOB = "prune_job"  # the id of the prune job this session follows (also in the URL as ?job=ID)
ENDED = "prune_job_ended"  # a followed job that failed or was cancelled: shown until dismissed or retried
store = get_store()
SESSION = session_id()
REQUESTED = st.session_state.pop(REQUEST, None)


def upload_picker() -> str:
    """The uploader of a CSV/TSV task; returns the path of the upload in use ('' if none)."""
    current = st.session_state.get(UPLOAD)
    file = st.file_uploader("Upload a CSV/TSV (columns text,label)", type=["csv", "tsv"], key="task_file",
                            help=f"at most {UPLOAD_LIMIT_MB} MB; saved on the server under its content hash, so "
                                 "the same file finds its stored runs")
    if file is not None and (current is None or current.get("file_id") != file.file_id):
        try:
            path = save_upload(file.name, file.getvalue())
        except PrunescopeError as exc:
            st.error(str(exc))
            return ""
        current = {"path": path, "name": file.name, "file_id": file.file_id}
        st.session_state[UPLOAD] = current
    if current:
        st.caption(f"Task: the uploaded file **{current['name']}**")
        return current["path"]
    return ""


def sidebar(where) -> dict:
    """Draw the sidebar's settings into `where` and return them: model, task (the one the chosen source gives,
    '' if none), method, pattern, sparsity, sizes, seed and the method's options."""
    with where:
        st.header("Experiment")
        model = st.text_input("Model", key=kept("model"),
                              help="default = the shipped MiniLM-L6 for the task; or a model folder under the "
                                   "folders this server allows, or a hub id")
        source = st.radio("Task from", list(TASK_SOURCES), format_func=TASK_SOURCES.get, horizontal=True,
                          key=kept("task_source"),
                          help="a shipped or hub task; a CSV/TSV file on the server; or a CSV/TSV you upload")
        if source == "name":
            task = st.selectbox("Task", list(data.SHIPPED) + list(data.HUB), key=kept("task"))
        elif source == "path":
            task = st.text_input("Local CSV/TSV (text,label)", key=kept("task_path"),
                                 help="a file under the folders this server allows").strip()
        else:
            task = upload_picker()
        method = st.selectbox("Method", list(methods.METHODS), key=kept("method"),
                              help="; ".join(f"{n}: {c.paper}" for n, c in methods.METHODS.items()))
        meth = methods.METHODS[method]
        if meth.structured:  # whole units removed: the pattern is "structured", the slider is the method's budget
            pattern = "structured"
            sparsity = st.slider(budget_label(meth.budget_meaning), 0.0, 0.9, step=0.05, key=kept("budget"),
                                 help=f"{method}'s budget: the {meth.budget_meaning} (the achieved value is shown "
                                      "after pruning)")
            st.caption(f"{method} removes whole {meth.removes}: a physically smaller model, no pattern to choose")
        else:
            extra = [st.session_state["pattern"]] if st.session_state.get("pattern") not in (*PATTERNS, None) else []
            pattern = st.selectbox("Pattern", [*PATTERNS, *extra], key=kept("pattern"),
                                   help="unstructured: any weight; N:M: at most N non-zeros in every M inputs of a row")
            nm = parse_pattern(pattern).sparsity
            if nm is not None:
                sparsity = nm
                st.caption(f"{pattern} fixes the sparsity at {nm:.0%}")
            else:
                sparsity = st.slider("Sparsity", 0.0, 0.95, step=0.05, key=kept("sparsity"))
        calib_size = st.number_input("Calibration examples", 1, 4096, key=kept("calib"))
        seq_len = st.number_input("Calibration sequence length", 8, 512, key=kept("seq_len"))
        eval_size = st.number_input("Evaluation examples (0 = whole test split)", 0, 100000, key=kept("eval"))
        st.caption(SHARED_WHY)
        seed = st.number_input("Seed", 0, 2**31 - 1, key=kept("seed"))
        options = method_form(method, values=remembered_options(method))
    remember_settings()
    return {"model": model.strip(), "task": task, "method": method, "pattern": pattern, "sparsity": float(sparsity),
            "calib_size": int(calib_size), "seq_len": int(seq_len), "seed": int(seed),
            "eval_size": int(eval_size) or None, "options": options}


def request(how: str) -> None:
    st.session_state[REQUEST] = how


def follow(job_id: int | None) -> None:
    """Follow the prune job `job_id` (None: none) in session state and in the URL, so a reload re-attaches."""
    st.session_state.pop(ENDED, None)
    if job_id is None:
        st.session_state.pop(JOB, None)
        if "job" in st.query_params:
            del st.query_params["job"]
    else:
        st.session_state[JOB] = int(job_id)
        st.query_params["job"] = str(job_id)


def attach_from_url() -> None:
    """A reloaded page (or a shared link) with ?job=ID follows that prune job and sets the sidebar to its
    config; a session that follows a job puts it back into the URL (a page switch clears it)."""
    followed = st.session_state.get(JOB)
    raw = st.query_params.get("job")
    if followed is not None:
        if raw != str(followed):
            st.query_params["job"] = str(followed)
        return
    if not raw:
        return
    job = jobs.get(store, int(raw)) if raw.isdigit() else None
    if job is None or job.kind != "prune":
        del st.query_params["job"]
        return
    st.session_state[JOB] = job.id
    if job.spec.get("config"):
        set_sidebar(job.spec["config"])


def followed_job():
    """The job this session follows, if it is still worth showing: a finished one opens its run instead (and
    is followed no more); a failed or cancelled one stays until dismissed or retried."""
    job_id = st.session_state.get(JOB)
    if job_id is None:
        return None
    job = jobs.get(store, job_id)
    if job is None:
        follow(None)
        return None
    if job.state == "done":
        follow(None)
        load_run.clear()
        load_mask.clear()
        if job.result_key:
            open_run(job.result_key)
        return None
    return job


def submit(settings: dict, recompute: bool) -> None:
    """Submit the sidebar's config as a prune job: a stored run opens at once, else the page follows the job
    (a new one, or the one already queued or running for this config)."""
    try:
        cfg = make_config(settings)
        preflight(cfg)
        job, how = jobs.submit(store, "prune", {"config": cfg.to_dict()}, session=SESSION, recompute=recompute,
                               label=describe(cfg.to_dict()))
    except Exception as exc:  # noqa: BLE001 - never a traceback in the page
        st.error(error_text("Checking the settings", exc))
        return
    if how == "stored":
        follow(None)
        open_run(cfg.key())
        st.toast("Loaded the stored run (Recompute prunes again)")
        return
    follow(job.id)
    st.toast(f"Attached to the {job.state} prune of this config (job {job.id})" if how == "attached"
             else f"Queued as job {job.id}")


def config_state(settings: dict) -> tuple[str, object]:
    """What the sidebar's config is now: ("stored", None), ("running", job), ("queued", job), ("new", None),
    or ("invalid", None) for settings that make no config."""
    try:
        cfg = make_config(settings)
    except Exception:  # noqa: BLE001 - Prune then says why
        return "invalid", None
    if store.has(cfg.key()):
        return "stored", None
    key = jobs.job_key("prune", {"config": cfg.to_dict()})
    job = next((j for j in jobs.list_jobs(store, states=("queued", "running")) if j.kind == "prune" and j.key == key),
               None)
    return (job.state, job) if job else ("new", None)


def button_label(state: str, job) -> str:
    if state == "stored":
        return "Stored - open"
    if state == "running":
        return "Running - attach"
    if state == "queued":
        return f"Queued - {jobs.ahead(store, job.id)} ahead"
    return "Prune"


def warm(settings: dict) -> None:
    """Once per session and model/task/calibration: let the job pool load the dense model, evaluate it and run
    the dense shadow of the calibration texts now, while the speaker talks, so the first Prune pays only for
    pruning (nothing happens while a pool is already running; `PRUNESCOPE_WARM=off` turns it off). Only the
    shipped models on the shipped tasks: a typed path or hub id is not loaded before Prune checks it."""
    cfg = make_config(settings)
    if cfg.model != "default" or cfg.task not in data.SHIPPED:
        return
    what = (cfg.model, cfg.task, cfg.calib_size, cfg.seq_len, cfg.seed, cfg.eval_size, cfg.fresh_head)
    done = st.session_state.setdefault("_warmed", set())
    if what in done:
        return
    done.add(what)
    try:
        jobs.warm_up(store, cfg.to_dict())
    except PrunescopeError:  # a full queue: the prune itself will say so
        pass


def cancel(job_id: int) -> None:
    jobs.cancel(store, job_id)


def retry(job_id: int) -> None:
    try:
        job, how = jobs.retry(store, job_id)
    except PrunescopeError as exc:
        st.session_state[ENDED] = str(exc)
        return
    if how == "stored":
        follow(None)
        open_run(jobs.get(store, job_id).key if job is None else job.key)
    else:
        follow(job.id)


@st.fragment(run_every=1.0)
def live_panel(job_id: int, seen: str) -> None:
    """The followed job's progress, redrawn every second from its events in the store; when its state moves on
    from `seen` (the state the page was drawn with), the whole page reruns, so the Prune button's label
    follows (Queued -> Running), a done prune opens its run, and a failed or cancelled one says why."""
    job = jobs.get(store, job_id)
    if job is None or not job.active or job.state != seen:
        st.rerun()
    with st.container(border=True):
        st.markdown(f"**{job.label}** · job {job.id} · {job.state}")
        job_progress.draw(job)
        st.button("Cancel", key="prune_cancel", icon=":material/cancel:", on_click=cancel, args=(job.id,),
                  help="stop this prune (for every tab attached to it); nothing of it is stored")


def ended_panel(job) -> None:
    """A followed job that failed (its reason) or was cancelled, with Retry and Dismiss."""
    if job.state == "failed":
        st.error(f"The prune of **{job.label}** failed: {job.error or 'no reason recorded'}")
    else:
        st.info(f"The prune of **{job.label}** was cancelled; nothing of it was stored.", icon=":material/cancel:")
    problem = st.session_state.get(ENDED)
    if isinstance(problem, str):
        st.error(problem)
    c1, c2, _ = st.columns([1, 1, 4])
    c1.button("Retry", key="prune_retry", icon=":material/replay:", on_click=retry, args=(job.id,))
    c2.button("Dismiss", key="prune_dismiss", on_click=follow, args=(None,))


attach_from_url()
slot = st.sidebar.container()
settings = sidebar(slot)
if REQUESTED:
    submit(settings, recompute=REQUESTED == "again")
job = followed_job()
state, active = config_state(settings)
if state != "invalid":
    warm(settings)
label = button_label(state, active)
with slot:  # one button per row: "Queued - 12 ahead" is not cut in the sidebar's width
    st.button(label, type="primary", width="stretch", key="prune_go", on_click=request, args=("go",),
              help="prune with the settings above as a job (a stored run of them opens at once; a running or "
                   "queued job of them is attached to, never started twice)")
    st.button("Recompute", width="stretch", key="prune_again", on_click=request, args=("again",),
              help="prune again even if this run is stored")
with TOP:
    c1, c2 = st.columns([1, 3], vertical_alignment="center")
    c1.button(label, type="primary", width="stretch", key="prune_go_top", on_click=request, args=("go",),
              help="the same as the sidebar's Prune button")
    c2.caption(f"Sidebar: **{describe(settings)}** · calibration {settings['calib_size']} × {settings['seq_len']} "
               f"tokens, evaluation {settings['eval_size'] or 'the whole test split'}, seed {settings['seed']}"
               if settings["task"] else "Choose a task in the sidebar.")
if job is not None and job.active:
    live_panel(job.id, job.state)
elif job is not None:
    ended_panel(job)
key = st.session_state.get("run_key")
res = load_run(key) if key else None
if res:
    differ = differences(res["config"], settings)
    if differ:
        st.info(f"Shown below: the stored run of **{describe(res['config'])}**. The sidebar differs ({differ}): "
                "press **Prune** to run what the sidebar says.", icon=":material/info:")
    show(res)
elif job is None:
    st.info("Choose a method and a sparsity in the sidebar, then press **Prune**. "
            "The default model is MiniLM-L6 fine-tuned on the chosen task; the prune runs as a job on this "
            "machine's CPU, and leaving or reloading the page does not stop it.")
