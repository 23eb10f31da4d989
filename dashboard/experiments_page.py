"""Experiments page: every stored run; filter, open in the Prune views, delete, download."""

from __future__ import annotations

import datetime as dt
import io
import json

import streamlit as st

from dashboard import charts
from dashboard.common import demo_imported, get_store, load_mask, load_run, open_run
from dashboard.diff_link import compare_two_button
from dashboard.run_actions import export_section
from dashboard.run_table import results_download, runs_view
from pruning_core import PrunescopeError
from pruning_core.storage import results



def flops_removed(keys, patterns) -> list[float | None]:
    """The achieved FLOPs reduction of every structured run (read from its stored record); None for the others."""
    return [charts.flops_reduction(load_run(k) or {}) if p == "structured" else None for k, p in zip(keys, patterns)]


def run_label(key: str, r) -> str:
    """'wanda 2:4 50% · task · model · key', or 'kwon structured, budget 40% · ...' for structured runs."""
    what = f"{r.method} structured, budget {r.sparsity:.0%}" if r.pattern == "structured" else \
        f"{r.method} {r.pattern} {r.sparsity:.0%}"
    return f"{what} · {r.task} · {r.model} · {key}"


st.title("Experiments")
store = get_store()
demo_imported()
runs = store.runs()
st.caption(f"{len(runs)} stored runs in `{store.path}`")
if runs.empty:
    st.info("No runs yet: prune something on the Prune page.")
    st.stop()

f1, f2, f3 = st.columns(3)
model = f1.selectbox("Model", ["all"] + sorted(runs["model"].unique()), key="f_model")
task = f2.selectbox("Task", ["all"] + sorted(runs["task"].unique()), key="f_task")
method = f3.selectbox("Method", ["all"] + sorted(runs["method"].unique()), key="f_method")
view = runs
for col, val in (("model", model), ("task", task), ("method", method)):
    if val != "all":
        view = view[view[col] == val]
try:
    flat = results.runs_table(store)
except PrunescopeError as exc:
    st.error(str(exc))
    flat = None
view = runs_view(view, flat)
view.insert(view.columns.get_loc("achieved_sparsity") + 1, "flops_reduction",
            flops_removed(view["key"], view["pattern"]))
st.dataframe(view, hide_index=True, width="stretch", key="runs_table", on_select="rerun", selection_mode="multi-row",
             column_config={"key": st.column_config.TextColumn("key", width="medium"),
                            "sparsity": st.column_config.NumberColumn(
                                "sparsity", help="requested sparsity; for structured runs the method's budget "
                                                 "(kprune, kwon: FLOPs removed; pat: hidden channels removed)"),
                            "achieved_sparsity": st.column_config.NumberColumn(
                                "achieved_sparsity", help="zeros / weights of the pruned modules; for structured "
                                                          "runs, encoder linear parameters removed"),
                            "flops_reduction": st.column_config.NumberColumn(
                                "flops_reduction", format="%.3f",
                                help="structured runs: encoder FLOPs removed (achieved); zeros of unstructured "
                                     "runs remove none on dense kernels"),
                            "demo": st.column_config.CheckboxColumn(
                                "demo", help="a shipped demo run (assets/demo), imported so Compare shows full curves; "
                                             "listed after your own runs"),
                            "created": st.column_config.TextColumn(
                                "created", width="medium",  # wide enough for the whole date and time
                                help="when the run was made (empty for the shipped demo runs)"),
                            "cpu": st.column_config.TextColumn("cpu", help="the processor the run was made on"),
                            "threads": st.column_config.NumberColumn("threads", help="torch threads while pruning"),
                            "load_per_core": st.column_config.NumberColumn(
                                "load_per_core", format="%.2f",
                                help="the machine's 1-minute load per core when the run started: a prune time "
                                     "measured on a busy machine reads slower")})
compare_two_button(view, st.session_state["runs_table"]["selection"]["rows"])  # two ticked rows -> Run vs run
st.download_button("Download table (CSV)", view.to_csv(index=False), "prunescope_runs.csv", "text/csv",
                   key="dl_csv", help="the table above, as shown (filters applied)")


def parquet_bytes(df) -> bytes | None:
    """`df` as Parquet, or None without a Parquet engine (pyarrow)."""
    buf = io.BytesIO()
    try:
        df.to_parquet(buf, index=False)
    except ImportError:
        return None
    return buf.getvalue()


st.markdown("##### Results table")
if flat is not None:
    flat = results_download(flat, view)
    st.caption(f"{len(flat)} runs (the table above, filters applied), {len(flat.columns)} columns: each run's "
               "config, headline measures, cost and environment, and the measures of every finished attack on it "
               "(the table the results command writes).")
    d1, d2 = st.columns(2)
    d1.download_button("Results (CSV)", results.write_table(flat, None, "csv"), "prunescope_results.csv", "text/csv",
                       key="dl_results_csv", icon=":material/download:", width="stretch")
    parquet = parquet_bytes(flat)
    if parquet is None:
        d2.caption("Parquet needs the pyarrow package installed on the server.")
    else:
        d2.download_button("Results (Parquet)", parquet, "prunescope_results.parquet", "application/octet-stream",
                           key="dl_results_parquet", icon=":material/download:", width="stretch")
failed = store.failures()
if not failed.empty:
    with st.expander(f"Failed configs ({len(failed)})", icon=":material/error:"):
        st.caption("Recorded by sweeps, and by prunes stopped by leaving the Prune page; a later success clears a "
                   "failure. Retry a sweep's configs from the Compare page (stored ones are skipped).")
        shown = failed.assign(created=[dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")
                                       for t in failed["created"]],
                              error=[e.strip().splitlines()[-1] if e and e.strip() else e for e in failed["error"]])
        st.dataframe(shown.drop(columns=["config"]), hide_index=True, width="stretch")

if view.empty:
    st.stop()
labels = {k: run_label(k, r) for k, r in zip(view["key"], view.itertuples())}
key = st.selectbox("Run", list(labels), format_func=labels.get, key="pick_run")
c1, c2, c3 = st.columns(3)
run = load_run(key)
if c1.button("Open in Prune views", key="open", width="stretch",
             help="show this run on the Prune page, its sidebar set to this run's settings"):
    open_run(key, run["config"] if run else None)
    st.switch_page("prune_page.py")
c2.download_button("Download run (JSON)", json.dumps(run, indent=1), f"prunescope_{key}.json", "application/json",
                   key="dl_json", width="stretch")
if c3.button("Delete run", key="delete", width="stretch"):
    st.session_state["confirm_delete"] = key
if st.session_state.get("confirm_delete") == key:
    st.warning(f"Delete run {key} and its masks? This cannot be undone.")
    if st.button("Yes, delete", key="confirm", type="primary"):
        store.delete(key)
        load_run.clear()
        load_mask.clear()
        st.session_state.pop("confirm_delete", None)
        if st.session_state.get("run_key") == key:
            st.session_state.pop("run_key")
        st.rerun()
export_section(run, prefix="exp")
