"""Cost of each method at 50%: prune seconds, ratio to one forward pass over the calibration set,
peak memory, accuracy. Default: shipped rotten_tomatoes model, 128 x 64-token calibration.

    python -m benchmarks.bench_methods [--task rotten_tomatoes] [--calib-size 128] [--seq-len 64]

Each method runs in a fresh process, so its peak-memory growth is not hidden by memory an earlier
method freed; time is the faster of two prunes (the first warms up allocators).
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys

import torch

from benchmarks.common import OUT, best_of, machine, print_table
from pruning_core.data import calibration
from pruning_core.prune import engine
from pruning_core.experiments.config import ExperimentConfig
from pruning_core.experiments.experiment import load_dense, run_experiment

METHODS = ("magnitude", "wanda", "sparsegpt")


def forward_seconds(model, tok, calib) -> tuple[float, float]:
    """One forward over the calibration set: (padded to seq_len in one batch, as the reference code
    feeds it; length-sorted micro-batches, as the engine feeds it)."""
    ids = tok(list(calib.texts), truncation=True, max_length=calib.seq_len, padding="max_length",
              return_tensors="pt")
    with torch.no_grad():
        padded = best_of(lambda: model(**{k: v for k, v in ids.items() if k != "token_type_ids"}))
        bucketed = best_of(lambda: [model(input_ids=i, attention_mask=m.long()) for i, m in calib.batches])
    return padded, bucketed


def one(args) -> dict:
    """Measure one method in this (fresh) process."""
    model, tok = load_dense("default", args.task, "cpu")
    calib = calibration.from_task(tok, args.task, args.calib_size, args.seq_len, 0)
    first = engine.run(engine.prune(copy.deepcopy(model), calib, args.one, args.sparsity))
    second = engine.run(engine.prune(copy.deepcopy(model), calib, args.one, args.sparsity))
    fast = min(first, second, key=lambda r: r.prune_seconds)
    exp = run_experiment(ExperimentConfig.create(task=args.task, method=args.one, sparsity=args.sparsity,
                                                 calib_size=args.calib_size, seq_len=args.seq_len, device="cpu"))
    return {"method": args.one, "prune_s": fast.prune_seconds, "forward_s": fast.timings["forward"],
            "method_s": fast.timings["method"], "peak_growth_mb": first.peak_memory_mb,
            "peak_total_mb": first.peak_total_mb, "dense_acc": exp.dense.accuracy, "acc": exp.pruned.accuracy,
            "n": exp.pruned.n, "real_tokens": calib.real_tokens, "examples": calib.n_examples}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="rotten_tomatoes")
    ap.add_argument("--calib-size", type=int, default=128)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--sparsity", type=float, default=0.5)
    ap.add_argument("--one", choices=METHODS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args)))
        return
    model, tok = load_dense("default", args.task, "cpu")
    calib = calibration.from_task(tok, args.task, args.calib_size, args.seq_len, 0)
    fwd_pad, fwd_sorted = forward_seconds(model, tok, calib)
    rows = []
    for method in METHODS:
        cmd = [sys.executable, "-m", "benchmarks.bench_methods", "--one", method, "--task", args.task,
               "--calib-size", str(args.calib_size), "--seq-len", str(args.seq_len), "--sparsity", str(args.sparsity)]
        r = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
        rows.append(r)
    table = [[r["method"], r["prune_s"], r["prune_s"] / fwd_pad, r["prune_s"] / fwd_sorted, r["forward_s"],
              r["method_s"], r["peak_growth_mb"], r["peak_total_mb"], r["dense_acc"], r["acc"], r["n"]] for r in rows]
    title = (f"{args.task}: {args.sparsity:.0%} unstructured, calibration {calib.n_examples} x {args.seq_len} "
             f"tokens ({calib.real_tokens} real); one forward = {fwd_pad:.3f} s padded, {fwd_sorted:.3f} s "
             f"length-sorted; {machine()}")
    print_table(["method", "prune s", "x fwd (padded)", "x fwd (sorted)", "forward s", "method s", "peak +MB",
                 "peak total MB", "dense acc", "accuracy", "n eval"], table, title)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"methods_{args.task}.json").write_text(json.dumps(
        {"forward_padded_s": fwd_pad, "forward_sorted_s": fwd_sorted, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
