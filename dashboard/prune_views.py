"""The Prune page's views of a stored run: cards and charts, structured (units kept, hidden width, training
loss, the method's log) or unstructured (errors per module, reconstruction, masks and weights), then its
speed and export sections."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import card_notes, charts, diagram_view, flips_view, presentation
from dashboard.common import load_mask
from dashboard.prune_actions import options_text
from dashboard.run_actions import export_section, speed_section
from pruning_core.prune import methods
from pruning_core.model.arch import KIND_LABELS
from pruning_core.prune.masks import parse_pattern


def show(res: dict) -> None:
    """A stored run's views: cards and charts (structured or unstructured), then speed and export."""
    c = res["config"]
    presentation.note_task(c["task"])  # the chance level of its accuracy charts in presentation mode
    if charts.is_structured(res):
        meaning = res["structure"].get("budget_meaning") or methods.METHODS[c["method"]].budget_meaning
        st.subheader(f"{c['method']} · structured · budget {c['sparsity']:.0%} ({meaning}) on {c['task']} "
                     f"({c['model']})")
    else:
        st.subheader(f"{c['method']} · {c['pattern']} · {c['sparsity']:.0%} on {c['task']} ({c['model']})")
    opts = c.get("options") or {}
    if opts:
        st.caption("Options: " + options_text(opts))
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
    top[1].metric("Pruned accuracy", f"{res['accuracy']:.3f}", card_notes.delta(res['accuracy'] - res['dense_accuracy']),
                  help="clean accuracy of the smaller model on the same examples")
    on_flops = "FLOPs" in (s.get("budget_meaning") or "")
    top[2].metric("FLOPs removed", f"{flops:.3f}", card_notes.delta(flops - c['sparsity'], "+.3f", " vs budget") if on_flops else None,
                  delta_color="off",
                  help=f"achieved: 1 - {s['flops']:.3g} / {s['flops_dense']:.3g} encoder FLOPs per sequence of "
                       f"{s['seq_len']:.1f} tokens (the calibration texts' average length); budget: {c['sparsity']:g}"
                       f" ({s.get('budget_meaning')})")
    top[3].metric("Prune time", f"{res['prune_seconds']:.1f} s", help="pruning only, evaluation excluded")
    total = res.get("peak_total_mb")
    top[4].metric("Peak memory", f"{total:.0f} MB" if total else "n/a",
                  help=f"process memory at the peak of pruning; it grew by {res['peak_memory_mb']:.0f} MB")
    if held is not None and calib is not None:
        top[5].metric("Held-out error", f"{held:.3g}", card_notes.delta(held - calib, "+.3g", " vs calibration"), delta_color="inverse",
                      help=f"cumulative error at the last block on {res.get('calib_examples', 'as many')} held-out "
                           f"validation texts (calibration: {calib:.3g}); never used to choose units or fit weights")
    heads = sum(map(sum, s["heads"]))
    n_heads = sum(map(len, s["heads"]))
    width = charts.intermediate_size(s)
    second = st.columns(4)  # the totals in the labels: the values stay short enough to show whole
    second[0].metric(f"Encoder parameters: {_millions(s['params_dense'])} →", _millions(s["params"]),
                     card_notes.delta(s['params'] / s['params_dense'] - 1, "+.1%"), delta_color="inverse",
                     help="weights and biases of the encoder's linear layers, dense → pruned (embeddings and "
                          "classifier not counted); the units are removed, not zeroed")
    second[1].metric(f"Heads kept (of {n_heads})", f"{heads}", help="attention heads left in the encoder")
    second[2].metric(f"FFN neurons kept (of {width * len(s['neurons_kept']):,})", f"{sum(s['neurons_kept']):,}",
                     help="intermediate neurons left in the FFNs of all layers")
    second[3].metric(f"Hidden channels kept (of {s['hidden_size']})", f"{s['hidden_kept']}",
                     help="width of the residual stream (PAT removes channels; kprune and kwon keep all)")
    card_notes.show(res, top[0], top[1])  # accuracy intervals, run environment


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
    elif s["hidden_kept"] < s["hidden_size"]:
        st.caption(f"Every attention head and FFN neuron is kept: {c['method']} narrows the hidden width (the "
                   f"residual stream) from {s['hidden_size']} to {s['hidden_kept']} channels in every layer at once, "
                   "so every matrix of the encoder gets smaller.")
    else:
        st.caption(f"Nothing was removed at this budget: every attention head, FFN neuron and all "
                   f"{s['hidden_size']} hidden channels are kept, so this model is the dense one.")
    diagram_view.show(res)
    a, b = st.columns(2)
    a.plotly_chart(charts.cumulative_error_line(res["blocks"]), key="cum")
    a.caption(card_notes.ERRORS_NOTE)
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
    flips_view.show(res)


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
    cols[1].metric("Pruned accuracy", f"{res['accuracy']:.3f}", card_notes.delta(res['accuracy'] - res['dense_accuracy']),
                   help="clean accuracy of the pruned model on the same examples")
    cols[2].metric("Achieved sparsity", f"{res['achieved_sparsity']:.3f}",
                   help="zeros / weights over the pruned linear modules (not just the requested number)")
    cols[3].metric("Prune time", f"{res['prune_seconds']:.1f} s", help="pruning only, evaluation excluded")
    total = res.get("peak_total_mb")
    cols[4].metric("Peak memory", f"{total:.0f} MB" if total else "n/a",
                   help=f"process memory at the peak of pruning; it grew by {res['peak_memory_mb']:.0f} MB "
                        "while pruning (freed memory the process already held is reused)")
    if held is not None:
        cols[5].metric("Held-out error", f"{held:.3g}", card_notes.delta(held - calib, "+.3g", " vs calibration"), delta_color="inverse",
                       help=f"cumulative error at the last block on {res.get('calib_examples', 'as many')} held-out "
                            f"validation texts (calibration: {calib:.3g}); never used to choose masks or fit "
                            "weights, so a held-out error well above the calibration error means overfitting")
    card_notes.show(res, cols[0], cols[1])  # accuracy intervals, run environment
    left, right = st.columns(2)
    left.plotly_chart(charts.local_error_bars(res["layers"]), key="local")
    right.plotly_chart(charts.cumulative_error_line(res["blocks"]), key="cum")
    st.caption(card_notes.ERRORS_NOTE)
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

    diagram_view.show(res)
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
    flips_view.show(res)
