"""Sweep throughput: one grid (2 tasks x 3 methods x 4 sparsities, small calibration) run by
`prunescope sweep` with a local pool of 1 worker, a local pool of 2 workers, and a private local Ray,
each into a fresh store; wall time (process start, Ray start-up and worker imports included),
configs per minute, throughput against 1 worker, the per-config cost each method measured, and
whether every mode stored the same results.

    python -m benchmarks.bench_sweep [--calib-size 32] [--seq-len 64] [--eval-size 200]
                                     [--modes local1 local2 ray] [--tasks rotten_tomatoes bbc_news]

Stores and the sweep file go to artifacts/bench/sweep_<mode>.sqlite (replaced on every run).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import time

from benchmarks.common import OUT, machine, print_table
from pruning_core.sweeps.executors import cpu_count
from pruning_core.storage.store import Store

METHODS = ("magnitude", "wanda", "sparsegpt")
SPARSITIES = (0.3, 0.5, 0.7, 0.9)
MODES = {
    "local1": ["--executor", "local", "--workers", "1"],
    "local2": ["--executor", "local", "--workers", "2"],
    "ray": ["--executor", "ray", "--workers", "2"],
}


def sweep_file(args) -> str:
    spec = {"name": "bench", "tasks": args.tasks, "methods": list(METHODS), "sparsities": list(SPARSITIES),
            "calib_size": args.calib_size, "seq_len": args.seq_len, "eval_size": args.eval_size, "device": "cpu"}
    path = OUT / "sweep_bench.yaml"
    path.write_text("\n".join(f"{k}: {json.dumps(v)}" for k, v in spec.items()) + "\n")  # JSON values are YAML
    return str(path)


def run_mode(mode: str, path: str) -> dict:
    """One fresh store, one `prunescope sweep` process; its wall time."""
    db = OUT / f"sweep_{mode}.sqlite"
    for p in db.parent.glob(db.name + "*"):
        p.unlink()
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pruning_core.cli", "sweep", path, "--store", str(db), *MODES[mode]],
                          capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{mode} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return {"mode": mode, "wall": wall}


def stored(mode: str) -> dict[str, dict]:
    store = Store(OUT / f"sweep_{mode}.sqlite")
    return {k: store.load(k) for k in store.run_keys()}


def report(runs: list[dict], grid: str) -> None:
    """The tables, from each mode's wall time and what its store holds."""
    results = {r["mode"]: stored(r["mode"]) for r in runs}
    first = runs[0]["mode"]
    base = len(results[first]) / runs[0]["wall"]
    rows = []
    for r in runs:
        res = results[r["mode"]].values()
        rate = len(res) / r["wall"]
        rows.append([r["mode"], len(res), r["wall"], 60 * rate, rate / base,
                     sum(x["prune_seconds"] + x["eval_seconds"] for x in res)])
    print_table(["mode", "configs", "wall s", "configs/min", f"throughput vs {first}", "sum of prune+eval s"], rows,
                f"sweep throughput: {grid}; {machine()}")
    cost_rows = []
    for r in runs:
        for m in METHODS:
            for task in sorted({x["config"]["task"] for x in results[r["mode"]].values()}):
                mine = [x for x in results[r["mode"]].values() if x["config"]["method"] == m
                        and x["config"]["task"] == task]
                cost_rows.append([r["mode"], m, task, statistics.median(x["prune_seconds"] for x in mine),
                                  statistics.median(x["eval_seconds"] for x in mine),
                                  max(x["peak_total_mb"] for x in mine), mine[0]["calib_tokens"]])
    print_table(["mode", "method", "task", "median prune s", "median eval s", "max peak MB", "calib tokens"],
                cost_rows, "per-config cost (MiniLM-L6, 22.7M parameters; torch threads = cores // workers)")
    for a, b in itertools.combinations([r["mode"] for r in runs], 2):
        ra, rb = results[a], results[b]
        differ = [k for k in ra if k in rb and (ra[k]["accuracy"], ra[k]["achieved_sparsity"])
                  != (rb[k]["accuracy"], rb[k]["achieved_sparsity"])]
        methods = sorted({ra[k]["config"]["method"] for k in differ})
        threads = {m: 1 if m == "ray" else max(1, cpu_count() // int(MODES[m][-1])) for m in (a, b)}
        print(f"{b} vs {a}: the same {len(ra)} configs stored: {set(ra) == set(rb)}; accuracy or achieved sparsity "
              f"differs in {len(differ)}" + (f" ({', '.join(methods)}; torch threads {threads[a]} vs {threads[b]})"
                                              if differ else ""))
    (OUT / "sweep_bench.json").write_text(json.dumps({"grid": grid, "runs": runs, "rows": rows,
                                                      "costs": cost_rows}, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", nargs="+", default=["rotten_tomatoes", "bbc_news"])
    ap.add_argument("--calib-size", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--eval-size", type=int, default=200)
    ap.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    ap.add_argument("--report-only", action="store_true",
                    help="print the tables again from the last run's stores and wall times")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    grid = (f"{len(args.tasks)} tasks x {len(METHODS)} methods x {len(SPARSITIES)} sparsities, calibration "
            f"{args.calib_size} x {args.seq_len}, {args.eval_size} eval examples")
    if args.report_only:
        last = json.loads((OUT / "sweep_bench.json").read_text())
        runs = last.get("runs") or [{"mode": r[0], "wall": r[2]} for r in last["rows"]]
        report(runs, last["grid"])
        return
    path = sweep_file(args)
    runs = []
    for mode in args.modes:
        print(f"running {mode} ...", flush=True)
        runs.append(run_mode(mode, path))
    report(runs, grid)


if __name__ == "__main__":
    main()
