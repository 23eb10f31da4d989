"""Run against run: two stored runs of the same model overlaid (errors per module and across depth),
their accuracy and robustness deltas with 95% intervals, and the keep-mask difference of one module."""

from __future__ import annotations

import streamlit as st

from dashboard import card_notes
from dashboard.charts import diff as diff_charts
from dashboard.common import demo_attacks_imported, demo_imported, error_text, get_store, load_mask
from dashboard.diff_link import PAIR
from pruning_core import PrunescopeError
from pruning_core.model.arch import KIND_LABELS
from pruning_core.storage import diff


def run_label(r) -> str:
    """'wanda unstructured 50% · rotten_tomatoes · key' (structured runs: the budget)."""
    what = f"{r.method} structured, budget {r.sparsity:.0%}" if r.pattern == "structured" else \
        f"{r.method} {r.pattern} {r.sparsity:.0%}"
    return f"{what} · {r.task} · {r.key}"


def _ci(ci) -> str:
    return f"95% CI {ci[0]:.3f}–{ci[1]:.3f}" if ci else "no interval"


def _pick(runs) -> tuple[str, str] | None:
    """The A and B selectboxes (B among runs of A's model); preset from PAIR when the Experiments page sent one."""
    labels = {r.key: run_label(r) for r in runs.itertuples()}
    model_of = dict(zip(runs["key"], runs["model"]))
    pair = st.session_state.pop(PAIR, None)
    if pair and all(k in labels for k in pair):
        st.session_state["diff_a"], st.session_state["diff_b"] = pair
    left, right = st.columns(2)
    key_a = left.selectbox("Run A", list(labels), format_func=labels.get, key="diff_a")
    others = [k for k in labels if k != key_a and model_of[k] == model_of[key_a]]
    if not others:
        right.info(f"No other stored run prunes model '{model_of[key_a]}': pick another run A.")
        return None
    if st.session_state.get("diff_b") not in others:
        st.session_state["diff_b"] = others[0]
    key_b = right.selectbox("Run B (same model)", others, format_func=labels.get, key="diff_b")
    return key_a, key_b


def accuracy_cards(d: diff.RunDiff) -> None:
    """Pruned accuracy of A and of B, B - A, and the dense accuracies, each with its Wilson interval."""
    acc, dense = d.accuracy
    cols = st.columns(4)
    cols[0].metric("A: pruned accuracy", f"{acc.a:.3f}")
    cols[0].caption(f"{_ci(acc.a_ci)} · {acc.n_a} examples")
    cols[1].metric("B: pruned accuracy", f"{acc.b:.3f}", card_notes.delta(acc.delta, "+.3f", " vs A"))
    cols[1].caption(f"{_ci(acc.b_ci)} · {acc.n_b} examples")
    verdict = "the intervals overlap: within sampling noise" if acc.overlap else \
        "the intervals do not overlap: a real difference" if acc.overlap is False else ""
    cols[2].metric("B − A", f"{acc.delta:+.3f}", help="difference of the pruned accuracies")
    cols[2].caption(verdict)
    cols[3].metric("Dense accuracy (A / B)", f"{dense.a:.3f} / {dense.b:.3f}",
                   help="the unpruned model on each run's evaluation examples (differs when the tasks or "
                        "evaluation samples differ)")
    if d.a["config"]["task"] != d.b["config"]["task"]:
        st.warning(f"A is evaluated on {d.a['config']['task']} and B on {d.b['config']['task']}: their accuracies "
                   "are on different tasks.")


def robustness_section(d: diff.RunDiff) -> None:
    st.markdown("#### Robustness")
    if not d.attacks:
        only = [f"A: {', '.join(d.attacks_a) or 'none'}", f"B: {', '.join(d.attacks_b) or 'none'}"]
        st.info("No attack recipe has been run on both pruned models (finished attacks "
                f"{'; '.join(only)}). Attack both on the Robustness page to compare them here.")
        return
    cols = st.columns(min(len(d.attacks), 2))
    for i, (recipe, rows) in enumerate(d.attacks.items()):
        under = rows[1]
        col = cols[i % len(cols)]
        col.plotly_chart(diff_charts.deltas_figure(rows, f"{recipe}: A ({under.n_a} examples) and B "
                                                         f"({under.n_b})"), key=f"diff_atk_{recipe}")
        col.caption(f"Accuracy under attack B − A: **{under.delta:+.3f}**" if under.delta is not None else "")


def mask_section(d: diff.RunDiff) -> None:
    st.markdown("#### Mask difference of one module")
    names = d.common_modules
    if not names:
        st.info("The two runs have no pruned module in common (a structured run removes whole heads and "
                "neurons instead of masking weights).")
        return
    kinds = {r["name"]: r["kind"] for r in d.modules}
    name = st.selectbox("Module", names, key="diff_module",
                        format_func=lambda n: f"{n}  ({KIND_LABELS.get(kinds[n], kinds[n])})")
    ma, mb = load_mask(d.a["key"], name), load_mask(d.b["key"], name)
    if ma is None or mb is None:
        missing = [s for s, m in (("A", ma), ("B", mb)) if m is None]
        which = "Runs A and B were" if len(missing) == 2 else f"Run {missing[0]} was"
        st.info(f"{which} stored without masks (a shipped demo run): prune it again on the Prune page "
                "(Recompute) to compare its masks.")
        return
    try:
        md = diff.mask_diff(ma, mb)
    except PrunescopeError as exc:
        st.error(str(exc))
        return
    cols = st.columns(5)
    for col, (label, n) in zip(cols, (("Kept by both", md.both), ("Kept by A only", md.a_only),
                                      ("Kept by B only", md.b_only), ("Pruned by both", md.neither))):
        col.metric(label, f"{n:,}", help=f"{n / md.total:.1%} of the module's {md.total:,} weights")
    cols[4].metric("Overlap of kept weights", f"{md.jaccard:.3f}",
                   help="kept by both / kept by either (Jaccard index): 1 = the same weights kept")
    st.plotly_chart(diff_charts.mask_diff_image(md.codes, title=f"Mask difference of {name}"), key="diff_mask")
    st.caption(diff_charts.DIFF_HELP + ".")


st.title("Run against run")
store = get_store()
demo_imported()
demo_attacks_imported()  # the shipped attacks on the demo runs: their robustness deltas
runs = store.runs()
if len(runs) < 2:
    st.info("Two stored runs are needed: prune on the Prune page, or run a sweep on Compare.")
    st.stop()
picked = _pick(runs)
if picked is None:
    st.stop()
try:
    d = diff.compare(store, *picked)
except PrunescopeError as exc:
    st.error(str(exc))
    st.stop()
except Exception as exc:  # noqa: BLE001 - an unreadable record: say so, keep the page
    st.error(error_text("Comparing the two runs", exc))
    st.stop()

accuracy_cards(d)
st.plotly_chart(diff_charts.deltas_figure(d.accuracy, "Accuracy of A and B with 95% Wilson intervals"),
                key="diff_acc")
left, right = st.columns(2)
if any(r["a_local"] is not None or r["b_local"] is not None for r in d.modules):
    left.plotly_chart(diff_charts.local_error_pair(d.modules), key="diff_local")
else:
    left.info("Neither run records a local error per module (structured runs remove units instead).")
right.plotly_chart(diff_charts.cumulative_pair(d.blocks), key="diff_cum")
right.caption("Solid: error on the calibration texts; dashed: on held-out texts the method never saw. "
              "Above 1 the pruned block outputs are further from the dense ones than the dense outputs are from 0.")
robustness_section(d)
mask_section(d)
