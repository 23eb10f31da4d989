"""Accuracy vs sparsity (0.1 ... 0.9) for every method and pattern on both default tasks.

    python -m benchmarks.bench_sparsity [--tasks rotten_tomatoes bbc_news] [--calib-size 128] [--export]

Runs go through the results store (artifacts/bench/sweep.sqlite), so a rerun reuses finished runs
(resumable). `--export` writes the results to assets/demo/ (the Compare page's shipped curves).
"""

from __future__ import annotations

import argparse
import math

from benchmarks.common import OUT, machine, print_table
from pruning_core.storage.store import Store
from pruning_core.storage.demo import DEMO_DIR, export_demo
from pruning_core.sweeps.run import run_grid
from pruning_core.sweeps.spec import SPARSITIES, grid

METHODS = ("magnitude", "wanda", "sparsegpt")
PATTERNS = ("unstructured", "2:4", "4:8")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", nargs="+", default=["rotten_tomatoes", "bbc_news"])
    ap.add_argument("--calib-size", type=int, default=128)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--export", action="store_true", help="write the results to assets/demo/")
    args = ap.parse_args()
    store = Store(OUT / "sweep.sqlite")
    for task in args.tasks:
        configs = grid(task, METHODS, PATTERNS, calib_size=args.calib_size, seq_len=args.seq_len, device="cpu")

        def progress(done, total, cfg, computed):
            if computed:
                print(f"[{done}/{total}] {task} {cfg.method} {cfg.pattern} {cfg.sparsity:g}", flush=True)

        results = run_grid(configs, store, on_progress=progress)
        if args.export:
            export_demo(results, DEMO_DIR / f"sweep_{task}.jsonl")
        acc = {(r["config"]["method"], r["config"]["pattern"], r["config"]["sparsity"]): r for r in results}
        rows = []
        for m in METHODS:
            row = [m] + [acc[(m, "unstructured", s)]["accuracy"] for s in SPARSITIES]
            row += [acc[(m, p, 0.5)]["accuracy"] for p in ("2:4", "4:8")]
            rows.append(row)
        first = results[0]
        print_table(["method"] + [f"{s:.1f}" for s in SPARSITIES] + ["2:4", "4:8"], rows,
                    f"{task}: accuracy vs sparsity (dense {first['dense_accuracy']:.4f}, n = {first['eval_examples']}, "
                    f"calibration {args.calib_size} x {args.seq_len}; {machine()})")
        kl_rows = [[m] + [acc[(m, "unstructured", s)]["blocks"][-1]["cumulative_error"] for s in SPARSITIES]
                   for m in METHODS]
        print_table(["method"] + [f"{s:.1f}" for s in SPARSITIES], kl_rows,
                    f"{task}: cumulative error at the last block output (calibration set)")
        assert not any(math.isnan(v) for r in rows for v in r[1:])


if __name__ == "__main__":
    main()
