"""The seed claims of the structured methods, measured on the default tasks.

    python -m benchmarks.bench_structured [--tasks rotten_tomatoes bbc_news] [--parts a b c]
                                          [--budgets 0.4 0.6 0.8] [--pat-steps 300] [--repeats 20]

(a) test accuracy of kprune vs kwon at 40, 60 and 80% of encoder FLOPs removed (paper: K-prune's
    lead grows with compression), with the achieved FLOPs reduction, parameters kept and prune time;
(b) pat vs prune-then-LoRA (the `baseline` option) at 25% of hidden channels removed, the same kept
    width, training steps, batch and learning rate; accuracy and training time;
(c) CPU speed of every exported model of (a) and (b), and of one unstructured 50% SparseGPT run, against
    the dense model: latency at batch 1 and throughput at batch 32 (median of `--repeats` passes, at
    the task's average calibration length), next to sparsity and FLOPs (sparsity is not speed).
Runs go through a results store (artifacts/bench/structured.sqlite): a rerun reuses finished runs, so
a killed benchmark resumes; exports go to artifacts/bench/exports/.
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.common import OUT, machine, print_table
from pruning_core.config import ExperimentConfig
from pruning_core.store import Store
from pruning_core.sweep import run_grid

CALIB = dict(calib_size=128, seq_len=64, device="cpu")


def _progress(done, total, cfg, computed):
    if computed:
        print(f"[{done}/{total}] {cfg.task} {cfg.method} {cfg.sparsity:g} {dict(cfg.options)}", flush=True)


def _flops_removed(res) -> float:
    s = res["structure"]
    return 1 - s["flops"] / s["flops_dense"]


def _train_seconds(res) -> float | None:
    for entry in res["structure"].get("log") or []:
        if "train_seconds" in entry:
            return entry["train_seconds"]
    return None


def kprune_vs_kwon(store, task, budgets) -> list[dict]:
    configs = [ExperimentConfig.create(task=task, method=m, sparsity=b, **CALIB) for b in budgets
               for m in ("kwon", "kprune")]
    results = run_grid(configs, store, on_progress=_progress)
    rows = []
    for b in budgets:
        pair = {r["config"]["method"]: r for r in results if r["config"]["sparsity"] == b}
        kw, kp = pair["kwon"], pair["kprune"]
        rows.append([f"{b:.0%}", _flops_removed(kw), kw["accuracy"], kw["prune_seconds"], _flops_removed(kp),
                     kp["accuracy"], kp["prune_seconds"], f"{100 * (kp['accuracy'] - kw['accuracy']):+.1f}"])
    dense = results[0]
    print_table(["budget", "kwon FLOPs removed", "kwon acc", "kwon s", "kprune FLOPs removed", "kprune acc",
                 "kprune s", "kprune - kwon (points)"], rows,
                f"{task}: retraining-free structured pruning, {CALIB['calib_size']} calibration texts "
                f"(dense accuracy {dense['dense_accuracy']:.4f}, n = {dense['eval_examples']}; {machine()})")
    return results


def pat_vs_lora(store, task, steps) -> list[dict]:
    configs = [ExperimentConfig.create(task=task, method="pat", sparsity=0.25, **CALIB,
                                       options={"steps": steps, "baseline": baseline})
               for baseline in (False, True)]
    results = run_grid(configs, store, on_progress=_progress)
    rows = []
    for r in results:
        s = r["structure"]
        rows.append(["prune-then-LoRA" if r["config"]["options"]["baseline"] else "PAT",
                     f"{s['hidden_kept']} / {s['hidden_size']}", _flops_removed(r), r["accuracy"],
                     _train_seconds(r), r["prune_seconds"]])
    print_table(["method", "hidden kept", "FLOPs removed", "test acc", "train s", "total s"], rows,
                f"{task}: 25% of hidden channels removed, {steps} steps "
                f"(dense accuracy {results[0]['dense_accuracy']:.4f}, n = {results[0]['eval_examples']})")
    return results


def speed_table(store, task, results, repeats) -> None:
    from pruning_core import speed
    from pruning_core.export import export_run, load_exported
    from pruning_core.experiment import load_dense

    dense_net, tok = load_dense("default", task, "cpu")
    seq_len = max(2, round(results[0]["structure"]["seq_len"])) if results else 64
    base = speed.measure(dense_net, tok, seq_len, "cpu", repeats=repeats)
    rows = [["dense", 0.0, 0.0, base["latency_ms"], 1.0, base["throughput"], 1.0]]
    for r in results:
        folder = export_run(r["key"], store, f"{task}-{r['key']}", root=OUT / "exports", force=True)
        model, tok2, _ = load_exported(folder, "cpu")
        m = speed.measure(model, tok2, seq_len, "cpu", repeats=repeats)
        c = r["config"]
        name = c["method"] + (" baseline" if (c.get("options") or {}).get("baseline") else "") + \
            f" {c['sparsity']:g}" + ("" if c["pattern"] == "structured" else f" {c['pattern']}")
        flops = _flops_removed(r) if r.get("structure") else 0.0
        rows.append([name, r["achieved_sparsity"], flops, m["latency_ms"], base["latency_ms"] / m["latency_ms"],
                     m["throughput"], m["throughput"] / base["throughput"]])
        del model
    print_table(["exported model", "sparsity (params)", "FLOPs removed", "latency b=1 ms", "speed-up",
                 "throughput b=32 seq/s", "speed-up"], rows,
                f"{task}: CPU speed of exported models, {seq_len} tokens, median of {repeats}, "
                f"{torch.get_num_threads()} threads ({base['device']})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", nargs="+", default=["rotten_tomatoes", "bbc_news"])
    ap.add_argument("--parts", nargs="+", default=list("abc"))
    ap.add_argument("--budgets", nargs="+", type=float, default=[0.4, 0.6, 0.8])
    ap.add_argument("--pat-steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    store = Store(OUT / "structured.sqlite")
    for task in args.tasks:
        done = []
        if "a" in args.parts or "c" in args.parts:
            done += kprune_vs_kwon(store, task, args.budgets) if "a" in args.parts else []
        if "b" in args.parts:
            done += pat_vs_lora(store, task, args.pat_steps)
        if "c" in args.parts:
            unstructured = run_grid([ExperimentConfig.create(task=task, method="sparsegpt", sparsity=0.5, **CALIB)],
                                    store, on_progress=_progress)
            speed_table(store, task, done + unstructured, args.repeats)


if __name__ == "__main__":
    main()
