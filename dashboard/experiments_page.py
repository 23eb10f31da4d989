"""Experiments page: every stored run; filter, open in the Prune views, delete, download."""

from __future__ import annotations

import datetime as dt
import json

import streamlit as st

from dashboard.common import demo_imported, get_store, load_mask, load_run, open_run

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
view = view.assign(created=[dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M") for t in view["created"]])
st.dataframe(view, hide_index=True, width="stretch",
             column_config={"key": st.column_config.TextColumn("key", width="small")})
st.download_button("Download table (CSV)", view.to_csv(index=False), "prunescope_runs.csv", "text/csv",
                   key="dl_csv")

if view.empty:
    st.stop()
labels = {k: f"{r.method} {r.pattern} {r.sparsity:.0%} · {r.task} · {r.model} · {k}" for k, r in
          zip(view["key"], view.itertuples())}
key = st.selectbox("Run", list(labels), format_func=labels.get, key="pick_run")
c1, c2, c3 = st.columns(3)
if c1.button("Open in Prune views", key="open", width="stretch"):
    open_run(key)
    st.switch_page("prune_page.py")
run = load_run(key)
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
