"""Cost of each method at 50%: prune seconds, ratio to one forward pass over the calibration set,
peak memory, accuracy. Default: shipped rotten_tomatoes model, 128 x 64-token calibration.

    python benchmarks/bench_methods.py [--task rotten_tomatoes] [--calib-size 128] [--seq-len 64]
"""

from __future__ import annotations

import argparse
import copy
import json

import torch

from benchmarks.common import OUT, best_of, machine, print_table
from pruning_core import calibration, engine
from pruning_core.config import ExperimentConfig
from pruning_core.experiment import load_dense, run_experiment


def forward_seconds(model, tok, calib) -> tuple[float, float]:
    """One forward over the calibration set: (padded to seq_len in one batch, as the reference code
    feeds it; length-sorted micro-batches, as the engine feeds it)."""
    ids = tok(list(calib.texts), truncation=True, max_length=calib.seq_len, padding="max_length",
              return_tensors="pt")
    with torch.no_grad():
        padded = best_of(lambda: model(**{k: v for k, v in ids.items() if k != "token_type_ids"}))
        bucketed = best_of(lambda: [model(input_ids=i, attention_mask=m.long()) for i, m in calib.batches])
    return padded, bucketed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="rotten_tomatoes")
    ap.add_argument("--calib-size", type=int, default=128)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--sparsity", type=float, default=0.5)
    args = ap.parse_args()
    model, tok = load_dense("default", args.task, "cpu")
    calib = calibration.from_task(tok, args.task, args.calib_size, args.seq_len, 0)
    fwd_pad, fwd_bucket = forward_seconds(model, tok, calib)
    rows, out = [], []
    for method in ("magnitude", "wanda", "sparsegpt"):
        # prune twice, report the faster (the first run warms caches and allocators)
        times = []
        for _ in range(2):
            res = engine.run(engine.prune(copy.deepcopy(model), calib, method, args.sparsity))
            times.append(res)
        res = min(times, key=lambda r: r.prune_seconds)
        exp = run_experiment(ExperimentConfig.create(task=args.task, method=method, sparsity=args.sparsity,
                                                     calib_size=args.calib_size, seq_len=args.seq_len,
                                                     device="cpu"))
        rows.append([method, res.prune_seconds, res.prune_seconds / fwd_pad, res.prune_seconds / fwd_bucket,
                     res.timings["forward"], res.timings["method"], res.peak_memory_mb,
                     exp.dense.accuracy, exp.pruned.accuracy, exp.pruned.n])
        out.append(dict(zip(["method", "prune_s", "x_forward_padded", "x_forward_bucketed", "forward_s",
                             "method_s", "peak_mb", "dense_acc", "acc", "n"], rows[-1])))
    title = (f"{args.task}: {args.sparsity:.0%} unstructured, calibration {calib.n_examples} x {args.seq_len} "
             f"tokens ({calib.real_tokens} real); one forward = {fwd_pad:.3f} s padded, {fwd_bucket:.3f} s "
             f"length-sorted; {machine()}")
    print_table(["method", "prune s", "x fwd (padded)", "x fwd (sorted)", "forward s", "method s", "peak MB",
                 "dense acc", "accuracy", "n eval"], rows, title)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"methods_{args.task}.json").write_text(json.dumps({"forward_padded_s": fwd_pad,
                                                               "forward_sorted_s": fwd_bucket, "rows": out}, indent=2))


if __name__ == "__main__":
    main()
