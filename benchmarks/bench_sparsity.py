"""Accuracy vs sparsity (0.1 ... 0.9) for every method and pattern on both default tasks.

    python benchmarks/bench_sparsity.py [--tasks rotten_tomatoes bbc_news] [--calib-size 128]

Results are appended to artifacts/bench/sparsity.jsonl as they come and reused on a rerun
(resumable); the table is printed at the end.
"""

from __future__ import annotations

import argparse
import json

from benchmarks.common import OUT, machine, print_table
from pruning_core.config import ExperimentConfig
from pruning_core.experiment import run_experiment

SPARSITIES = [round(0.1 * i, 1) for i in range(1, 10)]
METHODS = ("magnitude", "wanda", "sparsegpt")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", nargs="+", default=["rotten_tomatoes", "bbc_news"])
    ap.add_argument("--calib-size", type=int, default=128)
    ap.add_argument("--seq-len", type=int, default=64)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "sparsity.jsonl"
    done = {}
    if path.exists():
        for line in path.read_text().splitlines():
            r = json.loads(line)
            done[r["key"]] = r
    wanted: dict[str, set] = {}
    for task in args.tasks:
        configs = [ExperimentConfig.create(task=task, method=m, sparsity=s, calib_size=args.calib_size,
                                           seq_len=args.seq_len, device="cpu")
                   for m in METHODS for s in SPARSITIES]
        configs += [ExperimentConfig.create(task=task, method=m, sparsity=0.5, pattern=p, calib_size=args.calib_size,
                                            seq_len=args.seq_len, device="cpu")
                    for m in METHODS for p in ("2:4", "4:8")]
        wanted[task] = {c.key() for c in configs}
        for cfg in configs:
            if cfg.key() in done:
                continue
            res = run_experiment(cfg)
            row = {"key": cfg.key(), "task": task, "method": cfg.method, "pattern": cfg.pattern,
                   "sparsity": cfg.sparsity, "dense_accuracy": res.dense.accuracy, "accuracy": res.pruned.accuracy,
                   "n": res.pruned.n, "prune_seconds": res.prune.prune_seconds, "logits_kl": res.pruned.kl_to_dense,
                   "final_cumulative_error": res.prune.blocks[-1].cumulative_error}
            done[cfg.key()] = row
            with path.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"{task} {cfg.method} {cfg.pattern} {cfg.sparsity}: accuracy {row['accuracy']:.4f}", flush=True)
    for task in args.tasks:
        rows_t = [done[k] for k in wanted[task] if k in done]
        if not rows_t:
            continue
        dense = rows_t[0]["dense_accuracy"]
        headers = ["method"] + [f"{s:.1f}" for s in SPARSITIES] + ["2:4", "4:8"]
        rows = []
        for m in METHODS:
            acc = {(r["pattern"], r["sparsity"]): r["accuracy"] for r in rows_t if r["method"] == m}
            rows.append([m] + [acc.get(("unstructured", s), float("nan")) for s in SPARSITIES]
                        + [acc.get(("2:4", 0.5), float("nan")), acc.get(("4:8", 0.5), float("nan"))])
        print_table(headers, rows, f"{task}: accuracy vs sparsity (dense {dense:.4f}, n = {rows_t[0]['n']}, "
                                   f"calibration {args.calib_size} x {args.seq_len}; {machine()})")


if __name__ == "__main__":
    main()
