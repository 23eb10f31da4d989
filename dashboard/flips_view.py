"""The examples that flip (LIT-like): the test examples the dense model got right and the pruned model gets
wrong (lost) and the reverse (gained), with both confidences and the per-example KL, a sortable table, the two
confusion matrices and a CSV download. Read from the run's stored `predictions`: nothing is recomputed."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from pruning_core.measure import flips

OUTCOME_HELP = {flips.LOST: "dense right, pruned wrong", flips.GAINED: "dense wrong, pruned right",
                flips.SAME_RIGHT: "both right", flips.SAME_WRONG: "both wrong"}
KL_HELP = "KL(dense || pruned) of the example's predicted class distributions, in nats (0 = identical)"


@st.cache_data(max_entries=8, show_spinner=False)
def test_split(task: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """(texts, label names) of a task's test split; None when it cannot be read any more (a moved file)."""
    from pruning_core.data import tasks

    try:
        split = tasks.load(task, "test")
    except Exception:  # noqa: BLE001 - the table still shows, without texts
        return None
    return split.texts, split.label_names


def _name(names, i: int) -> str:
    return names[i] if 0 <= i < len(names) else str(i)


def flips_frame(pred: dict, texts=(), label_names=()) -> pd.DataFrame:
    """One row per evaluated example: index, text (from the test split by `index`), label, dense prediction and
    confidence, pruned prediction and confidence, KL and outcome; sorted by KL, largest first."""
    texts, names = list(texts), list(label_names)
    df = pd.DataFrame({
        "index": pred["index"],
        "text": [texts[i] if 0 <= i < len(texts) else "" for i in pred["index"]],
        "label": [_name(names, i) for i in pred["label"]],
        "dense_pred": [_name(names, i) for i in pred["dense_pred"]],
        "dense_conf": pred["dense_conf"],
        "pruned_pred": [_name(names, i) for i in pred["pruned_pred"]],
        "pruned_conf": pred["pruned_conf"],
        "kl": pred["kl"],
        "outcome": flips.outcomes(pred),
    })
    return df.sort_values("kl", ascending=False, kind="stable").reset_index(drop=True)


def n_classes(pred: dict, label_names=()) -> int:
    """Classes of the confusion matrices: the task's, or as many as the stored labels and predictions need."""
    seen = max([*pred["label"], *pred["dense_pred"], *pred["pruned_pred"]], default=-1) + 1
    return max(len(label_names), seen)


def confusion_figure(matrix: list[list[int]], label_names=(), title: str = "Confusion matrix") -> go.Figure:
    """Heatmap of counts[true][predicted] with the counts written in the cells."""
    k = len(matrix)
    names = [_name(list(label_names), i) for i in range(k)]
    fig = go.Figure(go.Heatmap(z=matrix, x=names, y=names, colorscale="Blues", showscale=False,
                               texttemplate="%{z}", hovertemplate="true %{y}, predicted %{x}: %{z} examples"
                                                                  "<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="predicted", yaxis_title="true label", margin=dict(t=50, b=30),
                      height=260 + 28 * k)
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category")
    return fig


def show(res: dict) -> None:
    """The flips section of a stored run (a note instead for runs stored without per-example predictions)."""
    st.markdown("#### Examples that flip")
    pred = res.get("predictions")
    if not pred or not pred.get("label"):
        st.info("This run was stored without per-example predictions (a shipped demo run, or one made before "
                "they were kept): re-run it (Recompute in the sidebar) to see which examples flip.")
        return
    split = test_split(res["config"]["task"])
    texts, names = split if split else ((), ())
    k = n_classes(pred, names)
    s = flips.summary(pred, k)
    cols = st.columns(5)
    cols[0].metric("Lost", s[flips.LOST], help=f"{OUTCOME_HELP[flips.LOST]}: examples pruning broke")
    cols[1].metric("Gained", s[flips.GAINED], help=f"{OUTCOME_HELP[flips.GAINED]}: examples pruning fixed")
    cols[2].metric("Net change", f"{s[flips.GAINED] - s[flips.LOST]:+d}",
                   help=f"gained - lost = the change in correct answers over {s['n']} examples")
    cols[3].metric("Both right / both wrong", f"{s[flips.SAME_RIGHT]} / {s[flips.SAME_WRONG]}")
    cols[4].metric("Mean KL", f"{s['mean_kl']:.3g}", help=KL_HELP)
    if split is None:
        st.caption(f"The test split of {res['config']['task']} could not be read: the table shows no texts.")
    frame = flips_frame(pred, texts, names)
    kinds = [flips.LOST, flips.GAINED, flips.SAME_RIGHT, flips.SAME_WRONG]
    shown = st.multiselect("Show outcomes", kinds, default=[flips.LOST, flips.GAINED], key="flips_filter",
                           format_func=lambda o: f"{o} ({OUTCOME_HELP[o]})")
    view = frame[frame["outcome"].isin(shown)]
    st.caption(f"{len(view)} of {len(frame)} examples, largest KL first; click a column header to sort.")
    st.dataframe(view, hide_index=True, width="stretch", key="flips_table", column_config={
        "index": st.column_config.NumberColumn("test #", help="row of the task's test split", format="%d"),
        "text": st.column_config.TextColumn("text", width="large"),
        "dense_conf": st.column_config.NumberColumn("dense conf", format="%.3f",
                                                    help="dense model's probability of its prediction"),
        "pruned_conf": st.column_config.NumberColumn("pruned conf", format="%.3f",
                                                     help="pruned model's probability of its prediction"),
        "kl": st.column_config.NumberColumn("KL", format="%.4f", help=KL_HELP),
        "outcome": st.column_config.TextColumn("outcome", help="; ".join(f"{k}: {v}" for k, v in
                                                                          OUTCOME_HELP.items()))})
    st.download_button(f"Download these {len(view)} examples (CSV)", view.to_csv(index=False),
                       f"prunescope_flips_{res['key']}.csv", "text/csv", key="flips_csv",
                       icon=":material/download:", help="the table above with the outcome filter applied")
    a, b = st.columns(2)
    a.plotly_chart(confusion_figure(s["dense_confusion"], names, "Dense model: true × predicted"), key="conf_dense")
    b.plotly_chart(confusion_figure(s["pruned_confusion"], names, "Pruned model: true × predicted"),
                   key="conf_pruned")
