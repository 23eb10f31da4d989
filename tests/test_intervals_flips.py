"""Wilson intervals against scipy's, the seed spread and sample sizes against their definitions, the flips of a
run against hand-made logits, and a real run's stored predictions against its stored accuracies."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from pruning_core.measure import flips, intervals


@pytest.mark.parametrize("k,n", [(0, 10), (1, 10), (5, 10), (10, 10), (81, 263), (430, 500), (3, 1000)])
def test_wilson_equals_scipy(k, n):
    ref = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    lo, hi = intervals.wilson(k, n)
    assert lo == pytest.approx(ref.low, abs=1e-9) and hi == pytest.approx(ref.high, abs=1e-9)
    assert 0.0 <= lo <= k / n <= hi <= 1.0


def test_wilson_refuses_impossible_counts_and_narrows_with_n():
    with pytest.raises(ValueError):
        intervals.wilson(11, 10)
    widths = [hi - lo for lo, hi in (intervals.wilson(n * 8 // 10, n) for n in (50, 200, 800))]
    assert widths[0] > widths[1] > widths[2]
    assert intervals.accuracy_interval(None, 10) is None and intervals.accuracy_interval(0.5, 0) is None


def test_seed_spread_is_students_t_interval():
    vals = [0.81, 0.84, 0.79, 0.86, 0.80]
    m, lo, hi = intervals.seed_spread(vals)
    ref = stats.t.interval(0.95, len(vals) - 1, loc=sum(vals) / len(vals), scale=stats.sem(vals))
    assert m == pytest.approx(sum(vals) / len(vals))
    assert lo == pytest.approx(ref[0], abs=1e-3) and hi == pytest.approx(ref[1], abs=1e-3)
    assert intervals.seed_spread([0.7]) == (0.7, 0.7, 0.7)


def test_examples_needed_has_the_power_it_promises():
    """Simulated: with the returned n per model, a two-proportion z-test at 5% rejects about 80% of the time."""
    p1, p2 = 0.85, 0.80
    n = intervals.examples_needed(p1, p2)
    assert 600 < n < 1000  # the textbook value for 85% vs 80% is about 900 per group
    g = torch.Generator().manual_seed(0)
    trials, rejected = 2000, 0
    a = torch.binomial(torch.full((trials,), float(n)), torch.full((trials,), p1), generator=g) / n
    b = torch.binomial(torch.full((trials,), float(n)), torch.full((trials,), p2), generator=g) / n
    pooled = (a + b) / 2
    z = (a - b) / torch.sqrt(2 * pooled * (1 - pooled) / n)
    rejected = int((z.abs() > intervals.Z95).sum())
    assert 0.75 < rejected / trials < 0.85
    with pytest.raises(ValueError):
        intervals.examples_needed(0.8, 0.8)


def test_flips_from_hand_made_logits():
    labels = [0, 1, 1, 0]
    dense = torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [1.0, 0.0]])  # right, right, wrong, right
    pruned = torch.tensor([[2.0, 0.0], [1.0, 0.0], [0.0, 3.0], [0.0, 1.0]])  # right, wrong, right, wrong
    pred = flips.predictions(dense, pruned, labels, index=[10, 11, 12, 13])
    assert flips.outcomes(pred) == ["right", "lost", "gained", "lost"]
    assert pred["index"] == [10, 11, 12, 13]
    assert pred["dense_conf"][0] == pytest.approx(torch.softmax(dense[0], 0)[0].item(), abs=1e-5)
    assert pred["kl"][0] == pytest.approx(0.0, abs=1e-9) and pred["kl"][3] > 0.1
    p, q = torch.softmax(dense[1].double(), 0), torch.softmax(pruned[1].double(), 0)
    assert pred["kl"][1] == pytest.approx(float((p * (p / q).log()).sum()), rel=1e-4)
    s = flips.summary(pred, 2)
    assert (s["lost"], s["gained"], s["right"], s["wrong"]) == (2, 1, 1, 0)
    assert s["dense_confusion"] == [[2, 0], [1, 1]] and s["pruned_confusion"] == [[1, 1], [1, 1]]


def test_a_real_run_stores_predictions_that_agree_with_its_accuracies():
    import torch as _torch

    from pruning_core.experiments.config import ExperimentConfig
    from pruning_core.experiments.experiment import run_experiment

    cfg = ExperimentConfig.create(model="default", task="rotten_tomatoes", method="magnitude", sparsity=0.7,
                                  calib_size=8, seq_len=32, eval_size=120, seed=3)
    out = run_experiment(cfg).to_json()
    pred = out["predictions"]
    n = out["eval_examples"]
    assert len(pred["label"]) == n == 120 and len(set(pred["index"])) == n
    right = sum(p == t for p, t in zip(pred["pruned_pred"], pred["label"]))
    dense_right = sum(p == t for p, t in zip(pred["dense_pred"], pred["label"]))
    assert right / n == pytest.approx(out["accuracy"]) and dense_right / n == pytest.approx(out["dense_accuracy"])
    s = flips.summary(pred, 2)
    assert s["gained"] - s["lost"] == right - dense_right
    assert s["mean_kl"] == pytest.approx(out["logits_kl"], rel=1e-3, abs=1e-6)
    lo, hi = out["accuracy_ci"]
    assert lo < out["accuracy"] < hi and (lo, hi) == intervals.wilson(right, n)
    env = out["environment"]
    assert env["torch"] == _torch.__version__.split("+")[0] or env["torch"] == _torch.__version__
    assert env["threads"] >= 1 and env["cores"] >= 1 and not math.isnan(env["load_1m"])


def test_readme_sample_size_table_matches_the_function():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    rows = re.findall(r"^\| (\d+) points? \| ([\d,]+) \| ([\d,]+) \|$", text, flags=re.M)
    assert len(rows) == 5
    for d, n90, n80 in rows:
        diff = int(d) / 100
        assert intervals.examples_needed(0.90, 0.90 - diff) == int(n90.replace(",", ""))
        assert intervals.examples_needed(0.80, 0.80 - diff) == int(n80.replace(",", ""))
