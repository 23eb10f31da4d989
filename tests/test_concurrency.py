"""Two sessions pruning different configs at once get their own, correct results (shared dense model)."""

import threading

import pytest

from pruning_core.experiments.config import ExperimentConfig
from pruning_core.experiments.experiment import load_dense, run_experiment


@pytest.mark.slow  # several full runs, twice: about half a minute
def test_parallel_runs_match_sequential_runs():
    a = ExperimentConfig.create(method="wanda", sparsity=0.5, calib_size=8, seq_len=32, eval_size=48, device="cpu")
    b = ExperimentConfig.create(method="magnitude", sparsity=0.8, calib_size=8, seq_len=32, eval_size=48, device="cpu")
    dense, _ = load_dense("default", "rotten_tomatoes", "cpu")
    before = {k: v.clone() for k, v in dense.state_dict().items()}
    results = {}

    def work(cfg):
        results[cfg.method] = run_experiment(cfg).to_json()

    threads = [threading.Thread(target=work, args=(c,)) for c in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for cfg in (a, b):
        alone = run_experiment(cfg).to_json()
        got = results[cfg.method]
        assert got["achieved_sparsity"] == alone["achieved_sparsity"]
        assert got["accuracy"] == alone["accuracy"]
        assert [r["local_error"] for r in got["layers"]] == pytest.approx([r["local_error"] for r in alone["layers"]],
                                                                           rel=1e-5)
    assert abs(results["magnitude"]["achieved_sparsity"] - 0.8) < 0.005
    # the cached dense model was never mutated
    assert all((v == before[k]).all() for k, v in dense.state_dict().items())
