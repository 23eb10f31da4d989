"""Robustness page: attack dense and pruned models with TextAttack recipes over a methods x sparsity grid;
stored attacks are read, missing ones submitted as attack jobs (one per model; every example saved as it
finishes) whose progress the page follows, then compared and browsed example by example."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, grid_jobs, presentation, presets
from dashboard.charts.robustness import highlight_legend_html, robustness_panels
from dashboard.seeds import parse_seeds
from dashboard.common import (clear_attack_caches, demo_attacks_imported, get_store, load_attack_examples,
                              load_attack_row)
from pruning_core import PrunescopeError
from pruning_core.data import tasks as data
from pruning_core.prune import methods
from pruning_core.robustness import RECIPES, availability
from pruning_core.sweeps.spec import ROBUSTNESS_SPARSITIES, SPARSITIES, attack_grid

st.title("Robustness under attack")
store = get_store()
demo_attacks_imported()

TASKS = [n for n, t in data.SHIPPED.items() if t.default_model_task]
SPARSITY_OPTIONS = sorted({0.0, *SPARSITIES, *ROBUSTNESS_SPARSITIES})
DEMOS = {"BBC News": presets.ROBUSTNESS_DEMO, "Rotten Tomatoes": presets.DEMO_DIR / "robustness_rotten_tomatoes.jsonl"}
DEFAULT = presets.robustness_view()  # the page opens on the shipped BBC News grid: charts at once, nothing computed
PER_PAGE = 5


@st.cache_data(ttl=60, show_spinner=False)
def recipe_availability() -> dict[str, str | None]:
    return availability()


def label(meta_method: str, sparsity: float) -> str:
    return "dense (sparsity 0)" if meta_method == "dense" else f"{meta_method} · {sparsity:.0%}"


def load_demo(path) -> None:
    """Set the sidebar to a shipped demo grid (a button callback: it runs before the widgets are drawn)."""
    st.session_state.update(presets.robustness_view(path))
    st.session_state.pop("rob_pick", None)  # the attack picked in the browser belongs to the old grid


def sidebar():
    why = recipe_availability()
    with st.sidebar:
        st.header("Attack grid")
        st.caption("Shipped demo grids (stored: shown at once)")
        for i, (name, path) in enumerate(DEMOS.items()):
            st.button(name, key=f"rob_demo_{i}", on_click=load_demo, args=(path,), icon=":material/auto_stories:",
                      help=f"set the grid to the shipped demo {path.name}")
        task = st.selectbox("Task", TASKS, key="rob_task", index=TASKS.index(DEFAULT["rob_task"]),
                            help="shipped tasks (each has a default model)")
        chosen = st.multiselect("Methods", list(methods.METHODS), default=DEFAULT["rob_methods"], key="rob_methods")
        sparsities = st.multiselect("Sparsities", SPARSITY_OPTIONS, default=DEFAULT["rob_sparsities"],
                                    key="rob_sparsities", format_func=lambda s: f"{s:.0%}",
                                    help="0% is the dense model: attacked once and shared by every method")
        recipe = st.selectbox("Attack recipe", list(RECIPES), key="rob_recipe", index=list(RECIPES).index(DEFAULT["rob_recipe"]),
                              format_func=lambda r: r if why.get(r) is None else f"{r} (unavailable here)",
                              help="; ".join(f"{n}: {r.paper}" for n, r in RECIPES.items()))
        n = st.number_input("Examples to attack", 1, 5000, DEFAULT["rob_n"], key="rob_n",
                            help="a seeded sample of the task's test split, the same for every model")
        budget = st.number_input("Query budget per example (0 = none)", 0, 1_000_000, DEFAULT["rob_budget"], key="rob_budget",
                                 help="stop attacking an example after this many model queries (counted as failed)")
        visible = st.checkbox("Attack only the words the model reads", DEFAULT["rob_visible"], key="rob_visible",
                              help="cut each text at the model's maximum length first: long articles (BBC News) "
                                   "attack several times faster, and no edit lands on words the model never sees")
        seeds = st.text_input("Seeds", DEFAULT["rob_seeds"], key="rob_seeds",
                              help="the seed of the attacked sample, or several separated by commas (e.g. 0,1,2): "
                                   "one attack per seed and model; with several, each point is the mean over seeds "
                                   "and its error bar a 95% t-interval of their spread (with one, a Wilson interval)")
        calib_size = st.number_input("Calibration examples", 1, 4096, DEFAULT["rob_calib"], key="rob_calib",
                                     help="for pruning the attacked models (the shipped demo uses 128)")
        seq_len = st.number_input("Calibration sequence length", 8, 512, DEFAULT["rob_seq"], key="rob_seq",
                                  help="for pruning the attacked models (the shipped demo uses 64)")
    return (task, chosen, sparsities, recipe, why.get(recipe), int(n), int(budget) or None, seeds,
            int(calib_size), int(seq_len), bool(visible))


def summary_rows(done: list) -> list[dict]:
    rows = []
    for cfg in done:
        row = load_attack_row(cfg.key())
        if row is None:
            continue
        s, meta = row["summary"], cfg.meta()
        rows.append({"key": cfg.key(), "method": meta["method"], "sparsity": meta["sparsity"], "seed": cfg.seed,
                     "clean_accuracy": s["clean_accuracy"], "accuracy_under_attack": s["accuracy_under_attack"],
                     "attack_success_rate": s["attack_success_rate"],
                     "avg_perturbed_word_pct": s["avg_perturbed_word_pct"], "avg_queries": s["avg_queries"],
                     "n": s["examples"]})
    return sorted(rows, key=lambda r: (r["method"] != "dense", r["method"], r["sparsity"], r["seed"]))


def metrics_table(rows: list[dict]) -> None:
    import pandas as pd

    frame = pd.DataFrame(rows).drop(columns="key")
    pct = st.column_config.NumberColumn
    st.dataframe(frame, hide_index=True, width="stretch", height=round(35 * presentation.scale()) * (min(len(frame), 20) + 1) + 3, column_config={
        "sparsity": pct("sparsity", format="percent", help="requested sparsity; 0 = the dense model"),
        "clean_accuracy": pct("clean acc", format="%.3f",
                              help=charts.ROBUSTNESS_MEASURES["clean_accuracy"][2]),
        "accuracy_under_attack": pct("acc under attack", format="%.3f",
                                     help=charts.ROBUSTNESS_MEASURES["accuracy_under_attack"][2]),
        "attack_success_rate": pct("ASR", format="percent",
                                   help=charts.ROBUSTNESS_MEASURES["attack_success_rate"][2]),
        "avg_perturbed_word_pct": pct("perturbed words %", format="%.1f",
                                      help="mean over successful attacks of 100 × changed words / words"),
        "avg_queries": pct("avg queries", format="%.1f", help="mean model queries over attacked examples"),
        "n": pct("n", help="examples attacked (a seeded sample of the test split)"),
        "seed": pct("seed", help="the seed of the attacked sample"),
    })


def browser(rows: list[dict], task: str) -> None:
    st.markdown("#### Adversarial examples")
    by_key = {r["key"]: r for r in rows}
    c1, c2 = st.columns([1, 2])
    key = c1.selectbox("Attack", list(by_key), key="rob_pick",
                       format_func=lambda k: label(by_key[k]["method"], by_key[k]["sparsity"])
                       + (f", seed {by_key[k]['seed']}" if len(seeds) > 1 else ""))
    examples = load_attack_examples(key)
    counts = {t: sum(e["result"] == t for e in examples) for t in ("successful", "failed", "skipped")}
    kind = c2.radio("Show", ["all", *counts], horizontal=True, key="rob_filter",
                    format_func=lambda t: f"{t} ({len(examples) if t == 'all' else counts[t]})",
                    help="; ".join(f"{t}: {h}" for t, h in charts.RESULT_HELP.items()))
    shown = examples if kind == "all" else [e for e in examples if e["result"] == kind]
    if not shown:
        st.info(f"No {kind} examples in this attack.")
        return
    pages = (len(shown) + PER_PAGE - 1) // PER_PAGE
    page = st.number_input(f"Page (of {pages}, {PER_PAGE} examples each)", 1, pages, 1,
                           key=f"rob_page_{key}_{kind}")
    info = data.task_info(task)
    names = info.label_names if info else ()
    st.html(highlight_legend_html())
    for rec in shown[(int(page) - 1) * PER_PAGE:int(page) * PER_PAGE]:
        with st.container(border=True):
            st.html(charts.adversarial_example_html(rec, names))


task, chosen, sparsities, recipe, why, n, budget, seeds_text, calib_size, seq_len, visible = sidebar()
presentation.note_task(task)
r = RECIPES[recipe]
st.caption(f"**{recipe}**: {r.title} ({r.paper}). Measures: clean accuracy, accuracy under attack (examples "
           "still correct after the attack, over all examples) and attack success rate ((clean correct − still "
           "correct) / clean correct).")
if why:
    st.warning(f"**{recipe}** cannot run here: {why}", icon=":material/block:")
if not chosen or not sparsities:
    st.info("Choose at least one method and one sparsity in the sidebar.")
    st.stop()
try:
    seeds = parse_seeds(seeds_text)
    configs = [c for seed in seeds for c in attack_grid(  # one attack sample per seed
        task, chosen, sorted(sparsities), recipes=(recipe,), n=n, seed=seed, query_budget=budget,
        visible_only=visible, calib_size=calib_size, seq_len=seq_len)]
except PrunescopeError as exc:
    st.error(str(exc))
    st.stop()

missing = [c for c in configs if not store.attack_done(c.key())]
partial = sum(len(store.attack_examples(c.key())) for c in missing)
resumed = f" ({partial} examples already saved by stopped attacks)" if partial else ""
plural = "s" * (len(missing) != 1)
st.caption(f"{len(configs)} attack{'s' * (len(configs) != 1)} in the grid: {len(configs) - len(missing)} "
           f"stored, {len(missing)} to compute{resumed}")
specs = [{"config": c.to_dict()} for c in configs]
keys = [c.key() for c in configs]  # = pruning_core.jobs.job_key of each spec


def grid_now() -> grid_jobs.GridState:
    return grid_jobs.grid_state(store, "attack", keys, store.attack_done)


state = grid_now()
if missing and st.button(f"Compute the {len(missing)} missing attack{plural}", type="primary", key="rob_run",
                         disabled=bool(why), icon=":material/shield:",
                         help=f"about {len(missing) * n} attacked examples, one attack job per model: they run in "
                              "the server's worker pool (the page stays usable, a reload finds them again); each "
                              "example is saved as it finishes, so a stopped attack resumes where it stopped"):
    counts = grid_jobs.submit_cells(store, "attack", [{"config": c.to_dict()} for c in missing])
    st.toast(f"{counts['queued']} attack jobs queued, {counts['attached']} already running or queued"
             + (f", {counts['waiting']} waiting for a free slot" if counts["waiting"] else ""))
    state = grid_now()
grid_jobs.follow(state, grid_now, what="attacks", on_change=clear_attack_caches, kind="attack")

done = [c for c in configs if store.attack_done(c.key())]
rows = summary_rows(done)
if not rows:
    st.info("Nothing stored for this grid yet: compute the missing attacks above.")
    st.stop()
metrics_table(rows)
st.plotly_chart(robustness_panels(rows, title=f"Robustness vs sparsity under {recipe} ({task}, {n} examples)"),
                key="rob_curves")
WILSON = ("95% Wilson intervals of each proportion (for the success rate, over the examples the model got right "
          "before the attack)")
st.caption((f"Each point: the mean over the attack seeds {', '.join(map(str, seeds))}, its error bar a 95% "
            f"t-interval of their spread (a point with one seed stored so far: {WILSON})" if len(seeds) > 1 else
            f"Error bars: {WILSON}") + "; where two methods' bars do not overlap, the sample tells them apart. "
           "The dotted line in each panel is the dense model.")
browser(rows, task)
