"""Compare page: methods x patterns over a sparsity grid; stored runs are read, missing ones submitted as prune
jobs (one per run) whose progress the page follows, refilling the charts as runs finish."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, grid_jobs, presentation
from dashboard.diff_link import keys_from_points, open_pair
from dashboard.seeds import parse_seeds
from dashboard.common import (SHARED_SETTINGS, SHARED_WHY, demo_attacks_imported, demo_imported, get_store,
                              load_attack_row, load_mask, load_run)
from pruning_core import PrunescopeError
from pruning_core.data import tasks as data
from pruning_core.prune import methods
from pruning_core.prune.masks import PATTERNS
from pruning_core.sweeps.spec import SPARSITIES, SweepSpec, expand


def compare_spec(task: str, chosen: list[str], patterns: list[str], sparsities: list[float], calib_size: int,
                 seq_len: int, eval_size: int | None = None, seeds: tuple[int, ...] = (0,)) -> SweepSpec:
    """The grid as a sweep file would hold it: `expand` gives the page its configs (the CLI's sweep runs
    the same spec), one per seed (each seed draws its own calibration sample). Patterns are left out when
    every method is structured."""
    spec = {"name": f"compare-{task}", "models": ["default"], "tasks": [task], "methods": list(chosen),
            "sparsities": [float(s) for s in sparsities], "calib_size": int(calib_size), "seq_len": int(seq_len),
            "seed": tuple(int(s) for s in seeds)}
    if any(not methods.METHODS[m].structured for m in chosen):
        spec["patterns"] = list(patterns)
    if eval_size is not None:
        spec["eval_size"] = int(eval_size)
    return SweepSpec.of(**spec)


st.title("Compare methods")
DEFAULT_METHODS = [m for m in ("magnitude", "wanda", "sparsegpt") if m in methods.METHODS]
store = get_store()
demo_imported()
with st.sidebar:
    st.header("Grid")
    task = st.selectbox("Task", list(data.SHIPPED), key="cmp_task", help="shipped tasks (each has a default model)")
    chosen = st.multiselect("Methods", list(methods.METHODS), default=DEFAULT_METHODS, key="cmp_methods",
                            help="; ".join(f"{n}: {c.paper}" for n, c in methods.METHODS.items())
                                 + ". Each runs with its default options (reconstruction: sparsegpt masks, BR, "
                                   "10 epochs: much slower than the one-shot methods; pat: 300 training steps, "
                                   "minutes per run on a CPU)")
    patterns = st.multiselect("Patterns", PATTERNS, default=list(PATTERNS), key="cmp_patterns",
                              help="for the unstructured methods; kprune, kwon and pat remove whole units")
    sparsities = st.multiselect("Sparsities", SPARSITIES, default=list(SPARSITIES), key="cmp_sparsities",
                                help="structured methods read it as their budget: the fraction of encoder FLOPs "
                                     "removed (kprune, kwon) or of hidden channels removed (pat)")
    calib_size = st.number_input("Calibration examples", 1, 4096, SHARED_SETTINGS["calib"], key="cmp_calib")
    seq_len = st.number_input("Calibration sequence length", 8, 512, SHARED_SETTINGS["seq_len"], key="cmp_seq")
    eval_n = st.number_input("Evaluation examples", 0, 100_000, SHARED_SETTINGS["eval"], key="cmp_eval",
                             help="a seeded subset of the test split; 0 = all of it (as the shipped demo runs)")
    seeds_text = st.text_input("Seeds", "0", key="cmp_seeds",
                               help="one seed, or several separated by commas (e.g. 0,1,2): each seed draws its own "
                                    "calibration sample, so each is one more run per cell; with several, each point "
                                    "is the mean over seeds and its error bar a 95% t-interval of their spread "
                                    "(with one, the accuracy's 95% Wilson interval over the evaluated examples)")
    st.caption(SHARED_WHY)
    eval_size = int(eval_n) or None
    recompute = st.button("Recompute all", key="cmp_recompute",
                          help="prune every run of the grid again, even the stored ones")

presentation.note_task(task)  # presentation mode: the chance level on its accuracy charts
if not chosen or not sparsities or (not patterns and any(not methods.METHODS[m].structured for m in chosen)):
    st.info("Choose at least one method, pattern and sparsity in the sidebar.")
    st.stop()
try:
    seeds = parse_seeds(seeds_text)
    spec = compare_spec(task, chosen, patterns, sparsities, calib_size, seq_len, eval_size, tuple(seeds))
    configs = list(expand(spec))
except PrunescopeError as exc:
    st.error(str(exc))
    st.stop()
specs = [{"config": c.to_dict()} for c in configs]
keys = [c.key() for c in configs]  # = pruning_core.jobs.job_key of each spec
missing = [s for c, s in zip(configs, specs) if not store.has(c.key())]
st.caption(f"{len(configs)} runs in the grid: {len(configs) - len(missing)} stored, {len(missing)} to compute")


def grid_now() -> grid_jobs.GridState:
    return grid_jobs.grid_state(store, "prune", keys, store.has)


def redraw() -> None:
    load_run.clear()
    load_mask.clear()


state = grid_now()
todo = []
if missing and st.button(f"Compute the {len(missing)} missing runs", type="primary", key="cmp_run",
                         icon=":material/schedule:",
                         help="one prune job per missing run: they run in the server's worker pool, the page stays "
                              "usable, a reload or another tab finds them again, and a run that another session "
                              "already computes is computed once"):
    todo = missing
if recompute:
    todo = specs
if todo:
    counts = grid_jobs.submit_cells(store, "prune", todo, recompute=recompute)
    st.toast(f"{counts['queued']} jobs queued, {counts['attached']} already running or queued, "
             f"{counts['stored']} stored" + (f", {counts['waiting']} waiting for a free slot" if counts["waiting"]
                                             else ""))
    state = grid_now()
grid_jobs.follow(state, grid_now, what="runs", on_change=redraw, kind="prune")


def robustness_section() -> None:
    """Accuracy under attack vs sparsity from the stored attacks of this task (computed on the Robustness
    page, never here): the grid's methods, unstructured, with the sidebar's calibration settings."""
    st.markdown("#### Robustness under attack")
    demo_attacks_imported()
    table = store.attacks(task=task, model="default", complete=1)
    rows = []
    for r in table.itertuples():
        row = load_attack_row(r.key)
        if row is None:
            continue
        run = row["config"]["run"]
        if r.method != "dense" and (r.method not in chosen or r.pattern != "unstructured"
                                    or run["calib_size"] != calib_size or run["seq_len"] != seq_len):
            continue
        rows.append({"recipe": r.recipe, "method": r.method, "sparsity": r.sparsity, "n": r.n,
                     "sample": (r.n, r.seed, row["config"].get("query_budget"),
                                bool(row["config"].get("visible_only", False))), **row["summary"]})
    if not any(r["method"] != "dense" for r in rows):
        st.info("No stored attacks of pruned models for this grid: compute them on the Robustness page.",
                icon=":material/shield:")
        st.page_link("robustness_page.py", label="Open the Robustness page", icon=":material/shield:")
        return
    recipes = sorted({r["recipe"] for r in rows if r["method"] != "dense"})
    c1, c2 = st.columns(2)
    recipe = c1.selectbox("Attack recipe", recipes, key="cmp_recipe", help="recipes with stored attacks for this task")
    rows = [r for r in rows if r["recipe"] == recipe]
    samples = sorted({r["sample"] for r in rows},  # the sample with the most attacks first
                     key=lambda s: (-sum(r["sample"] == s for r in rows), s[0], s[1], s[2] or 0))
    sample = c2.selectbox("Attacked sample", samples, key="cmp_sample", format_func=lambda s: (
        f"{s[0]} examples, seed {s[1]}" + (f", at most {s[2]} queries" if s[2] else "")
        + (", visible words only" if s[3] else "")))
    seen, points = set(), []
    for r in rows:  # newest first: keep one attack per (method, sparsity)
        if r["sample"] == sample and (r["method"], r["sparsity"]) not in seen:
            seen.add((r["method"], r["sparsity"]))
            points.append(r)
    st.plotly_chart(charts.robustness_curves(points, measures=("accuracy_under_attack",),
                                             title=f"Accuracy under attack ({recipe}) vs sparsity"), key="c_rob")
    st.caption("Computed on the Robustness page; the dense model (sparsity 0) starts every line.")
    st.page_link("robustness_page.py", label="More measures and the adversarial examples", icon=":material/shield:")


def structured_section(runs: list[dict]) -> None:
    """Accuracy and last-block error against the achieved FLOPs reduction of the structured runs."""
    st.markdown("#### Structured: FLOPs removed")
    a, b = st.columns(2)
    a.plotly_chart(charts.flops_curves(runs), key="c_flops")
    b.plotly_chart(charts.flops_curves(runs, "final_cumulative_error", "Cumulative error at the last block vs FLOPs "
                                       "removed", "cumulative error"), key="c_flops_cum")
    seq = sorted({round(r["structure"]["seq_len"], 1) for r in runs})
    a.caption("x = the FLOPs reduction each run achieved, counted at the calibration texts' average length "
              f"({', '.join(map(str, seq))} tokens). These models are physically smaller; unstructured runs are not "
              "on this chart: their zeros still run on dense kernels and remove no FLOPs.")


results = [load_run(c.key()) for c in configs if store.has(c.key())]
structured_runs = [r for r in results if charts.is_structured(r)]
results = [r for r in results if not charts.is_structured(r)]  # the sparsity charts: single weights removed
if not results and not structured_runs:
    st.info("Nothing stored for this grid yet: compute the missing runs above.")
elif results:
    a, b = st.columns(2)
    ev = a.plotly_chart(charts.sweep_curves(results, "accuracy", "Accuracy vs sparsity", "clean accuracy"),
                        key="c_acc", on_select="rerun", selection_mode="points")
    picked = keys_from_points(ev, [[p[0] for p in pts] for pts in charts.point_runs(results).values()])
    if len(picked) == 2:
        if a.button("Compare these two", key="c_compare_two", icon=":material/compare_arrows:",
                    help="open the two picked runs on the Run vs run page"):
            open_pair(*picked)
    elif len(picked) == 1:
        a.caption("1 point selected: shift-click a second one to compare two runs")
    elif picked:
        a.caption(f"{len(picked)} points selected: Run vs run compares two; click one, then shift-click another")
    else:
        a.caption("Click a point, then shift-click another, to compare the two runs side by side.")
    b.plotly_chart(charts.sweep_curves(results, "final_cumulative_error", "Cumulative error at the last block",
                                       "cumulative error"), key="c_cum")
    if len(seeds) > 1:
        a.caption(f"Each point: the mean over seeds {', '.join(map(str, seeds))} (where stored); error bars: 95% "
                  "t-intervals of the spread across seeds. Clicking a point picks its first seed's run.")
    else:
        a.caption("Error bars: 95% Wilson intervals of each accuracy over the evaluated examples.")
    a.plotly_chart(charts.sweep_curves(results, "mean_local_error", "Mean local reconstruction error",
                                       "local error"), key="c_loc")
    b.plotly_chart(charts.prune_time_bars(results + structured_runs), key="c_time")
    held = [r for r in results if charts.run_heldout_error(r) is not None and r["config"]["seed"] == seeds[0]]
    if held:
        a.plotly_chart(charts.heldout_curves(held), key="c_held")
        first = [r for r in results if r["config"]["seed"] == seeds[0]]  # one seed: these lines are not averaged
        older = " (the others, e.g. the shipped demo runs, predate it)" if len(held) < len(first) else ""
        a.caption(f"{len(held)} of {len(first)} runs{f' of seed {seeds[0]}' if len(seeds) > 1 else ''} measured held-out error{older}: the same "
                  "cumulative error on as many validation texts as calibration texts, never used to choose masks or fit weights. "
                  "Dashed above solid = the method fits its calibration texts better than new text.")
if structured_runs:
    structured_section([r for r in structured_runs if r["config"]["seed"] == seeds[0]])  # first seed's runs
robustness_section()
