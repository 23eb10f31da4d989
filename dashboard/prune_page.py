"""Prune page: pick a model, task, method, pattern and sparsity; watch the pruning happen."""

from __future__ import annotations

import streamlit as st

st.title("Prune a model")  # painted before the heavy imports below (torch, transformers) finish

import pandas as pd  # noqa: E402

from dashboard import charts  # noqa: E402
from dashboard.common import get_store, load_mask, load_run, open_run
from pruning_core import PrunescopeError, data, methods
from pruning_core.arch import KIND_LABELS, arch_of
from pruning_core.config import ExperimentConfig
from pruning_core.engine import BlockRecord, LayerRecord
from pruning_core.experiment import load_dense, run_experiment
from pruning_core.masks import PATTERNS, parse_pattern
from pruning_core.methods.reconstruction import BASES, MODES
from pruning_core.models import resolve_device


MODE_HELP = {"lr": "LR, layer-wise: no training; the base method's own result (SparseGPT's update is LR)",
             "br": "BR, block-wise: train each block towards the dense block applied to the pruned inputs",
             "gp": "GP, global propagation: train towards the dense model's block output (dense inputs), so "
                   "upstream error is corrected too",
             "cr": "CR, cross-block: pairs of adjacent blocks trained jointly towards the dense output of the pair"}


def akrp_options() -> dict:
    """The sidebar knobs of AKRP (robust knowledge-retention pruning)."""
    return {
        "lambda0": float(st.number_input(
            "Ridge λ₀ (× mean diag XᵀX)", 1e-12, 1.0, 1e-4, step=1e-5, format="%.1e", key="lambda0",
            help="adaptive rectification: w* = (XᵀX + λ·mean(diag) I)⁻¹ Xᵀ(Y_dense − b) with X the pruned "
                 "model's inputs; λ starts here and is raised tenfold while a fit on half of the calibration "
                 "examples reconstructs the other half better")),
        "percdamp": float(st.number_input(
            "Dampening (× mean diag H)", 0.0, 0.99, 0.01, format="%.3f", key="akrp_percdamp",
            help="the OBS / SparseGPT solver that prunes the rectified weights: H = XᵀX dampened by this")),
        "blocksize": int(st.number_input("Block size", 1, 4096, 128, key="akrp_blocksize",
                                         help="columns pruned per block by the OBS solver (lazy batched update)")),
    }


def reconstruction_options() -> dict:
    """The sidebar knobs of reconstruction error minimisation (mask by a base method, then train)."""
    base = st.selectbox("Mask chosen by", BASES, index=BASES.index("sparsegpt"), key="rec_base",
                        help="the base method picks every block's mask (sparsegpt also applies its own update); "
                             "training then only changes the kept weights")
    mode = st.radio("Reconstruction target", MODES, index=MODES.index("br"), horizontal=True, key="rec_mode",
                    format_func=str.upper, help="  \n".join(MODE_HELP[m] for m in MODES))
    train = mode != "lr"
    epochs = st.number_input("Epochs", 1, 1000, 10, key="rec_epochs", disabled=not train,
                             help="AdamW passes over the calibration set per block (or pair of blocks)")
    lr = st.number_input("Learning rate", 1e-7, 0.99, 2e-4, step=1e-5, format="%.1e", key="rec_lr",
                         disabled=not train, help="AdamW learning rate (weight decay 0); masks stay fixed")
    gen = st.number_input("Self-generated texts", 0, 4096, 0, key="rec_selfgen", disabled=not train,
                          help="texts generated from the model itself (resampled from the calibration texts), "
                               "added to the set the weights are trained on; never to the mask choice")
    if not train:  # LR trains nothing: the training knobs stay at their defaults, so equal runs share a key
        st.caption(MODE_HELP[mode] + ".")
        return {"base": base, "mode": mode}
    st.caption(f"{MODE_HELP[mode]}. Trains for {int(epochs)} epoch{'s' * (epochs != 1)} per block: slower than "
               "the one-shot methods (10 epochs at 128 calibration texts: about a minute on a CPU).")
    return {"base": base, "mode": mode, "epochs": int(epochs), "lr": float(lr), "self_generated": int(gen)}


def sidebar() -> tuple[ExperimentConfig | None, bool, bool]:
    with st.sidebar:
        st.header("Experiment")
        model = st.text_input("Model", "default", key="model",
                              help="default = the shipped MiniLM-L6 for the task; or a local folder / hub id")
        task = st.selectbox("Task", list(data.SHIPPED) + list(data.HUB), key="task",
                            help="or type a CSV/TSV path below")
        task_path = st.text_input("…or a local CSV/TSV (text,label)", "", key="task_path")
        method = st.selectbox("Method", list(methods.METHODS), index=2, key="method",
                              help="; ".join(f"{n}: {c.paper}" for n, c in methods.METHODS.items()))
        pattern = st.selectbox("Pattern", PATTERNS, key="pattern",
                               help="unstructured: any weight; N:M: at most N non-zeros in every M inputs of a row")
        nm = parse_pattern(pattern).sparsity
        if nm is not None:
            sparsity = nm
            st.caption(f"{pattern} fixes the sparsity at {nm:.0%}")
        else:
            sparsity = st.slider("Sparsity", 0.0, 0.95, 0.5, 0.05, key="sparsity")
        calib_size = st.number_input("Calibration examples", 1, 4096, 64, key="calib")
        seq_len = st.number_input("Calibration sequence length", 8, 512, 64, key="seq_len")
        eval_size = st.number_input("Evaluation examples (0 = whole test split)", 0, 100000, 500, key="eval")
        seed = st.number_input("Seed", 0, 2**31 - 1, 0, key="seed")
        options = {}
        if method == "magnitude":
            options["scope"] = st.radio("Threshold scope", ["layer", "global"], horizontal=True, key="scope")
        if method == "sparsegpt":
            options["blocksize"] = int(st.number_input("Block size", 1, 4096, 128, key="blocksize"))
            options["percdamp"] = float(st.number_input("Dampening (× mean diag H)", 0.0, 0.99, 0.01,
                                                        format="%.3f", key="percdamp"))
        if method == "akrp":
            options.update(akrp_options())
        if method == "reconstruction":
            options.update(reconstruction_options())
        c1, c2 = st.columns(2)
        go = c1.button("Prune", type="primary", width="stretch")
        again = c2.button("Recompute", width="stretch", help="prune again even if this run is stored")
    if not (go or again):
        return None, False, False
    try:
        cfg = ExperimentConfig.create(model=model.strip(), task=task_path.strip() or task, method=method,
                                      sparsity=float(sparsity), pattern=pattern, calib_size=int(calib_size),
                                      seq_len=int(seq_len), seed=int(seed), eval_size=int(eval_size) or None,
                                      options=options)
    except PrunescopeError as exc:
        st.error(str(exc))
        return None, False, False
    return cfg, True, again


def run(cfg: ExperimentConfig, recompute: bool) -> None:
    store = get_store()
    if not recompute and store.has(cfg.key()):
        open_run(cfg.key())
        st.toast("Loaded the stored run (Recompute prunes again)")
        return
    layers, blocks = [], []
    try:
        with st.status("Loading the model...", expanded=True) as status:
            net, _ = load_dense(cfg.model, cfg.task, str(resolve_device(cfg.device)))
            n_blocks = len(arch_of(net).blocks(net))
            progress = st.progress(0.0)
            live = st.empty()

            def on_record(rec):
                if isinstance(rec, LayerRecord):
                    layers.append(rec.__dict__)
                    st.write(f"`{rec.name}` ({KIND_LABELS[rec.kind]}): sparsity {rec.achieved_sparsity:.3f}, "
                             f"local error {rec.local_error:.4g}, cumulative error {rec.cumulative_error:.4g}")
                elif isinstance(rec, BlockRecord):
                    blocks.append(rec.__dict__)
                    if rec.refine_loss:
                        st.write(f"block {rec.block}: reconstruction loss {rec.refine_loss[0]:.4g} → "
                                 f"{rec.refine_loss[-1]:.4g} over {len(rec.refine_loss)} epochs")
                    progress.progress(len(blocks) / n_blocks, f"block {rec.block + 1} of {n_blocks}")
                    live.plotly_chart(charts.cumulative_error_line(blocks), key=f"live{len(blocks)}")

            # expanded=True on every update: a label-only update collapses the status (Streamlit 1.67),
            # which would hide the live progress and charts below
            res = run_experiment(cfg, on_record=on_record,
                                 on_stage=lambda s: status.update(label=s + "...", expanded=True))
            out = res.to_json()
            store.save(out, res.prune.masks)
            load_run.clear()
            load_mask.clear()
            status.update(label=f"Pruned in {res.prune.prune_seconds:.1f} s", state="complete", expanded=False)
        open_run(cfg.key())
    except PrunescopeError as exc:
        st.error(str(exc))
    except Exception as exc:  # a live demo never shows a traceback; the message still says what broke
        st.error(f"Pruning failed ({type(exc).__name__}): {exc}")


def show(res: dict) -> None:
    c = res["config"]
    st.subheader(f"{c['method']} · {c['pattern']} · {c['sparsity']:.0%} on {c['task']} ({c['model']})")
    opts = c.get("options") or {}
    if opts:
        st.caption("Options: " + ", ".join(f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}"
                                           for k, v in sorted(opts.items())))
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


cfg, go, again = sidebar()
if go:
    run(cfg, recompute=again)
key = st.session_state.get("run_key")
res = load_run(key) if key else None
if res:
    show(res)
elif not go:
    st.info("Choose a method and a sparsity in the sidebar, then press **Prune**. "
            "The default model is MiniLM-L6 fine-tuned on the chosen task; it runs on this machine's CPU.")
