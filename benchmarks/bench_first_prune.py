"""What a speaker waits for after pressing Prune on the dashboard (issue 15): the dashboard's default config
(dashboard/common.py PRUNE_DEFAULTS: SparseGPT 50%, calibration 128 x 64, the whole Rotten Tomatoes test
split, seed 0) submitted as a job, timed from submit to stored, through the real job pool (one worker), on a
fresh store each time:

- cold: no pool runs (the worker process starts, imports torch, loads the model, evaluates it dense, runs
  the dense shadow, prunes, evaluates the pruned model, stores);
- warm: what the Prune page does on opening (`jobs.warm_up`): the pool loads the model, evaluates it and
  runs the calibration's dense shadow while the speaker talks; then Prune (the warm-up's own time is shown);
- then a second and a third method in the same pool (Wanda, magnitude 2:4): what each later press costs.

"first accuracy": when the live progress shows the pruned accuracy on a first random fifth of the test split
(`experiment.FIRST_SLICE`); the whole split's follows at "stored".

    python -m benchmarks.bench_first_prune [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import OUT, print_table

DEFAULT = dict(method="sparsegpt", sparsity=0.5, calib_size=128, seq_len=64, eval_size=None, seed=0)


def config(**over):
    from pruning_core.experiments.config import ExperimentConfig

    return ExperimentConfig.create(**(DEFAULT | over))


def stop_pool(store) -> None:
    import pruning_core.jobs.table as table

    with table.reading(store) as con:
        pool = table.pool_row(con)
    if pool and pool["pid"]:
        try:
            os.kill(pool["pid"], signal.SIGTERM)
        except ProcessLookupError:
            pass
        time.sleep(2)


def timed(store, kind: str, cfg) -> tuple[float, float, float | None]:
    """(submit -> done wall seconds, seconds the worker spent on it, submit -> the first-slice accuracy on
    screen (the live progress's "pruned accuracy on a first random ..." event), None where there is none)."""
    from pruning_core import jobs

    t = time.perf_counter()
    job, how = jobs.submit(store, kind, {"config": cfg.to_dict()}) if kind == "prune" else \
        (jobs.warm_up(store, cfg.to_dict()), "queued")
    assert job is not None and how == "queued", how
    first, seq = None, 0
    while True:
        for ev in jobs.events(store, job.id, after=seq):
            seq = ev["seq"]
            if first is None and "first random" in str(ev["data"].get("text", "")):
                first = time.perf_counter() - t
        done = jobs.get(store, job.id)
        if not done.active:
            break
        time.sleep(0.05)
    assert done.state == "done", done.error
    return time.perf_counter() - t, done.finished - done.started, first


def one_round(root: Path, i: int) -> list[list]:
    from pruning_core.storage.store import Store

    rows = []
    cold = Store(root / f"cold{i}.sqlite")
    rows.append(["cold: first Prune, no pool running", *timed(cold, "prune", config())])
    stop_pool(cold)
    warm = Store(root / f"warm{i}.sqlite")
    rows.append(["warm-up on opening the page (hidden)", *timed(warm, "warm", config())])
    for label, cfg in (("warm: first Prune (SparseGPT 50%)", config()),
                       ("then Wanda 50%", config(method="wanda")),
                       ("then magnitude 2:4", config(method="magnitude", pattern="2:4"))):
        rows.append([label, *timed(warm, "prune", cfg)])
    stop_pool(warm)
    return rows


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=1, help="rounds (the table shows the median)")
    args = ap.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="prunescope-first-prune-"))
    os.environ.update(PRUNESCOPE_JOB_WORKERS="1", PRUNESCOPE_WARM="on", PRUNESCOPE_JOB_IDLE="120")
    rounds = [one_round(root, i) for i in range(args.repeats)]
    def med(k: int, col: int):
        vals = [x[k][col] for x in rounds if x[k][col] is not None]
        return statistics.median(vals) if vals else "-"

    rows = [[r[0], med(k, 3), med(k, 1), med(k, 2)] for k, r in enumerate(rounds[0])]
    load = os.getloadavg()[0]
    text = print_table(["what", "submit -> first accuracy s", "submit -> stored s", "in the worker s"], rows,
                       f"Dashboard default prune through the job pool (median of {args.repeats}; "
                       f"{os.cpu_count()} cores, load {load:.1f} at the end)")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "first_prune.txt").write_text(text)
    return text


if __name__ == "__main__":
    main()
