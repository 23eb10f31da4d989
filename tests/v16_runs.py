"""Two tiny real prunes of the shipped model for the issue-16 views (stored once per results store)."""

from __future__ import annotations

import torch

PAIR = (("magnitude", 0.5), ("wanda", 0.7))


def tiny_pair(store) -> tuple[str, str]:
    """Magnitude 50% and Wanda 70% of the shipped model on rotten_tomatoes (8 calibration texts, 48 test
    examples, one torch thread), stored with their masks in `store` unless already there: their keys."""
    from pruning_core.experiments.config import ExperimentConfig
    from pruning_core.experiments.experiment import run_experiment

    keys = []
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for method, sparsity in PAIR:
            cfg = ExperimentConfig.create(model="default", task="rotten_tomatoes", method=method, sparsity=sparsity,
                                          calib_size=8, seq_len=32, eval_size=48, seed=1)
            if not store.has(cfg.key()):
                res = run_experiment(cfg)
                store.save(res.to_json(), res.prune.masks)
            keys.append(cfg.key())
    finally:
        torch.set_num_threads(before)
    return keys[0], keys[1]
