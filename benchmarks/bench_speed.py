"""Speed for live demos (issue 15): every pruning path as a multiple of one calibration forward, the
dashboard's default prune + evaluation, and where the time goes (cProfile).

    python -m benchmarks.bench_speed [--tasks rotten_tomatoes,bbc_news] [--calib-size 128] [--seq-len 64]
    python -m benchmarks.bench_speed --scale bert-base   # a random bert-base-size model (benchmarks/speed_scale.py)

- unit: one forward of the whole model over the calibration set, in the engine's length-sorted
  micro-batches (fastest of 3);
- magnitude / wanda / sparsegpt (50%, and magnitude 2:4) with every measure (held-out set included):
  `wall` is the whole `engine.prune` call, `prune_s` the engine's own `prune_seconds` (held-out passes
  left out); `cold` with the dense activation cache emptied first, `warm` a second run on the same
  calibration (the cache, where there is one, filled);
- the dashboard's default (dashboard/common.py PRUNE_DEFAULTS: SparseGPT 50%, calibration 64 x 64, 500
  evaluation examples, seed 0): `run_experiment` wall after the model is loaded, first run and then a
  second method (Wanda) on the same calibration;
- akrp 50% / sparsegpt 50% on the same calibration, both cold;
- cProfile of a cold magnitude prune and of the dashboard default: top entries by own time.
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import io
import json
import pstats
import time

import torch

from benchmarks.common import OUT, best_of, machine, print_table
from pruning_core.data import calibration
from pruning_core.experiments.config import ExperimentConfig
from pruning_core.experiments.experiment import dense_outputs, load_dense, run_experiment
from pruning_core.prune import engine


def clear_caches() -> None:
    """Forget every dense result kept in this process (the dense activation cache, where there is one)."""
    try:
        from pruning_core.prune import dense_cache
    except ImportError:  # the engine before issue 15
        return
    dense_cache.clear()


def prune_wall(model, calib, held, method, sparsity=0.5, pattern="unstructured", cold=True, **kw):
    """(wall seconds, PruneResult) of one prune of a copy of `model` with the held-out set."""
    if cold:
        clear_caches()
    net = copy.deepcopy(model)
    t = time.perf_counter()
    res = engine.run(engine.prune(net, calib, method, sparsity, pattern, heldout=held, **kw))
    return time.perf_counter() - t, res


def cache_kw(task: str) -> dict:
    """The engine's dense-cache key argument, where the engine has one."""
    import inspect

    return {"dense_key": ("default", task, "cpu")} if "dense_key" in inspect.signature(engine.prune).parameters else {}


def task_rows(task: str, n: int, seq_len: int, methods) -> tuple[list[list], dict]:
    model, tok = load_dense("default", task, "cpu")
    calib = calibration.from_task(tok, task, n, seq_len, 0)
    held = calibration.heldout(tok, task, n, seq_len, 0, exclude=calib.texts)
    with torch.no_grad():
        unit = best_of(lambda: [model(input_ids=i, attention_mask=m.long()) for i, m in calib.batches])
    rows = [[task, "one calibration forward (unit)", unit, 1.0, "", "", ""]]
    out = {"unit_s": unit, "real_tokens": calib.real_tokens}
    kw = cache_kw(task)
    for method, pattern in methods:
        prune_wall(model, calib, held, method, pattern=pattern, **kw)  # warm-up (allocators, first calls)
        cold, res = prune_wall(model, calib, held, method, pattern=pattern, **kw)
        warm, res2 = prune_wall(model, calib, held, method, pattern=pattern, cold=False, **kw)
        same = all(torch.equal(res.masks[k], res2.masks[k]) for k in res.masks)
        name = f"{method} 50% {pattern}"
        rows.append([task, name, cold, cold / unit, res.prune_seconds / unit, warm / unit,
                     res2.prune_seconds / unit])
        out[name] = {"wall_cold": cold, "prune_s_cold": res.prune_seconds, "wall_warm": warm,
                     "prune_s_warm": res2.prune_seconds, "warm_masks_same": same, "timings": res.timings}
    return rows, out


def dashboard_rows() -> tuple[list[list], dict]:
    """The Prune page's defaults: first run, then a second method on the same calibration."""
    clear_caches()
    dense_outputs.cache_clear()
    load_dense("default", "rotten_tomatoes", "cpu")
    cfg = ExperimentConfig.create(method="sparsegpt", sparsity=0.5, calib_size=64, seq_len=64, eval_size=500,
                                  seed=0, device="cpu")
    t = time.perf_counter()
    first = run_experiment(cfg)
    t1 = time.perf_counter() - t
    t = time.perf_counter()
    second = run_experiment(ExperimentConfig.create(method="wanda", sparsity=0.5, calib_size=64, seq_len=64,
                                                    eval_size=500, seed=0, device="cpu"))
    t2 = time.perf_counter() - t
    rows = [["dashboard default: sparsegpt 50%, calib 64, eval 500, first run", t1, "<= 3 s"],
            ["same, second method (wanda) on the same calibration", t2, "<= 2 s"]]
    return rows, {"first_s": t1, "second_s": t2, "first_acc": first.pruned.accuracy, "second_acc": second.pruned.accuracy,
                  "first_prune_s": first.prune.prune_seconds, "first_eval_s": first.eval_seconds,
                  "second_prune_s": second.prune.prune_seconds, "second_eval_s": second.eval_seconds}


def profile(fn, top: int = 15) -> str:
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).strip_dirs().sort_stats("tottime").print_stats(top)
    lines = buf.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if "ncalls" in line)
    return "\n".join(lines[start - 2:])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", default="rotten_tomatoes,bbc_news", help="comma-separated; '' for none")
    ap.add_argument("--calib-size", type=int, default=None, help="128 (--scale: 32, to stay within ~6 minutes)")
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--label", default="")
    ap.add_argument("--scale", choices=["bert-base"], help="only the scale benchmark (see speed_scale.py)")
    args = ap.parse_args()
    if args.scale:
        from benchmarks import speed_scale

        args.calib_size = args.calib_size or 32
        text, report = speed_scale.run(args.scale, args.calib_size, args.seq_len, not args.no_profile)
        print(text[text.find("# cProfile"):] if "# cProfile" in text else "")
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / f"speed_{args.scale}{'_' + args.label if args.label else ''}.txt").write_text(text)
        (OUT / f"speed_{args.scale}{'_' + args.label if args.label else ''}.json").write_text(
            json.dumps(report, indent=1, default=str))
        return
    args.calib_size = args.calib_size or 128
    report = {"machine": machine()}
    rows = []
    for task in filter(None, args.tasks.split(",")):
        methods = [("magnitude", "unstructured"), ("magnitude", "2:4"), ("wanda", "unstructured"),
                   ("sparsegpt", "unstructured")]
        if task != "rotten_tomatoes":
            methods = [m for m in methods if m[1] == "unstructured"]
        r, out = task_rows(task, args.calib_size, args.seq_len, methods)
        rows += r
        report[task] = out
    text = print_table(["task", "measure", "cold wall s", "cold wall / unit", "cold prune_s / unit",
                        "warm wall / unit", "warm prune_s / unit"], rows,
                       f"Pruning with every measure, as multiples of one calibration forward "
                       f"({args.calib_size} x {args.seq_len}; {machine()})")

    model, tok = load_dense("default", "rotten_tomatoes", "cpu")
    calib = calibration.from_task(tok, "rotten_tomatoes", args.calib_size, args.seq_len, 0)
    held = calibration.heldout(tok, "rotten_tomatoes", args.calib_size, args.seq_len, 0, exclude=calib.texts)
    kw = cache_kw("rotten_tomatoes")
    sgpt, _ = prune_wall(model, calib, held, "sparsegpt", **kw)
    akrp, _ = prune_wall(model, calib, held, "akrp", **kw)
    report["akrp_over_sparsegpt"] = akrp / sgpt
    drows, report["dashboard"] = dashboard_rows()
    drows.append([f"akrp 50% / sparsegpt 50% ({akrp:.1f} s / {sgpt:.1f} s, cold)", akrp / sgpt, "<= 1.3x"])
    text += print_table(["measure", "value", "target"], drows, "Dashboard default and akrp")

    if not args.no_profile:
        text += "\n# cProfile, cold magnitude 50% (RT), top by own time\n"
        text += profile(lambda: prune_wall(model, calib, held, "magnitude", **kw))
        cfg = ExperimentConfig.create(method="sparsegpt", sparsity=0.5, calib_size=64, seq_len=64, eval_size=500,
                                      seed=0, device="cpu")
        clear_caches()
        dense_outputs.cache_clear()
        text += "\n# cProfile, dashboard default (first run), top by own time\n"
        text += profile(lambda: run_experiment(cfg))
        print(text[text.index("# cProfile"):])
    OUT.mkdir(parents=True, exist_ok=True)
    suffix = f"_{args.label}" if args.label else ""
    (OUT / f"speed{suffix}.txt").write_text(text)
    (OUT / f"speed{suffix}.json").write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
