"""Prune page: pick a model, task, method, pattern and sparsity; watch the pruning happen.

The sidebar's values live in session state (common.kept): they survive a visit to another page, "Open in
Prune views" sets them to the opened run, and Prune runs exactly what they show. While a prune runs, the
sidebar is locked (a second click cannot restart it); leaving the page stops the prune, and the next run of
any page says so (common.note_interrupted)."""

from __future__ import annotations

import streamlit as st

st.title("Prune a model")  # painted before the heavy imports below (torch, transformers) finish

from dashboard import charts  # noqa: E402
from dashboard.common import (INFLIGHT, INTERRUPTED, TASK_SOURCES, UPLOAD, error_text, get_store, kept,  # noqa: E402
                              load_mask, load_run, note_interrupted, open_run, remember_settings, remembered_options,
                              restore_settings)
from dashboard.method_form import method_form  # noqa: E402
from dashboard.prune_actions import (UPLOAD_LIMIT_MB, LiveRecords, budget_label, describe, differences,  # noqa: E402
                                     layer_line, make_config, options_text, refine_line, save_upload, step_line)
from dashboard.prune_views import show  # noqa: E402
from pruning_core import PrunescopeError
from pruning_core.data import tasks as data
from pruning_core.experiments import experiment
from pruning_core.prune import methods
from pruning_core.model.arch import arch_of  # noqa: E402
from pruning_core.prune.masks import PATTERNS, parse_pattern  # noqa: E402
from pruning_core.model.models import resolve_device  # noqa: E402
from pruning_core.prune.records import BlockRecord, LayerRecord, StepRecord  # noqa: E402

note_interrupted()
REQUEST = "prune_request"  # set by the Prune / Recompute buttons' callbacks, consumed by the next run only
PENDING = "prune_pending"  # (settings, request): what the click's run showed, pruned by the run after it
# A click's run draws the sidebar as usual, keeps its settings and reruns; that next run shows them locked
# (a summary and a disabled button: nothing to change or click), prunes exactly them, then draws the
# settings again in the same place.
REQUESTED = st.session_state.pop(REQUEST, None)
PENDING_RUN = st.session_state.pop(PENDING, None)
BUSY = PENDING_RUN is not None
if BUSY:
    restore_settings()


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
        seed = st.number_input("Seed", 0, 2**31 - 1, key=kept("seed"))
        options = method_form(method, values=remembered_options(method))
        c1, c2 = st.columns(2)
        c1.button("Prune", type="primary", width="stretch", key="prune_go",
                  on_click=st.session_state.__setitem__, args=(REQUEST, "go"),
                  help="prune with the settings above (a stored run of them is shown at once)")
        c2.button("Recompute", width="stretch", key="prune_again",
                  on_click=st.session_state.__setitem__, args=(REQUEST, "again"),
                  help="prune again even if this run is stored")
    remember_settings()
    return {"model": model.strip(), "task": task, "method": method, "pattern": pattern, "sparsity": float(sparsity),
            "calib_size": int(calib_size), "seq_len": int(seq_len), "seed": int(seed),
            "eval_size": int(eval_size) or None, "options": options}


def locked_panel(settings: dict) -> None:
    """The sidebar while a prune runs: what runs, and a disabled button (nothing to change or click twice)."""
    st.header("Experiment")
    opts = options_text(settings["options"])
    st.markdown(f"**{describe(settings)}**  \ncalibration {settings['calib_size']} × {settings['seq_len']} tokens, "
                f"evaluation {settings['eval_size'] or 'the whole test split'}, seed {settings['seed']}"
                + (f"  \n{opts}" if opts else ""))
    st.button("Pruning...", type="primary", width="stretch", key="prune_busy", disabled=True,
              help="one prune at a time: the settings come back when it finishes")
    st.caption("The settings are locked until the prune finishes. Leaving or changing the page stops it "
               "(nothing half-done is stored).")


def run(settings: dict, recompute: bool) -> None:
    """Prune the config the sidebar showed (or open its stored run). While it runs, INFLIGHT names it: a run
    that finds INFLIGHT still set knows this one was stopped."""
    st.session_state.pop(INTERRUPTED, None)
    try:
        cfg = make_config(settings)
        key = cfg.key()
    except Exception as exc:  # noqa: BLE001 - never a traceback in the page
        st.error(error_text("Checking the settings", exc))
        return
    store = get_store()
    if not recompute and store.has(key):
        open_run(key)
        st.toast("Loaded the stored run (Recompute prunes again)")
        return
    st.session_state[INFLIGHT] = {"key": key, "label": describe(cfg.to_dict()), "config": cfg.to_dict()}
    try:
        with st.status("Loading the model...", expanded=True) as status:
            net, _ = experiment.load_dense(cfg.model, cfg.task, str(resolve_device(cfg.device)))
            records = LiveRecords(len(arch_of(net).blocks(net)))
            progress = st.progress(0.0)
            live_loss = st.empty()
            live = st.empty()

            def on_record(rec):
                moved = records.add(rec)
                if isinstance(rec, StepRecord):
                    progress.progress(*moved)
                    st.write(step_line(rec))
                    if rec.loss is not None:
                        live_loss.plotly_chart(charts.training_loss_line(records.steps),
                                               key=f"live_loss{len(records.steps)}")
                elif isinstance(rec, LayerRecord):
                    st.write(layer_line(rec))
                elif isinstance(rec, BlockRecord):
                    if rec.refine_loss:
                        st.write(refine_line(rec))
                    progress.progress(*moved)
                    live.plotly_chart(charts.cumulative_error_line(records.blocks), key=f"live{len(records.blocks)}")

            # expanded=True on every update: a label-only update collapses the status (Streamlit 1.67),
            # which would hide the live progress and charts below
            res = experiment.run_experiment(cfg, on_record=on_record,
                                            on_stage=lambda s: status.update(label=s + "...", expanded=True))
            out = res.to_json()
            store.save(out, res.prune.masks)  # one transaction: stored whole, or not at all
            st.session_state.pop(INFLIGHT, None)  # no Streamlit call between the save and this line
            load_run.clear()
            load_mask.clear()
            status.update(label=f"Pruned in {res.prune.prune_seconds:.1f} s", state="complete", expanded=False)
    except Exception as exc:  # noqa: BLE001 - a demo never shows a traceback (Streamlit's stop is not an Exception)
        st.session_state.pop(INFLIGHT, None)
        st.error(error_text("Pruning", exc))
        return
    open_run(key)


slot = st.sidebar.empty()  # the settings, or while a prune runs, what it runs
if BUSY:
    with slot.container():
        locked_panel(PENDING_RUN[0])
    run(PENDING_RUN[0], recompute=PENDING_RUN[1] == "again")
settings = sidebar(slot.container())  # unlocked again after a prune, in the same run (its log stays shown)
if REQUESTED and not BUSY:
    st.session_state[PENDING] = (settings, REQUESTED)
    st.rerun()
stopped = st.session_state.get(INTERRUPTED)
if stopped:
    st.warning(f"The prune of **{stopped['label']}** was interrupted: leaving or changing the page while it "
               "runs stops it, and nothing of it was stored. Press **Prune** to run it again.",
               icon=":material/warning:")
key = st.session_state.get("run_key")
res = load_run(key) if key else None
if res:
    differ = differences(res["config"], settings)
    if differ:
        st.info(f"Shown below: the stored run of **{describe(res['config'])}**. The sidebar differs ({differ}): "
                "press **Prune** to run what the sidebar says.", icon=":material/info:")
    show(res)
else:
    st.info("Choose a method and a sparsity in the sidebar, then press **Prune**. "
            "The default model is MiniLM-L6 fine-tuned on the chosen task; it runs on this machine's CPU.")
