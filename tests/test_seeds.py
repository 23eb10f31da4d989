"""Seeds with error bars (issue 16 item 3): the Seeds input, the Compare curves' points (the mean over seeds with
a t-interval, or one seed's Wilson interval) and the Compare page on a two-seed grid of stored runs."""

import json
from pathlib import Path

import pytest

from dashboard import charts
from dashboard.seeds import parse_seeds
from pruning_core import PrunescopeError
from pruning_core.measure.intervals import accuracy_interval, seed_spread

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")


def _run(method: str, sparsity: float, seed: int, acc: float, n: int = 200, achieved: float | None = None) -> dict:
    return {"key": f"{method}-{sparsity}-{seed}", "accuracy": acc, "dense_accuracy": 0.9, "eval_examples": n,
            "achieved_sparsity": sparsity if achieved is None else achieved,
            "config": {"method": method, "pattern": "unstructured", "sparsity": sparsity, "seed": seed},
            "blocks": [{"cumulative_error": 0.1 * (seed + 1)}], "layers": [{"local_error": 0.01}]}


def test_parse_seeds():
    assert parse_seeds("0") == [0]
    assert parse_seeds(" 2, 0,1 ") == [2, 0, 1]
    for bad in ("", "a", "-1", "0,0", "1.5", ",".join(map(str, range(11)))):
        with pytest.raises(PrunescopeError, match="Seeds"):
            parse_seeds(bad)


def test_one_seed_points_carry_wilson_bars():
    runs = [_run("wanda", 0.5, 0, 0.8, n=50), _run("wanda", 0.7, 0, 0.6, n=50)]
    runs[1]["accuracy_ci"] = [0.45, 0.73]  # a stored interval is used as stored
    [trace] = charts.sweep_curves(runs, "accuracy", "Accuracy", "acc").data
    assert list(trace.y) == [0.8, 0.6]
    lo, hi = accuracy_interval(0.8, 50)
    assert trace.error_y.array[0] == pytest.approx(hi - 0.8) and trace.error_y.arrayminus[0] == pytest.approx(0.8 - lo)
    assert trace.error_y.array[1] == pytest.approx(0.73 - 0.6) and trace.error_y.arrayminus[1] == pytest.approx(0.15)
    assert trace.customdata[0][2] == "Wilson 95%, 50 examples"
    # one seed, a measure without a sampling interval: no bars
    [err] = charts.sweep_curves(runs, "final_cumulative_error", "Error", "err").data
    assert not err.error_y.visible


def test_several_seeds_are_one_point_with_their_spread():
    accs = [0.71, 0.76, 0.80]
    runs = [_run("magnitude", 0.5, s, a, achieved=0.5 + 0.001 * s) for s, a in enumerate(accs)]
    runs.append(_run("magnitude", 0.7, 0, 0.5))  # this sparsity has one seed stored so far
    [trace] = charts.sweep_curves(runs, "accuracy", "Accuracy", "acc").data
    m, lo, hi = seed_spread(accs)
    assert len(trace.x) == 2 and trace.x[0] == pytest.approx(0.501)
    assert trace.y[0] == pytest.approx(m) and m == pytest.approx(sum(accs) / 3)
    assert trace.error_y.array[0] == pytest.approx(hi - m) and trace.error_y.arrayminus[0] == pytest.approx(m - lo)
    assert hi - lo > 0.05  # the t-interval of three spread values is wide (t = 4.303)
    assert trace.customdata[0][2] == "mean of 3 seeds, 95% t-interval"
    assert trace.customdata[1][2].startswith("Wilson")
    [cum] = charts.sweep_curves(runs, "final_cumulative_error", "Error", "err").data
    assert cum.y[0] == pytest.approx(0.2) and cum.error_y.visible  # mean of 0.1, 0.2, 0.3 with its spread
    # the runs a clicked point stands for: its first seed's
    assert [[p[0]["key"] for p in pts] for pts in charts.point_runs(runs).values()] == [
        ["magnitude-0.5-0", "magnitude-0.7-0"]]


def test_compare_page_two_seeds_from_stored_runs():
    """Seeds "0,1" on a one-cell grid whose two runs are stored beforehand: nothing to compute, the accuracy
    point is the mean of the two seeds' accuracies with their t-interval."""
    from streamlit.testing.v1 import AppTest

    from dashboard.common import get_store
    from pruning_core.experiments.config import ExperimentConfig
    from pruning_core.storage.prune_run import prune_and_store

    store = get_store()
    made = [prune_and_store(ExperimentConfig.create(method="magnitude", sparsity=0.5, calib_size=4, seq_len=16,
                                                    eval_size=16, seed=s), store)[0] for s in (0, 1)]
    tiny = {"cmp_methods": ["magnitude"], "cmp_patterns": ["unstructured"], "cmp_sparsities": [0.5], "cmp_calib": 4,
            "cmp_seq": 16, "cmp_eval": 16, "cmp_seeds": "0,1"}
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    for k, v in tiny.items():
        at.session_state[k] = v
    at.switch_page("compare_page.py")
    at.run()
    assert not at.exception, at.exception
    assert any(c.value == "2 runs in the grid: 2 stored, 0 to compute" for c in at.caption)
    specs = {json.loads(c.proto.spec)["layout"]["title"]["text"]: json.loads(c.proto.spec)
             for c in at.get("plotly_chart")}
    [trace] = specs["Accuracy vs sparsity"]["data"]
    m, lo, hi = seed_spread([r["accuracy"] for r in made])
    assert trace["y"] == pytest.approx([m])
    assert trace["error_y"]["array"] == pytest.approx([hi - m]) and trace["customdata"][0][2] == (
        "mean of 2 seeds, 95% t-interval")
    assert any("mean over seeds 0, 1" in c.value for c in at.caption)
    at.text_input(key="cmp_seeds").set_value("0,x").run()
    assert [e.value for e in at.error] == ["Seeds: 'x' is not a non-negative integer (write e.g. 0,1,2)"]


def test_robustness_panels_average_attack_seeds():
    from dashboard.charts.robustness import robustness_panels, seed_means

    def row(method, sparsity, seed, clean, under):
        return {"method": method, "sparsity": sparsity, "seed": seed, "n": 40, "clean_accuracy": clean,
                "accuracy_under_attack": under, "attack_success_rate": (clean - under) / clean}

    rows = [row("dense", 0.0, 0, 0.9, 0.5), row("wanda", 0.5, 0, 0.8, 0.3), row("wanda", 0.5, 1, 0.7, 0.4),
            row("wanda", 0.5, 2, 0.9, 0.2), row("wanda", 0.7, 0, 0.6, 0.1)]
    merged = {(r["method"], r["sparsity"]): r for r in seed_means(rows)}
    assert len(merged) == 3 and merged[("wanda", 0.5)]["seeds"] == 3 and "seed_ci" not in merged[("wanda", 0.7)]
    fig = robustness_panels(rows)
    under = next(t for t in fig.data if t.name == "wanda" and t.xaxis == "x2")  # the accuracy-under-attack panel
    m, lo, hi = seed_spread([0.3, 0.4, 0.2])
    assert under.y[0] == pytest.approx(m) and under.y[1] == pytest.approx(0.1)
    assert under.error_y.array[0] == pytest.approx(hi - m) and under.error_y.arrayminus[0] == pytest.approx(m - lo)
    wlo, whi = accuracy_interval(0.1, 40)  # one seed: its Wilson interval
    assert under.error_y.array[1] == pytest.approx(whi - 0.1) and under.error_y.arrayminus[1] == pytest.approx(0.1 - wlo)
    assert under.customdata[0][0] == "mean of 3 seeds of 40 examples, 95% t-interval"
    assert under.customdata[1][0] == "Wilson 95%, 40 examples"
