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

from benchmarks.common import OUT, machine, print_progress, print_table
from pruning_core.experiments.config import ExperimentConfig
from pruning_core.storage.store import Store
from pruning_core.sweeps.run import run_grid

CALIB = dict(calib_size=128, seq_len=64, device="cpu")


def _flops_removed(res) -> float:
    s = res["structure"]
    return 1 - s["flops"] / s["flops_dense"]


def _train_seconds(res) -> float | None:
    for entry in res["structure"].get("log") or []:
        if "train_seconds" in entry:
            return entry["train_seconds"]
    return None


def kprune_vs_kwon(store, task, budgets, ablation: bool = False) -> list[dict]:
    """With `ablation`, also kprune without its weight tuning (what the least-squares refit adds)."""
    configs = [ExperimentConfig.create(task=task, method=m, sparsity=b, **CALIB) for b in budgets
               for m in ("kwon", "kprune")]
    results = run_grid(configs, store, on_progress=print_progress)
    untuned = {}
    if ablation:
        extra = [ExperimentConfig.create(task=task, method="kprune", sparsity=b, options={"tune": False}, **CALIB)
                 for b in budgets]
        untuned = {c.sparsity: r for c, r in zip(extra, run_grid(extra, store, on_progress=print_progress))}
    rows = []
    for b in budgets:
        pair = {r["config"]["method"]: r for r in results if r["config"]["sparsity"] == b}
        kw, kp = pair["kwon"], pair["kprune"]
        rows.append([f"{b:.0%}", _flops_removed(kw), kw["accuracy"], kw["prune_seconds"], _flops_removed(kp),
                     kp["accuracy"], kp["prune_seconds"], f"{100 * (kp['accuracy'] - kw['accuracy']):+.1f}"]
                    + ([untuned[b]["accuracy"]] if ablation else []))
    dense = results[0]
    print_table(["budget", "kwon FLOPs removed", "kwon acc", "kwon s", "kprune FLOPs removed", "kprune acc",
                 "kprune s", "kprune - kwon (points)"] + (["kprune untuned acc"] if ablation else []), rows,
                f"{task}: retraining-free structured pruning, {CALIB['calib_size']} calibration texts "
                f"(dense accuracy {dense['dense_accuracy']:.4f}, n = {dense['eval_examples']}; {machine()})")
    return results


def pat_vs_lora(store, task, steps) -> list[dict]:
    configs = [ExperimentConfig.create(task=task, method="pat", sparsity=0.25, **CALIB,
                                       options={"steps": steps, "baseline": baseline})
               for baseline in (False, True)]
    results = run_grid(configs, store, on_progress=print_progress)
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


def _shaped_like(dense_net, res, masks):
    """A model with the run's exact shapes, from its stored masks, without pruning again: structured runs
    sliced to the kept units (weights are the dense ones, which changes nothing in the timing), unstructured
    runs with the stored zeros."""
    import copy

    from pruning_core.prune.structured.shrink import remove
    from pruning_core.prune.structured.structure import Structure

    if res.get("structure"):
        return remove(dense_net, Structure.from_masks(masks, res["structure"]["head_dim"]))
    net = copy.deepcopy(dense_net)
    params = dict(net.named_parameters())
    with torch.no_grad():
        for name, m in masks.items():
            params[name + ".weight" if name + ".weight" in params else name].mul_(m.to(torch.float32))
    return net


def speed_table(store, task, results, repeats, check_export: bool = True) -> None:
    """Latency and throughput of every run's architecture against the dense model; one run (the fastest
    to re-prune, kwon) also exported for real and timed from its folder, as a cross-check."""
    from pruning_core.experiments import speed
    from pruning_core.experiments.export import export_run, load_exported
    from pruning_core.experiments.experiment import load_dense

    dense_net, tok = load_dense("default", task, "cpu")
    structured = [r for r in results if r.get("structure")]
    seq_len = max(2, round(structured[0]["structure"]["seq_len"])) if structured else 64
    base = speed.measure(dense_net, tok, seq_len, "cpu", repeats=repeats)
    rows = [["dense", 0.0, 0.0, base["latency_ms"], 1.0, base["throughput"], 1.0]]

    def row(name, r, m):
        flops = _flops_removed(r) if r.get("structure") else 0.0
        rows.append([name, r["achieved_sparsity"], flops, m["latency_ms"], base["latency_ms"] / m["latency_ms"],
                     m["throughput"], m["throughput"] / base["throughput"]])

    for r in results:
        c = r["config"]
        name = c["method"] + (" baseline" if (c.get("options") or {}).get("baseline") else "") + \
            ("" if (c.get("options") or {}).get("tune", True) else " untuned") + \
            f" {c['sparsity']:g}" + ("" if c["pattern"] == "structured" else f" {c['pattern']}")
        net = _shaped_like(dense_net, r, store.masks(r["key"]))
        row(name, r, speed.measure(net, tok, seq_len, "cpu", repeats=repeats))
        del net
    kwon = [r for r in results if r["config"]["method"] == "kwon"]
    if check_export and kwon:
        r = kwon[len(kwon) // 2]
        folder = export_run(r["key"], store, f"{task}-{r['key']}", root=OUT / "exports", force=True)
        model, tok2, _ = load_exported(folder, "cpu")
        row(f"kwon {r['config']['sparsity']:g}, exported folder", r,
            speed.measure(model, tok2, seq_len, "cpu", repeats=repeats))
    print_table(["model", "sparsity (params)", "FLOPs removed", "latency b=1 ms", "speed-up",
                 "throughput b=32 seq/s", "speed-up"], rows,
                f"{task}: CPU speed, {seq_len} tokens, median of {repeats}, {torch.get_num_threads()} threads "
                f"({base['device']}); each run's exact shapes from its stored masks, one exported folder as a check")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", nargs="+", default=["rotten_tomatoes", "bbc_news"])
    ap.add_argument("--parts", nargs="+", default=list("abc"))
    ap.add_argument("--budgets", nargs="+", type=float, default=[0.4, 0.6, 0.8])
    ap.add_argument("--pat-steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--ablation", action="store_true", help="(a) also kprune without weight tuning")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (1 gives steadier timings on a machine other jobs share)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    store = Store(OUT / "structured.sqlite")
    for task in args.tasks:
        if "a" in args.parts:
            kprune_vs_kwon(store, task, args.budgets, args.ablation)
        if "b" in args.parts:
            pat_vs_lora(store, task, args.pat_steps)
        if "c" in args.parts:  # every stored structured run of this task, and one unstructured run
            run_grid([ExperimentConfig.create(task=task, method="sparsegpt", sparsity=0.5, **CALIB)], store,
                     on_progress=print_progress)
            runs = [store.load(k) for k in store.runs(task=task)["key"]]
            runs = [r for r in runs if r.get("structure") or r["config"]["method"] == "sparsegpt"]
            runs.sort(key=lambda r: (r["config"]["method"], str(r["config"]["options"]), r["config"]["sparsity"]))
            speed_table(store, task, runs, args.repeats)

if __name__ == "__main__":
    main()
