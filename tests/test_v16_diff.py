"""Run against run (pruning_core.storage.diff): module alignment, accuracy deltas with Wilson intervals,
attack deltas, and the mask difference of two real stored runs against a plain numpy reference."""

from __future__ import annotations

import numpy as np
import pytest

from pruning_core import PrunescopeError
from pruning_core.measure import intervals
from pruning_core.storage import diff
from pruning_core.storage.store import Store
from v16_runs import tiny_pair


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("diff") / "runs.sqlite")
    return (store, *tiny_pair(store))


def test_mask_diff_counts_equal_numpy_on_real_runs(pair):
    store, a, b = pair
    d = diff.compare(store, a, b)
    names = d.common_modules
    assert len(names) == 36 and names == [r["name"] for r in d.a["layers"]]  # 6 blocks × 6 modules, A's order
    for name in (names[0], names[17], names[-1]):
        ma = store.masks(a, [name])[name].numpy().astype(bool)
        mb = store.masks(b, [name])[name].numpy().astype(bool)
        md = diff.module_mask_diff(store, a, b, name)
        assert md.both == int((ma & mb).sum()) and md.a_only == int((ma & ~mb).sum())
        assert md.b_only == int((~ma & mb).sum()) and md.neither == int((~ma & ~mb).sum())
        assert md.total == ma.size and md.codes.shape == ma.shape
        assert np.array_equal(md.codes == diff.BOTH, ma & mb) and np.array_equal(md.codes == diff.B_ONLY, ~ma & mb)
        # the kept counts agree with each run's stored sparsity of that module
        row = next(r for r in d.modules if r["name"] == name)
        assert (md.both + md.a_only) / md.total == pytest.approx(1 - row["a_sparsity"], abs=1e-6)
        assert (md.both + md.b_only) / md.total == pytest.approx(1 - row["b_sparsity"], abs=1e-6)
        assert 0 < md.jaccard < 1  # two different methods keep overlapping, not equal sets


def test_compare_aligns_errors_and_accuracies(pair):
    store, a, b = pair
    d = diff.compare(store, a, b)
    assert [r["block"] for r in d.blocks] == list(range(6))
    assert [r["a_calib"] for r in d.blocks] == [blk["cumulative_error"] for blk in d.a["blocks"]]
    assert [r["b_heldout"] for r in d.blocks] == [blk["heldout_error"] for blk in d.b["blocks"]]
    assert all(r["a_local"] == layer["local_error"] for r, layer in zip(d.modules, d.a["layers"]))
    acc = d.accuracy[0]
    assert acc.measure == "accuracy" and acc.delta == pytest.approx(d.b["accuracy"] - d.a["accuracy"])
    assert acc.a_ci == tuple(d.a["accuracy_ci"]) and acc.a_ci[0] <= acc.a <= acc.a_ci[1]
    dense = d.accuracy[1]
    assert dense.delta == pytest.approx(0.0)  # the same dense model on the same examples
    assert dense.overlap
    assert d.attacks == {} and d.attacks_a == {}  # never attacked


def test_interval_falls_back_to_wilson_without_a_stored_one():
    res = {"accuracy": 0.75, "eval_examples": 40, "dense_accuracy": 0.8}
    assert diff.interval(res) == intervals.wilson(30, 40)
    assert diff.interval(res, "dense_accuracy") == intervals.wilson(32, 40)
    assert diff.interval({"accuracy": 0.75}) is None
    with pytest.raises(PrunescopeError):
        diff.interval(res, "kl")


def test_align_modules_keeps_modules_of_one_run_and_structured_runs():
    la = [{"name": "x.q", "block": 0, "kind": "q", "local_error": 0.1, "achieved_sparsity": 0.5}]
    lb = [{"name": "x.k", "block": 0, "kind": "k", "local_error": 0.2, "achieved_sparsity": 0.6}]
    rows = diff.align_modules({"layers": la}, {"layers": lb})
    assert [(r["name"], r["a_local"], r["b_local"]) for r in rows] == [("x.q", 0.1, None), ("x.k", None, 0.2)]
    assert diff.align_modules({"layers": []}, {"layers": la})[0]["a_local"] is None


def test_attack_deltas_and_bad_pairs():
    ra = {"deepwordbug": {"n": 100, "clean_accuracy": 0.8, "accuracy_under_attack": 0.2, "attack_success_rate": 0.75},
          "pwws": {"n": 50, "clean_accuracy": 0.8, "accuracy_under_attack": 0.1, "attack_success_rate": 0.9}}
    rb = {"deepwordbug": {"n": 100, "clean_accuracy": 0.7, "accuracy_under_attack": 0.4,
                          "attack_success_rate": 0.43}}
    out = diff.attack_deltas(ra, rb)
    assert list(out) == ["deepwordbug"]  # only recipes that attacked both
    under = out["deepwordbug"][1]
    assert under.delta == pytest.approx(0.2) and under.a_ci == intervals.wilson(20, 100)
    assert under.overlap is False
    assert out["deepwordbug"][2].a_ci == intervals.wilson(60, 80)  # successes among the 80 correct before
    with pytest.raises(PrunescopeError, match="same model"):
        diff.check_comparable({"key": "a", "config": {"model": "m1"}}, {"key": "b", "config": {"model": "m2"}})
    with pytest.raises(PrunescopeError, match="itself"):
        diff.check_comparable({"key": "a", "config": {"model": "m"}}, {"key": "a", "config": {"model": "m"}})
    with pytest.raises(PrunescopeError, match="differ in shape"):
        diff.mask_diff(np.ones((2, 3)), np.ones((3, 2)))
    md = diff.mask_diff([[1, 1, 0, 0]], [[1, 0, 1, 0]])
    assert (md.both, md.a_only, md.b_only, md.neither) == (1, 1, 1, 1) and md.agreement == 0.5


def test_compare_refuses_a_missing_run(tmp_path):
    with pytest.raises(PrunescopeError, match="not in the results store"):
        diff.compare(Store(tmp_path / "r.sqlite"), "nope", "nada")


def store_attack(store: Store, run_key: str, n: int, under: float, recipe: str = "deepwordbug") -> None:
    """A finished attack record on a stored run's pruned model (the measures given, no examples)."""
    from pruning_core.experiments.config import ExperimentConfig
    from pruning_core.robustness import AttackConfig

    cfg = AttackConfig(ExperimentConfig.from_dict(store.load(run_key)["config"]), recipe=recipe, n=n)
    summary = {"clean_accuracy": 0.8, "accuracy_under_attack": under, "attack_success_rate": 1 - under / 0.8}
    store.save_attack({"key": cfg.key(), "meta": cfg.meta(), "config": cfg.to_dict(), "summary": summary,
                       "examples": []})


def test_attacks_of_a_run_are_found_by_its_target_key(pair, tmp_path):
    store, a, b = pair
    store_attack(store, a, 20, 0.25)
    store_attack(store, a, 60, 0.3)  # the larger attack wins
    store_attack(store, b, 60, 0.5)
    d = diff.compare(store, a, b)
    assert d.attacks_a["deepwordbug"]["n"] == 60 and d.attacks_a["deepwordbug"]["accuracy_under_attack"] == 0.3
    under = d.attacks["deepwordbug"][1]
    assert under.measure == "accuracy_under_attack" and under.delta == pytest.approx(0.2)
    assert under.b_ci == intervals.wilson(30, 60)
