"""Demo path: the story of pruning in three stops and about five minutes, each one chart, three sentences and
a button that opens the full page with the preset's settings. (a) and (c) read the shipped demos (shown at
once on a fresh store); (b) shows a stored speed comparison, or says what it will compute and submits it."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from dashboard import grid_jobs, presentation, presets
from dashboard.charts.common import DENSE_COLOR, method_colors
from dashboard.charts.robustness import interval, robustness_panels
from dashboard.common import demo_attacks_imported, demo_imported, get_store, load_attack_row, load_run
from pruning_core.experiments.config import ExperimentConfig
from pruning_core.jobs import runners
from pruning_core.sweeps.spec import SweepSpec, attack_grid, expand

st.title("Demo path")
st.caption("Three stops that tell the story in about five minutes: which method keeps accuracy, whether a sparse "
           "model is faster, and what pruning does to robustness. Each opens its full page with the same settings.")
store = get_store()
demo_imported()
demo_attacks_imported()


def open_page(page: str, settings: dict, key: str, label: str) -> None:
    """A button that sets the full page's sidebar to `settings` and opens it."""
    if st.button(label, key=key, icon=":material/open_in_new:"):
        st.session_state.update(settings)
        st.session_state.pop("rob_pick", None)  # the Robustness browser's pick belongs to the grid it showed
        presentation.switch_page(page)


def narrate(sentences: list[str]) -> None:
    st.markdown(" ".join(sentences))


# ---- (a) magnitude vs Wanda vs SparseGPT at 50% and 70% --------------------------------------------------

def methods_preset() -> None:
    view = presets.compare_view()
    task = view["cmp_task"]
    spec = SweepSpec.of(name=f"compare-{task}", models=["default"], tasks=[task], methods=view["cmp_methods"],
                        patterns=view["cmp_patterns"], sparsities=view["cmp_sparsities"],
                        calib_size=view["cmp_calib"], seq_len=view["cmp_seq"], seed=0)
    runs = [r for r in (load_run(c.key()) for c in expand(spec)) if r is not None]
    st.subheader("1 · Which method keeps the accuracy?")
    if not runs:
        st.info("The shipped sweep demo is not in this store; open Compare to compute it.")
        open_page("compare_page.py", view, "demo_open_compare", "Open in Compare")
        return
    dense = runs[0]["dense_accuracy"]
    chosen = [m for m in view["cmp_methods"] if any(r["config"]["method"] == m for r in runs)]
    colors = method_colors(chosen)
    acc = {(r["config"]["method"], r["config"]["sparsity"]): r["accuracy"] for r in runs}
    levels = sorted({r["config"]["sparsity"] for r in runs})
    fig = go.Figure()
    for m in chosen:
        fig.add_bar(x=[f"{s:.0%} of weights removed" for s in levels], y=[acc.get((m, s)) for s in levels], name=m,
                    marker_color=colors[m], text=[None if acc.get((m, s)) is None else f"{acc[(m, s)]:.2f}"
                                                  for s in levels], textposition="outside",
                    hovertemplate=f"{m}, %{{x}}: accuracy %{{y:.3f}}<extra></extra>")
    fig.add_hline(y=dense, line_dash="dot", line_color=DENSE_COLOR, annotation_text=f"dense {dense:.2f}",
                  annotation_position="top right")
    fig.update_layout(title=f"Accuracy after pruning ({task}, whole test split)", yaxis_title="accuracy",
                      barmode="group", legend_title="method", margin=dict(t=70, b=40), height=420)
    fig.update_yaxes(range=[0, 1.05])
    presentation.note_task(task)
    st.plotly_chart(fig, key="demo_methods")
    low, high = levels[0], levels[-1]
    at_low = ", ".join(f"{m} {acc[(m, low)]:.2f}" for m in chosen if (m, low) in acc)
    ranked = sorted((acc[(m, high)], m) for m in chosen if (m, high) in acc)
    narrate([f"With {low:.0%} of the weights removed all three stay close to the dense model's {dense:.2f} "
             f"({at_low}).",
             f"At {high:.0%} they part: {ranked[-1][1]} keeps {ranked[-1][0]:.2f} while {ranked[0][1]} falls to "
             f"{ranked[0][0]:.2f}." if len(ranked) > 1 else f"At {high:.0%} the gap opens.",
             "Magnitude drops the smallest weights, Wanda weighs each weight by the size of its input, and "
             "SparseGPT also adjusts the weights it keeps to repair each layer's output."])
    open_page("compare_page.py", view, "demo_open_compare", "Open in Compare")


# ---- (b) unstructured vs structured speed -----------------------------------------------------------------

SPEED_TASK = "rotten_tomatoes"
SPEED_RUNS = (("magnitude", 0.5, "half of the weights set to zero"),
              ("kwon", 0.5, "half of the encoder FLOPs removed: whole heads and neurons"))
SPEED_SETTINGS = {"calib_size": 64, "seq_len": 64, "eval_size": 500}
SPEED_ASKED = "_demo_speed_asked"  # session state: this session pressed "Prune the two models"


def speed_configs() -> list[ExperimentConfig]:
    return [ExperimentConfig.create(model="default", task=SPEED_TASK, method=m, sparsity=s, **SPEED_SETTINGS)
            for m, s, _ in SPEED_RUNS]


def speed_preset() -> None:
    st.subheader("2 · Is a sparse model faster?")
    configs = speed_configs()
    keys = [c.key() for c in configs]
    measured = {k: store.load_speed(k) for k in keys if store.has(k)}
    if all(measured.get(k) for k in keys):
        rows = []
        for (m, s, what), k in zip(SPEED_RUNS, keys):
            dense_row, run_row = measured[k]["rows"][0], measured[k]["rows"][1]
            rows.append((m, what, dense_row["latency_ms"] / run_row["latency_ms"], measured[k]))
        colors = method_colors([m for m, *_ in rows])
        fig = go.Figure(go.Bar(x=[f"{m} ({w.split(':')[0]})" for m, w, *_ in rows], y=[r[2] for r in rows],
                               marker_color=[colors[m] for m, *_ in rows], text=[f"×{r[2]:.2f}" for r in rows],
                               textposition="outside", hovertemplate="%{x}: ×%{y:.2f} faster than dense<extra></extra>"))
        fig.add_hline(y=1.0, line_dash="dot", line_color=DENSE_COLOR, annotation_text="as fast as dense",
                      annotation_position="top right")
        first = rows[0][3]
        fig.update_layout(title=f"Speed-up over the dense model (latency, {first['device']}, {first['threads']} "
                                f"threads)", yaxis_title="× dense speed", margin=dict(t=70, b=40), height=420)
        st.plotly_chart(fig, key="demo_speed")
        (m0, _, s0, _), (m1, _, s1, _) = rows
        narrate([f"{m0.capitalize()} at 50% sets half of the weights to zero and runs ×{s0:.2f} as fast as dense.",
                 f"{m1.capitalize()} removes whole heads and neurons for the same budget and runs ×{s1:.2f} as fast.",
                 "Zeros are still stored and multiplied by dense kernels; only a smaller matrix is less work."])
        open_page("experiments_page.py", {}, "demo_open_speed", "Open Experiments (both runs, with their speed)")
        return
    pending = [c for c in configs if not store.has(c.key())]
    kind, cells = ("prune", [{"config": c.to_dict()} for c in pending]) if pending else \
        ("speed", [{"key": k} for k in keys if not measured.get(k)])
    job_keys = [runners.prepare(kind, cell, store).key for cell in cells]  # speed: "run key:device:repeats:..."

    def state_now() -> grid_jobs.GridState:
        done = store.has if kind == "prune" else (lambda k: bool(store.speeds(k.split(":")[0])))
        return grid_jobs.grid_state(store, kind, job_keys, done)

    state = state_now()
    st.info(f"Not measured on this machine yet. The button prunes {SPEED_TASK}'s model twice "
            f"({'; '.join(f'{m} at {s:.0%}: {w}' for m, s, w in SPEED_RUNS)}; {SPEED_SETTINGS['calib_size']} "
            f"calibration texts, {SPEED_SETTINGS['eval_size']} evaluated), then times each against the dense model "
            "(20 forward passes each). About one to three minutes on a laptop CPU, as jobs in the background.",
            icon=":material/speed:")
    step = "Prune the two models" if kind == "prune" else "Measure their speed"
    # the session that pressed "Prune" goes on to the timing by itself once both runs are stored (once: a
    # failed timing job is shown, not resubmitted on every rerun)
    go_on = kind == "speed" and st.session_state.pop(SPEED_ASKED, False) and not state.active and not state.failed
    if go_on or not state.active and st.button(f"{step} ({len(cells)} job{'s' * (len(cells) != 1)})",
                                               key="demo_speed_run", type="primary", icon=":material/play_arrow:"):
        counts = grid_jobs.submit_cells(store, kind, cells)
        st.toast(f"{counts['queued']} {kind} jobs queued, {counts['attached']} already running or queued")
        if kind == "prune":
            st.session_state[SPEED_ASKED] = True
        state = state_now()
    grid_jobs.follow(state, state_now, what=f"{kind} jobs", on_change=load_run.clear)


# ---- (c) robustness at high sparsity: the shipped BBC News grid ------------------------------------------

def robustness_preset() -> None:
    st.subheader("3 · Does a pruned model stay robust?")
    view = presets.robustness_view()
    configs = attack_grid(view["rob_task"], view["rob_methods"], view["rob_sparsities"],
                          recipes=(view["rob_recipe"],), n=view["rob_n"], seed=int(view["rob_seeds"]),
                          query_budget=view["rob_budget"] or None, visible_only=view["rob_visible"],
                          calib_size=view["rob_calib"], seq_len=view["rob_seq"])
    rows = []
    for c in configs:
        row = load_attack_row(c.key()) if store.attack_done(c.key()) else None
        if row is not None:
            meta, s = c.meta(), row["summary"]
            rows.append({"method": meta["method"], "sparsity": meta["sparsity"], "n": s["examples"],
                         **{k: s[k] for k in ("clean_accuracy", "accuracy_under_attack", "attack_success_rate")}})
    if not rows:
        st.info("The shipped robustness demo is not in this store; open Robustness to compute it.")
        open_page("robustness_page.py", view, "demo_open_robustness", "Open in Robustness")
        return
    recipe = view["rob_recipe"]
    presentation.note_task(view["rob_task"])
    st.plotly_chart(robustness_panels(rows, title=f"Under attack by {recipe}: {view['rob_task']}, "
                                                  f"{view['rob_n']} examples"), key="demo_robustness")
    dense = next((r for r in rows if r["method"] == "dense"), None)
    top = max(r["sparsity"] for r in rows)
    at_top = sorted((r for r in rows if r["sparsity"] == top), key=lambda r: -r["accuracy_under_attack"])
    m = "accuracy_under_attack"
    sentences = []
    if dense is not None:
        sentences.append(f"The dense model answers {dense['clean_accuracy']:.0%} correctly, and {dense[m]:.0%} "
                         f"still after {recipe} misspells a few words.")
    if len(at_top) >= 2:
        best, worst = at_top[0], at_top[-1]
        (bl, bh), (wl, wh) = interval(best, m), interval(worst, m)
        apart = "do not overlap: the difference is not noise" if wl > bh or bl > wh else \
            "still overlap: more examples would be needed"
        sentences.append(f"At {top:.0%} sparsity {best['method']} keeps {best[m]:.2f} [{bl:.2f}, {bh:.2f}] under "
                         f"attack and {worst['method']} {worst[m]:.2f} [{wl:.2f}, {wh:.2f}]; the 95% intervals "
                         f"{apart}.")
    cleans = [r["clean_accuracy"] for r in rows]
    same = f"{min(cleans):.2f} for every model" if min(cleans) == max(cleans) else \
        f"{min(cleans):.2f} to {max(cleans):.2f}"
    sentences.append(f"Clean accuracy hardly moves ({same}): the loss shows only under attack, so robustness "
                     "needs its own measurement.")
    narrate(sentences)
    open_page("robustness_page.py", view, "demo_open_robustness", "Open in Robustness")


for preset in (methods_preset, speed_preset, robustness_preset):
    with st.container(border=True):
        preset()
