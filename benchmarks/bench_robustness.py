"""Robustness benchmarks on the default sentiment model.

    python -m benchmarks.bench_robustness [--speed-n 20] [--n 100] [--recipes deepwordbug glove-word-swap]
                                          [--skip-speed] [--skip-sweep] [--export]
                                          [--task bbc_news --methods akrp sparsegpt --sparsities 0 0.6 0.7 0.8
                                           --visible-only]

1. Seconds per attacked example for every offline recipe on the dense model (fresh attacks).
2. The robustness sweep: magnitude, Wanda, SparseGPT at 0 (dense), 0.3, 0.5, 0.7, 0.9, each recipe,
   `--n` test examples: clean accuracy, accuracy under attack, attack success rate. Attacks go through
   a results store (artifacts/bench/robustness.sqlite) example by example, so a killed run resumes.
   `--export` writes the sweep to assets/demo/robustness_rotten_tomatoes.jsonl (the dashboard's demo).
"""

from __future__ import annotations

import argparse
import tempfile
import time

from benchmarks.common import OUT, machine, print_table
from pruning_core.measure import intervals
from pruning_core.robustness import OFFLINE, AttackConfig, availability, run_attack
from pruning_core.storage.store import Store
from pruning_core.storage.demo import DEMO_DIR, export_demo_attacks
from pruning_core.sweeps.run import run_attack_grid
from pruning_core.sweeps.spec import ROBUSTNESS_SPARSITIES, attack_grid

METHODS = ("magnitude", "wanda", "sparsegpt")
TASK = "rotten_tomatoes"


def speed(n: int) -> None:
    rows = []
    avail = availability()
    for recipe in OFFLINE:
        if avail[recipe]:
            rows.append([recipe, "unavailable: " + avail[recipe], "", "", "", ""])
            continue
        store = Store(tempfile.mkdtemp(prefix="bench-rob-") + "/runs.sqlite")  # fresh: nothing reused
        cfg = AttackConfig.create(recipe=recipe, n=n, task=TASK, device="cpu")
        run_attack(cfg.with_(n=1, seed=cfg.seed + 1), store)  # warm-up: TextAttack import, model, resources
        t = time.perf_counter()
        out = run_attack(cfg, store)
        wall = time.perf_counter() - t
        s = out.summary
        attacked = s["successful"] + s["failed"]
        rows.append([recipe, wall / n, wall / max(attacked, 1), s["avg_queries"], s["attack_success_rate"],
                     s["avg_perturbed_word_pct"]])
    print_table(["recipe", "s / example", "s / attacked example", "avg queries", "attack success rate",
                 "perturbed words %"], rows,
                f"Attack cost on the dense default {TASK} model, {n} test examples ({machine()})")


def sweep(n: int, recipes: list[str], export: bool, task: str = TASK, methods: tuple = METHODS,
          sparsities: tuple = ROBUSTNESS_SPARSITIES, visible_only: bool = False) -> None:
    store = Store(OUT / "robustness.sqlite")
    configs = attack_grid(task, methods, sparsities, recipes, n=n, calib_size=128, seq_len=64,
                          device="cpu", visible_only=visible_only)
    t0 = time.perf_counter()

    def progress(done, total, cfg):
        print(f"[{done}/{total}] {cfg.recipe} {cfg.meta()['method']} {cfg.run.sparsity:g} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)

    outs = run_attack_grid(configs, store, on_progress=progress)
    if export:
        export_demo_attacks(outs, DEMO_DIR / f"robustness_{task}.jsonl")
    by = {(o.config.recipe, o.config.meta()["method"], o.config.run.sparsity): o.summary for o in outs}
    for recipe in recipes:
        dense = by[(recipe, "dense", 0.0)]
        for measure in ("clean_accuracy", "accuracy_under_attack", "attack_success_rate"):
            rows = [[m] + [_with_ci(by[(recipe, "dense" if s == 0 else m, s)], measure, n) for s in sparsities]
                    for m in methods]
            print_table(["method"] + [f"{s:.1f}" for s in sparsities], rows,
                        f"{recipe}: {measure.replace('_', ' ')} vs sparsity ({n} {task} test examples"
                        f"{', visible text only' if visible_only else ''}; dense clean {dense['clean_accuracy']:.2f}; "
                        "95% Wilson intervals)")


def _with_ci(summary: dict, measure: str, n: int) -> str:
    """'0.62 [0.47, 0.75]': an accuracy with its Wilson interval (the success rate over the clean-correct ones)."""
    value = summary[measure]
    base = round(summary["clean_accuracy"] * n) if measure == "attack_success_rate" else n
    lo, hi = intervals.accuracy_interval(value, base) or (float("nan"), float("nan"))
    return f"{value:.2f} [{lo:.2f}, {hi:.2f}]"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--speed-n", type=int, default=20)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--recipes", nargs="+", default=["deepwordbug", "glove-word-swap"])
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-sweep", action="store_true")
    ap.add_argument("--export", action="store_true")
    ap.add_argument("--task", default=TASK)
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--sparsities", nargs="+", type=float, default=list(ROBUSTNESS_SPARSITIES),
                    help="0 is the dense model")
    ap.add_argument("--visible-only", action="store_true", help="attack only the text the model sees")
    args = ap.parse_args()
    if not args.skip_speed:
        speed(args.speed_n)
    if not args.skip_sweep:
        sweep(args.n, args.recipes, args.export, args.task, tuple(args.methods), tuple(args.sparsities),
              args.visible_only)


if __name__ == "__main__":
    main()
