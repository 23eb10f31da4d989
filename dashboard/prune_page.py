"""Prune page: pick a model, task, method, pattern and sparsity; watch the pruning happen.

The sidebar's values live in session state (common.kept): they survive a visit to another page, "Open in
Prune views" sets them to the opened run, and Prune runs exactly what they show. While a prune runs, the
sidebar is locked (a second click cannot restart it); leaving the page stops the prune, and the next run of
any page says so (common.note_interrupted)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re

import streamlit as st

st.title("Prune a model")  # painted before the heavy imports below (torch, transformers) finish

import pandas as pd  # noqa: E402

from dashboard import charts  # noqa: E402
from dashboard.common import (INFLIGHT, INTERRUPTED, TASK_SOURCES, UPLOAD, error_text, get_store, kept,  # noqa: E402
                              load_mask, load_run, note_interrupted, open_run, remember_settings, remembered_options,
                              restore_settings)
from dashboard.method_form import method_form  # noqa: E402
from dashboard.run_actions import export_section, speed_section  # noqa: E402
from pruning_core import PrunescopeError
from pruning_core.data import tasks as data
from pruning_core.prune import methods
from pruning_core.storage.access import check_page_path, uploads_dir  # noqa: E402
from pruning_core.model.arch import KIND_LABELS, arch_of  # noqa: E402
from pruning_core.experiments.config import ExperimentConfig  # noqa: E402
from pruning_core.prune.engine import BlockRecord, LayerRecord  # noqa: E402
from pruning_core.experiments.experiment import load_dense, run_experiment  # noqa: E402
from pruning_core.prune.masks import PATTERNS, parse_pattern  # noqa: E402
from pruning_core.model.models import resolve_device  # noqa: E402
from pruning_core.prune.structured.structure import StepRecord  # noqa: E402

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
UPLOAD_LIMIT_MB = 20

def budget_label(meaning: str) -> str:
    """'fraction of encoder FLOPs removed' -> 'Encoder FLOPs removed'."""
    text = meaning.removeprefix("fraction of ")
    return text[:1].upper() + text[1:]


def save_upload(name: str, content: bytes) -> str:
    """Save an uploaded CSV/TSV under the uploads folder, named by the hash of its bytes (the same file gives
    the same path, so the same run key), check that it parses as a task, and return its path. Raises
    PrunescopeError with one line that never quotes the file."""
    if len(content) > UPLOAD_LIMIT_MB * 2**20:
        raise PrunescopeError(f"the upload is {len(content) / 2**20:.1f} MB; the limit is {UPLOAD_LIMIT_MB} MB")
    stem, dot, suffix = name.rpartition(".")
    if not dot or suffix.lower() not in ("csv", "tsv"):
        raise PrunescopeError("upload a .csv or .tsv file with columns text,label")
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_")[:60] or "task"
    folder = uploads_dir()
    path = folder / f"{hashlib.sha256(content).hexdigest()[:16]}-{safe}.{suffix.lower()}"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
        tmp.write_bytes(content)
        os.replace(tmp, path)  # whole or absent: never a half-written upload under the final name
    try:
        data.load(str(path))
    except Exception as exc:
        path.unlink(missing_ok=True)
        if isinstance(exc, PrunescopeError):
            raise PrunescopeError(f"the uploaded file {name!r} is not a usable task: "
                                  + str(exc).replace(str(path), "it")) from None
        raise PrunescopeError(f"the uploaded file {name!r} is not a readable CSV/TSV with columns text,label "
                              f"({type(exc).__name__})") from None
    return str(path)


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


def make_config(s: dict) -> ExperimentConfig:
    """The config the sidebar shows; its local paths checked against the allowed folders before anything
    reads them."""
    if not s["model"]:
        raise PrunescopeError("choose a model: 'default', a model folder or a hub id")
    if not s["task"]:
        raise PrunescopeError("choose a task: type a CSV/TSV path or upload one, or pick a named task")
    check_page_path(s["model"])
    check_page_path(s["task"])
    return ExperimentConfig.create(**s)


def comparable(config: dict) -> dict:
    """A config's fields that the sidebar sets, the method's options completed with their defaults."""
    out = {k: config.get(k) for k in ("model", "task", "method", "pattern", "calib_size", "seq_len", "seed",
                                      "eval_size")}
    out["sparsity"] = round(float(config.get("sparsity") or 0.0), 6)
    try:
        out["options"] = dataclasses.asdict(methods.get(out["method"]).options(config.get("options") or {}))
    except Exception:  # noqa: BLE001 - an old or foreign run: compare its options as stored
        out["options"] = dict(config.get("options") or {})
    return out


def describe(c: dict) -> str:
    """'wanda · 2:4 · 50% on rotten_tomatoes (default)'."""
    what = f"budget {c['sparsity']:.0%}" if c["pattern"] == "structured" else f"{c['pattern']} · {c['sparsity']:.0%}"
    return f"{c['method']} · {what} on {c['task']} ({c['model']})"


def step_line(rec: StepRecord) -> str:
    """One progress line of a structured method's step."""
    parts = [f"step {rec.step} of {rec.total}: {rec.label}"]
    if rec.flops_kept is not None:
        parts.append(f"FLOPs kept {rec.flops_kept:.1%}")
    if rec.loss is not None:
        parts.append(f"loss {rec.loss:.4g}")
    return " · ".join(parts)


def locked_panel(settings: dict) -> None:
    """The sidebar while a prune runs: what runs, and a disabled button (nothing to change or click twice)."""
    st.header("Experiment")
    opts = ", ".join(f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}"
                     for k, v in sorted(settings["options"].items()))
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
    layers, blocks, steps = [], [], []
    st.session_state[INFLIGHT] = {"key": key, "label": describe(cfg.to_dict()), "config": cfg.to_dict()}
    try:
        with st.status("Loading the model...", expanded=True) as status:
            net, _ = load_dense(cfg.model, cfg.task, str(resolve_device(cfg.device)))
            n_blocks = len(arch_of(net).blocks(net))
            progress = st.progress(0.0)
            live_loss = st.empty()
            live = st.empty()

            def on_record(rec):
                if isinstance(rec, StepRecord):
                    steps.append(rec.__dict__)
                    progress.progress(min(rec.step / rec.total, 1.0), f"step {rec.step} of {rec.total}")
                    st.write(step_line(rec))
                    if rec.loss is not None:
                        live_loss.plotly_chart(charts.training_loss_line(steps), key=f"live_loss{len(steps)}")
                elif isinstance(rec, LayerRecord):
                    layers.append(rec.__dict__)
                    st.write(f"`{rec.name}` ({KIND_LABELS[rec.kind]}): sparsity {rec.achieved_sparsity:.3f}, "
                             f"local error {rec.local_error:.4g}, cumulative error {rec.cumulative_error:.4g}")
                elif isinstance(rec, BlockRecord):
                    blocks.append(rec.__dict__)
                    if rec.refine_loss:
                        st.write(f"block {rec.block}: reconstruction loss {rec.refine_loss[0]:.4g} → "
                                 f"{rec.refine_loss[-1]:.4g} over {len(rec.refine_loss)} epochs")
                    what = "error measured at block" if steps else "block"
                    progress.progress(len(blocks) / n_blocks, f"{what} {rec.block + 1} of {n_blocks}")
                    live.plotly_chart(charts.cumulative_error_line(blocks), key=f"live{len(blocks)}")

            # expanded=True on every update: a label-only update collapses the status (Streamlit 1.67),
            # which would hide the live progress and charts below
            res = run_experiment(cfg, on_record=on_record,
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


def show(res: dict) -> None:
    """A stored run's views: cards and charts (structured or unstructured), then speed and export."""
    c = res["config"]
    if charts.is_structured(res):
        meaning = res["structure"].get("budget_meaning") or methods.METHODS[c["method"]].budget_meaning
        st.subheader(f"{c['method']} · structured · budget {c['sparsity']:.0%} ({meaning}) on {c['task']} "
                     f"({c['model']})")
    else:
        st.subheader(f"{c['method']} · {c['pattern']} · {c['sparsity']:.0%} on {c['task']} ({c['model']})")
    opts = c.get("options") or {}
    if opts:
        st.caption("Options: " + ", ".join(f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}"
                                           for k, v in sorted(opts.items())))
    if charts.is_structured(res):
        show_structured(res)
    else:
        show_unstructured(res)
    speed_section(res, prefix="prune")
    export_section(res, prefix="prune")


def _millions(n: float) -> str:
    return f"{n / 1e6:.2f}M"


def structured_cards(res: dict) -> None:
    """Two rows of cards: accuracy, FLOPs, parameters, time, held-out error; then the units kept."""
    s, c = res["structure"], res["config"]
    flops = charts.flops_reduction(res)
    held = charts.run_heldout_error(res)
    calib = res["blocks"][-1]["cumulative_error"] if res["blocks"] else None
    top = st.columns(6)
    top[0].metric("Dense accuracy", f"{res['dense_accuracy']:.3f}",
                  help=f"clean accuracy of the unpruned model on {res['eval_examples']} test examples")
    top[1].metric("Pruned accuracy", f"{res['accuracy']:.3f}", f"{res['accuracy'] - res['dense_accuracy']:+.3f}",
                  help="clean accuracy of the smaller model on the same examples")
    on_flops = "FLOPs" in (s.get("budget_meaning") or "")
    top[2].metric("FLOPs removed", f"{flops:.3f}", f"{flops - c['sparsity']:+.3f} vs budget" if on_flops else None,
                  delta_color="off",
                  help=f"achieved: 1 - {s['flops']:.3g} / {s['flops_dense']:.3g} encoder FLOPs per sequence of "
                       f"{s['seq_len']:.1f} tokens (the calibration texts' average length); budget: {c['sparsity']:g}"
                       f" ({s.get('budget_meaning')})")
    top[3].metric("Prune time", f"{res['prune_seconds']:.1f} s", help="pruning only, evaluation excluded")
    total = res.get("peak_total_mb")
    top[4].metric("Peak memory", f"{total:.0f} MB" if total else "n/a",
                  help=f"process memory at the peak of pruning; it grew by {res['peak_memory_mb']:.0f} MB")
    if held is not None and calib is not None:
        top[5].metric("Held-out error", f"{held:.3g}", f"{held - calib:+.3g} vs calibration", delta_color="inverse",
                      help=f"cumulative error at the last block on {res.get('calib_examples', 'as many')} held-out "
                           f"validation texts (calibration: {calib:.3g}); never used to choose units or fit weights")
    heads = sum(map(sum, s["heads"]))
    n_heads = sum(map(len, s["heads"]))
    width = charts.intermediate_size(s)
    second = st.columns(4)  # the totals in the labels: the values stay short enough to show whole
    second[0].metric(f"Encoder parameters: {_millions(s['params_dense'])} →", _millions(s["params"]),
                     f"{s['params'] / s['params_dense'] - 1:+.1%}", delta_color="inverse",
                     help="weights and biases of the encoder's linear layers, dense → pruned (embeddings and "
                          "classifier not counted); the units are removed, not zeroed")
    second[1].metric(f"Heads kept (of {n_heads})", f"{heads}", help="attention heads left in the encoder")
    second[2].metric(f"FFN neurons kept (of {width * len(s['neurons_kept']):,})", f"{sum(s['neurons_kept']):,}",
                     help="intermediate neurons left in the FFNs of all layers")
    second[3].metric(f"Hidden channels kept (of {s['hidden_size']})", f"{s['hidden_kept']}",
                     help="width of the residual stream (PAT removes channels; kprune and kwon keep all)")


def show_structured(res: dict) -> None:
    """Cards, the kept units (head grid, neurons per layer, FFN keep map, hidden strip), cumulative error,
    the training loss (PAT) and the method's step log."""
    s, c = res["structure"], res["config"]
    structured_cards(res)
    units_removed = sum(map(sum, s["heads"])) < sum(map(len, s["heads"])) or \
        sum(s["neurons_kept"]) < charts.intermediate_size(s) * len(s["neurons_kept"])
    hidden = load_mask(res["key"], "structure.hidden")
    if hidden is not None and (c["method"] == "pat" or s["hidden_kept"] < s["hidden_size"]):
        st.plotly_chart(charts.hidden_strip(hidden), key="hidden")
    if units_removed:
        a, b = st.columns(2)
        a.plotly_chart(charts.head_grid(s), key="heads")
        b.plotly_chart(charts.kept_per_layer_bars(s), key="kept_layers")
        neurons = load_mask(res["key"], "structure.neurons")
        if neurons is None:
            st.info("This run was stored without masks: press Recompute in the sidebar to see which neurons it kept.")
        else:
            st.plotly_chart(charts.neuron_map(neurons), key="neurons")
    else:
        st.caption(f"Every attention head and FFN neuron is kept: {c['method']} narrows the hidden width (the "
                   f"residual stream) from {s['hidden_size']} to {s['hidden_kept']} channels in every layer at once, "
                   "so every matrix of the encoder gets smaller.")
    a, b = st.columns(2)
    a.plotly_chart(charts.cumulative_error_line(res["blocks"]), key="cum")
    loss = [e for e in s.get("log") or [] if "step" in e and "loss" in e]
    if loss:
        b.plotly_chart(charts.training_loss_line(loss, "Training loss per logged step"), key="train_loss")
    else:
        meth = methods.METHODS.get(c["method"])
        b.markdown(f"#### {c['method']}")
        b.markdown(f"{meth.paper if meth else ''}. Kept the heads and FFN neurons that fit "
                   f"{1 - c['sparsity']:.0%} of the dense encoder's FLOPs (counted at {s['seq_len']:.1f} tokens, "
                   "the calibration texts' average length) and removed the rest physically: the result is a "
                   "smaller dense model, not a model with zeros. The cumulative error on the left is measured "
                   "between the dense and the smaller model's block outputs.")
    tables = charts.log_tables(s.get("log") or [])
    with st.expander(f"Method log ({sum(map(len, tables))} entries)"):
        for table in tables:
            st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch")


def show_unstructured(res: dict) -> None:
    """Cards, local and cumulative error, the reconstruction loss, the mask viewer and the weight histogram."""
    c = res["config"]
    opts = c.get("options") or {}
    held = charts.run_heldout_error(res)
    calib = res["blocks"][-1]["cumulative_error"] if res["blocks"] else None
    held = held if calib is not None else None
    cols = st.columns(6 if held is not None else 5)
    cols[0].metric("Dense accuracy", f"{res['dense_accuracy']:.3f}",
                   help=f"clean accuracy of the unpruned model on {res['eval_examples']} test examples")
    cols[1].metric("Pruned accuracy", f"{res['accuracy']:.3f}", f"{res['accuracy'] - res['dense_accuracy']:+.3f}",
                   help="clean accuracy of the pruned model on the same examples")
    cols[2].metric("Achieved sparsity", f"{res['achieved_sparsity']:.3f}",
                   help="zeros / weights over the pruned linear modules (not just the requested number)")
    cols[3].metric("Prune time", f"{res['prune_seconds']:.1f} s", help="pruning only, evaluation excluded")
    total = res.get("peak_total_mb")
    cols[4].metric("Peak memory", f"{total:.0f} MB" if total else "n/a",
                   help=f"process memory at the peak of pruning; it grew by {res['peak_memory_mb']:.0f} MB "
                        "while pruning (freed memory the process already held is reused)")
    if held is not None:
        cols[5].metric("Held-out error", f"{held:.3g}", f"{held - calib:+.3g} vs calibration", delta_color="inverse",
                       help=f"cumulative error at the last block on {res.get('calib_examples', 'as many')} held-out "
                            f"validation texts (calibration: {calib:.3g}); never used to choose masks or fit "
                            "weights, so a held-out error well above the calibration error means overfitting")
    left, right = st.columns(2)
    left.plotly_chart(charts.local_error_bars(res["layers"]), key="local")
    right.plotly_chart(charts.cumulative_error_line(res["blocks"]), key="cum")
    if held is not None and calib:
        right.caption(f"Held-out / calibration at the last block: **{held / calib:.2f}×**. The held-out line is the "
                      "same error on validation texts the method never saw; a gap that grows with depth means "
                      "the pruned model fits its calibration texts better than new text.")
    if charts.has_refine_loss(res["blocks"]):
        loss_col, note = st.columns(2)
        window = 2 if opts.get("mode") == "cr" else 1
        loss_col.plotly_chart(charts.refine_loss_lines(res["blocks"], window), key="refine_loss")
        mode = str(opts.get("mode", "")).upper()
        note.markdown("#### Reconstruction")
        epochs, gen = opts.get("epochs", 0), opts.get("self_generated", 0)
        extra = f" plus {gen} self-generated texts" if gen else ""
        note.markdown(f"Masks chosen by **{opts.get('base', 'the base method')}**, then the kept weights of each "
                      f"block trained in **{mode}** mode for {epochs} epoch{'s' * (epochs != 1)} (AdamW, lr "
                      f"{opts.get('lr', 0):g}) on the calibration texts{extra}, to reduce the error to its target. "
                      "A falling training loss with a held-out error that stays high is the overfitting the "
                      "reconstruction paper warns of. "
                      f"Prune with **{opts.get('base', 'the base method')}** alone (or mode LR) at the same "
                      "settings to see how much the training changed.")
        if opts.get("mode") == "cr":
            note.caption("Cross-block: each pair of adjacent blocks is trained jointly, one loss per pair.")

    st.markdown("#### Masks and weights")
    names = [layer["name"] for layer in res["layers"]]
    name = st.selectbox("Module", names, key="mask_module",
                        format_func=lambda n: f"{n}  ({KIND_LABELS[res['layers'][names.index(n)]['kind']]})")
    mask = load_mask(res["key"], name)
    if mask is None:
        st.info("This run was stored without masks (a shipped demo run): press Recompute in the sidebar to "
                "prune it again and see its masks.")
    else:
        m = parse_pattern(c["pattern"]).m or None
        a, b = st.columns(2)
        a.plotly_chart(charts.mask_heatmap(mask, title=f"Keep-mask of {name}"), key="heat")
        rows, cols_ = mask.shape
        z1, z2 = b.columns(2)
        row0 = z1.number_input("Zoom row", 0, max(rows - 16, 0), 0, key="zoom_row")
        col0 = z2.number_input("Zoom column", 0, max(cols_ - 32, 0), 0, step=m or 1, key="zoom_col")
        b.plotly_chart(charts.mask_zoom(mask, int(row0), int(col0), m=m), key="zoom")
        a.plotly_chart(charts.keep_profiles(mask), key="profiles")
    hist = res.get("histograms", {}).get(name)
    if hist:
        (st.columns(2)[1] if mask is None else b).plotly_chart(charts.stored_histogram(hist, name), key="hist")
    table = pd.DataFrame(res["layers"])[["block", "kind", "name", "achieved_sparsity", "local_error",
                                          "cumulative_error", "seconds"]]
    table["kind"] = table["kind"].map(KIND_LABELS)
    with st.expander("Per-module table"):
        st.dataframe(table, hide_index=True, width="stretch")


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
    shown, wanted = comparable(res["config"]), comparable(settings)
    if shown != wanted:
        differ = ", ".join(k.replace("_", " ") for k in shown if shown[k] != wanted[k])
        st.info(f"Shown below: the stored run of **{describe(res['config'])}**. The sidebar differs ({differ}): "
                "press **Prune** to run what the sidebar says.", icon=":material/info:")
    show(res)
else:
    st.info("Choose a method and a sparsity in the sidebar, then press **Prune**. "
            "The default model is MiniLM-L6 fine-tuned on the chosen task; it runs on this machine's CPU.")
