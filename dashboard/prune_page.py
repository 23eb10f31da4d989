"""Prune page: pick a model, task, method, pattern and sparsity; watch the pruning happen."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pruning_core import PrunescopeError, data, methods
from pruning_core.arch import KIND_LABELS
from pruning_core.config import ExperimentConfig
from pruning_core.engine import BlockRecord, LayerRecord
from pruning_core.experiment import run_experiment
from pruning_core.masks import PATTERNS, parse_pattern

from dashboard import charts

st.title("✂️ Prune a model")

with st.sidebar:
    st.header("Experiment")
    model = st.text_input("Model", "default", help="default = the shipped MiniLM-L6 for the task; "
                          "or a local folder / hub id")
    task = st.selectbox("Task", list(data.SHIPPED) + list(data.HUB), key="task")
    method = st.selectbox("Method", list(methods.METHODS), index=2, key="method")
    pattern = st.selectbox("Pattern", PATTERNS, key="pattern")
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
        options["blocksize"] = st.number_input("Block size", 1, 4096, 128, key="blocksize")
        options["percdamp"] = st.number_input("Dampening (fraction of mean diag H)", 0.0, 0.99, 0.01,
                                              format="%.3f", key="percdamp")
    go = st.button("Prune", type="primary", use_container_width=True)

if go:
    try:
        cfg = ExperimentConfig.create(model=model, task=task, method=method, sparsity=float(sparsity),
                                      pattern=pattern, calib_size=int(calib_size), seq_len=int(seq_len),
                                      seed=int(seed), eval_size=int(eval_size) or None, options=options)
        layers, blocks = [], []
        with st.status("Pruning...", expanded=True) as status:
            chart_slot = st.empty()

            def on_record(rec):
                if isinstance(rec, LayerRecord):
                    layers.append(rec.__dict__)
                    st.write(f"`{rec.name}` ({KIND_LABELS[rec.kind]}): sparsity {rec.achieved_sparsity:.3f}, "
                             f"local error {rec.local_error:.4g}, cumulative error {rec.cumulative_error:.4g}")
                elif isinstance(rec, BlockRecord):
                    blocks.append(rec.__dict__)
                    chart_slot.plotly_chart(charts.cumulative_error_line(blocks), key=f"live{len(blocks)}")

            result = run_experiment(cfg, on_record=on_record, on_stage=lambda s: status.update(label=s + "..."))
            status.update(label=f"Done in {result.prune.prune_seconds:.1f} s", state="complete", expanded=False)
        st.session_state["result"] = result.to_json()
    except PrunescopeError as exc:
        st.error(str(exc))

res = st.session_state.get("result")
if res:
    c = res["config"]
    st.subheader(f"{c['method']} · {c['pattern']} · {c['sparsity']:.0%} on {c['task']}")
    cols = st.columns(4)
    cols[0].metric("Accuracy", f"{res['accuracy']:.3f}", f"{res['accuracy'] - res['dense_accuracy']:+.3f} vs dense",
                   help=f"clean accuracy on {res['eval_examples']} test examples; dense {res['dense_accuracy']:.3f}")
    cols[1].metric("Achieved sparsity", f"{res['achieved_sparsity']:.3f}",
                   help="zeros / weights over the pruned linear modules")
    cols[2].metric("Prune time", f"{res['prune_seconds']:.1f} s", help="pruning only, evaluation excluded")
    cols[3].metric("Peak memory", f"{res['peak_memory_mb']:.0f} MB", help="extra memory at the peak of pruning")
    left, right = st.columns(2)
    left.plotly_chart(charts.local_error_bars(res["layers"]), key="local")
    right.plotly_chart(charts.cumulative_error_line(res["blocks"]), key="cum")
    table = pd.DataFrame(res["layers"])[["block", "kind", "name", "achieved_sparsity", "local_error",
                                          "cumulative_error", "seconds"]]
    table["kind"] = table["kind"].map(KIND_LABELS)
    st.dataframe(table, hide_index=True, use_container_width=True)
