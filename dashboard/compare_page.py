"""Compare page: methods x patterns over a sparsity grid; stored runs are read, missing ones computed."""

from __future__ import annotations

import streamlit as st

from dashboard import charts
from dashboard.common import demo_imported, get_store, load_mask, load_run
from pruning_core import PrunescopeError, data, methods
from pruning_core.masks import PATTERNS
from pruning_core.sweep import SPARSITIES, grid, run_grid

st.title("Compare methods")
store = get_store()
demo_imported()
with st.sidebar:
    st.header("Grid")
    task = st.selectbox("Task", list(data.SHIPPED), key="cmp_task", help="shipped tasks (each has a default model)")
    chosen = st.multiselect("Methods", list(methods.METHODS), default=list(methods.METHODS), key="cmp_methods")
    patterns = st.multiselect("Patterns", PATTERNS, default=list(PATTERNS), key="cmp_patterns")
    sparsities = st.multiselect("Sparsities", SPARSITIES, default=list(SPARSITIES), key="cmp_sparsities")
    calib_size = st.number_input("Calibration examples", 1, 4096, 128, key="cmp_calib")
    seq_len = st.number_input("Calibration sequence length", 8, 512, 64, key="cmp_seq")
    recompute = st.button("Recompute all", key="cmp_recompute",
                          help="prune every run of the grid again, even the stored ones")

try:
    configs = grid(task, chosen, patterns, sparsities, calib_size=int(calib_size), seq_len=int(seq_len))
except PrunescopeError as exc:
    st.error(str(exc))
    st.stop()
missing = [c for c in configs if not store.has(c.key())]
st.caption(f"{len(configs)} runs in the grid: {len(configs) - len(missing)} stored, {len(missing)} to compute")
todo = configs if recompute else (missing if missing and st.button(
    f"Compute the {len(missing)} missing runs", type="primary", key="cmp_run") else [])
if todo:
    bar = st.progress(0.0)
    try:
        run_grid(todo, store, recompute=recompute, on_progress=lambda i, n, c, _: bar.progress(
            i / n, f"{i}/{n}: {c.method} {c.pattern} {c.sparsity:g}"))
        load_run.clear()
        load_mask.clear()
        st.rerun()
    except PrunescopeError as exc:
        st.error(str(exc))
    except Exception as exc:  # never a traceback in a demo
        st.error(f"Computing the grid failed ({type(exc).__name__}): {exc}")
    load_run.clear()
    load_mask.clear()

results = [load_run(c.key()) for c in configs if store.has(c.key())]
if not results:
    st.info("Nothing stored for this grid yet: compute the missing runs above.")
    st.stop()
a, b = st.columns(2)
a.plotly_chart(charts.sweep_curves(results, "accuracy", "Accuracy vs sparsity", "clean accuracy"), key="c_acc")
b.plotly_chart(charts.sweep_curves(results, "final_cumulative_error", "Cumulative error at the last block",
                                   "cumulative error"), key="c_cum")
a.plotly_chart(charts.sweep_curves(results, "mean_local_error", "Mean local reconstruction error",
                                   "local error"), key="c_loc")
b.plotly_chart(charts.prune_time_bars(results), key="c_time")
