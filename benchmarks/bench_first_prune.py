"""What a speaker waits for after pressing Prune on the dashboard (issue 15): the dashboard's default config
(dashboard/common.py PRUNE_DEFAULTS: SparseGPT 50%, calibration 128 x 64, the whole Rotten Tomatoes test
split, seed 0) submitted as a job, timed from submit to stored, through the real job pool (one worker), on a
fresh store each time:

- cold: no pool runs (the worker process starts, imports torch, loads the model, evaluates it dense, runs
  the dense shadow, prunes, evaluates the pruned model, stores);
- warm: what the Prune page does on opening (`jobs.warm_up`): the pool loads the model, evaluates it and
  runs the calibration's dense shadow while the speaker talks; then Prune (the warm-up's own time is shown);
- then a second and a third method in the same pool (Wanda, magnitude 2:4): what each later press costs.

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


def timed(store, kind: str, cfg) -> tuple[float, float]:
    """(submit -> done wall seconds, seconds the worker spent on it) of one job."""
    from pruning_core import jobs

    t = time.perf_counter()
    job, how = jobs.submit(store, kind, {"config": cfg.to_dict()}) if kind == "prune" else \
        (jobs.warm_up(store, cfg.to_dict()), "queued")
    assert job is not None and how == "queued", how
    done = jobs.wait(store, job.id, timeout=1800)
    assert done.state == "done", done.error
    return time.perf_counter() - t, done.finished - done.started


def one_round(root: Path, i: int) -> list[list]:
    from pruning_core.storage.store import Store

    rows = []
    cold = Store(root / f"cold{i}.sqlite")
    wall, inside = timed(cold, "prune", config())
    rows.append(["cold: first Prune, no pool running", wall, inside])
    stop_pool(cold)
    warm = Store(root / f"warm{i}.sqlite")
    wall, inside = timed(warm, "warm", config())
    rows.append(["warm-up on opening the page (hidden)", wall, inside])
    for label, cfg in (("warm: first Prune (SparseGPT 50%)", config()),
                       ("then Wanda 50%", config(method="wanda")),
                       ("then magnitude 2:4", config(method="magnitude", pattern="2:4"))):
        wall, inside = timed(warm, "prune", cfg)
        rows.append([label, wall, inside])
    stop_pool(warm)
    return rows


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=1, help="rounds (the table shows the median)")
    args = ap.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="prunescope-first-prune-"))
    os.environ.update(PRUNESCOPE_JOB_WORKERS="1", PRUNESCOPE_WARM="on", PRUNESCOPE_JOB_IDLE="120")
    rounds = [one_round(root, i) for i in range(args.repeats)]
    rows = [[r[0], statistics.median(x[k][1] for x in rounds), statistics.median(x[k][2] for x in rounds)]
            for k, r in enumerate(rounds[0])]
    load = os.getloadavg()[0]
    text = print_table(["what", "submit -> stored s", "in the worker s"], rows,
                       f"Dashboard default prune through the job pool (median of {args.repeats}; "
                       f"{os.cpu_count()} cores, load {load:.1f} at the end)")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "first_prune.txt").write_text(text)
    return text


if __name__ == "__main__":
    main()
