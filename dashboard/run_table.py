"""The Experiments page's tables: the stored runs as listed (the user's runs first, demo runs marked, each run's
own time and environment) and the flat results table for the download (what the list shows, ISO times)."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from pruning_core.storage.demo import demo_keys

ENV_COLUMNS = ("cpu", "threads", "load_per_core")  # from each run's stored environment


def runs_view(runs, env) -> pd.DataFrame:
    """The table the page shows: the user's runs first (newest first), then the shipped demo runs, marked in a
    `demo` column; `created` is when the run was made (ISO text; empty for demo runs, which carry no time of
    their own: the store saw them only when it imported them); the environment columns from `env` (by key)."""
    demo = runs["key"].isin(demo_keys())
    out = runs.assign(demo=demo.to_numpy(),
                      created=[None if d else dt.datetime.fromtimestamp(t).isoformat(sep=" ", timespec="seconds")
                               for t, d in zip(runs["created"], demo)])
    out = out.sort_values(["demo"], kind="stable")  # stable: newest first within each group
    if env is not None and len(env):
        out = out.merge(env[["key", *ENV_COLUMNS]], on="key", how="left")
    return out[["demo", *[c for c in out.columns if c != "demo"]]].reset_index(drop=True)


def results_download(flat, view) -> pd.DataFrame:
    """The flat results table for the download: the rows the page's table shows (filters applied), in its order,
    with `created` as ISO datetimes (empty for demo runs) and the demo marker."""
    rows = flat.set_index("key").loc[[k for k in view["key"] if k in set(flat["key"])]].reset_index()
    shown = view.set_index("key")
    rows["created"] = [shown.at[k, "created"] for k in rows["key"]]
    rows.insert(1, "demo", [bool(shown.at[k, "demo"]) for k in rows["key"]])
    return rows
