"""The seed claims of AKRP and reconstruction, measured on the default tasks.

    python -m benchmarks.bench_reconstruction [--tasks rotten_tomatoes bbc_news] [--parts a b c d e]
                                              [--epochs 10] [--self-generated 128] [--n 100]

(a) calibration reconstruction error (cumulative error at the last block, calibration set) of BR, GP,
    CR relative to LR (SparseGPT's own update) at 50% and 70%; paper: more than 90% lower;
(b) the same on a held-out set of the same size, and test accuracy beside it (does it overfit?);
(c) (b) again with self-generated calibration texts added to the reconstruction set;
(d) clean accuracy and accuracy under attack (`--recipes`, default deepwordbug and glove-word-swap; `--n` test
    examples; `--visible-only` attacks only the words the model reads) of
    akrp vs sparsegpt vs wanda vs magnitude at 50-80%; paper: akrp keeps more robustness;
(e) BR at 70% with more training epochs (how far the error falls with training length).
Everything goes through a results store (artifacts/bench/reconstruction.sqlite): a rerun reuses
finished runs and attacks, so a killed benchmark resumes.
"""

from __future__ import annotations

import argparse
import time

from benchmarks.common import OUT, machine, print_progress, print_table
from pruning_core.experiments.config import ExperimentConfig
from pruning_core.storage.store import Store
from pruning_core.sweeps.run import run_attack_grid, run_grid
from pruning_core.sweeps.spec import attack_grid

MODES = ("lr", "br", "gp", "cr")
CALIB = dict(calib_size=128, seq_len=64, device="cpu")


def _recon(task, sparsity, mode, epochs, self_generated=0):
    return ExperimentConfig.create(task=task, method="reconstruction", sparsity=sparsity, **CALIB,
                                   options={"base": "sparsegpt", "mode": mode, "epochs": epochs,
                                            "self_generated": self_generated})


def _final(res, key):
    return res["blocks"][-1][key]


def reconstruction_tables(store, task, epochs, n_gen, parts):
    for sparsity in (0.5, 0.7):
        configs = [_recon(task, sparsity, m, epochs) for m in MODES]
        if "c" in parts:
            configs += [_recon(task, sparsity, m, epochs, n_gen) for m in MODES[1:]]
        res = run_grid(configs, store, on_progress=print_progress)
        lr = res[0]
        rows = []
        for cfg, r in zip(configs, res):
            gen = cfg.options_dict()["self_generated"]
            cal, held = _final(r, "cumulative_error"), _final(r, "heldout_error")
            rows.append([cfg.options_dict()["mode"].upper() + (f" + {gen} self-gen" if gen else ""), cal,
                         f"{100 * (cal / _final(lr, 'cumulative_error') - 1):+.1f}%", held,
                         f"{100 * (held / _final(lr, 'heldout_error') - 1):+.1f}%", r["accuracy"],
                         r["prune_seconds"]])
        print_table(["mode", "calib error", "vs LR", "held-out error", "vs LR", "test accuracy", "prune s"], rows,
                    f"{task} at {sparsity:.0%}: SparseGPT masks, reconstruction {epochs} epochs "
                    f"(dense accuracy {lr['dense_accuracy']:.4f}, n = {lr['eval_examples']}; {machine()})")


def epochs_table(store, task):
    configs = [_recon(task, 0.7, "br", e) for e in (10, 30, 100)] + [_recon(task, 0.7, "lr", 10)]
    res = run_grid(configs, store, on_progress=print_progress)
    lr = res[-1]
    rows = [[cfg.options_dict()["epochs"], _final(r, "cumulative_error"),
             f"{100 * (_final(r, 'cumulative_error') / _final(lr, 'cumulative_error') - 1):+.1f}%",
             _final(r, "heldout_error"), r["accuracy"], r["prune_seconds"]] for cfg, r in zip(configs[:-1], res)]
    print_table(["BR epochs", "calib error", "vs LR", "held-out error", "test accuracy", "prune s"], rows,
                f"{task} at 70%: block-wise reconstruction vs training length")


def robustness_table(store, task, n, recipes=("deepwordbug", "glove-word-swap"), visible_only=False,
                     descending=False):
    methods = ("magnitude", "wanda", "sparsegpt", "akrp")
    sparsities = (0.5, 0.6, 0.7, 0.8)
    prune_cfgs = [ExperimentConfig.create(task=task, method=m, sparsity=s, **CALIB) for m in methods
                  for s in sparsities]
    clean = {(c.method, c.sparsity): r["accuracy"] for c, r in zip(prune_cfgs, run_grid(prune_cfgs, store,
                                                                                    on_progress=print_progress))}
    t0 = time.perf_counter()

    def progress(done, total, cfg):
        print(f"[{done}/{total}] {cfg.recipe} {cfg.meta()['method']} {cfg.run.sparsity:g} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)

    attacks = attack_grid(task, methods, (0.0,) + sparsities, tuple(recipes), n=n, visible_only=visible_only,
                          **CALIB)
    # every method at one sparsity before any at the next, so a stopped run still compares; a second
    # process started with --descending works the same list from its last attack back (the store is
    # shared), so the two meet in the middle instead of attacking the same model side by side
    attacks.sort(key=lambda a: a.run.sparsity)
    if descending:
        attacks.reverse()
    outs = {(o.config.recipe, o.config.meta()["method"], o.config.run.sparsity): o.summary
            for o in run_attack_grid(attacks, store, on_progress=progress)}
    for recipe in recipes:
        dense = outs[(recipe, "dense", 0.0)]
        rows = []
        for m in methods:
            rows.append([m] + [f"{clean[(m, s)]:.3f} / {outs[(recipe, m, s)]['accuracy_under_attack']:.2f}"
                               for s in sparsities])
        print_table(["method"] + [f"{s:.0%}" for s in sparsities], rows,
                    f"{task}, {recipe}: clean test accuracy (whole test split) / accuracy under attack ({n} "
                    f"examples{', visible words only' if visible_only else ''}); "
                    f"dense {dense['clean_accuracy']:.2f} / {dense['accuracy_under_attack']:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", nargs="+", default=["rotten_tomatoes", "bbc_news"])
    ap.add_argument("--parts", nargs="+", default=list("abcde"))
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--self-generated", type=int, default=128)
    ap.add_argument("--n", type=int, default=100, help="attacked examples per model (part d)")
    ap.add_argument("--recipes", nargs="+", default=["deepwordbug", "glove-word-swap"], help="attacks of part d")
    ap.add_argument("--descending", action="store_true",
                    help="part d: work the attack list from its end (a second process then shares the grid)")
    ap.add_argument("--visible-only", action="store_true",
                    help="part d: attack only the words the model reads (several times faster on BBC News)")
    args = ap.parse_args()
    store = Store(OUT / "reconstruction.sqlite")
    for task in args.tasks:
        if {"a", "b", "c"} & set(args.parts):
            reconstruction_tables(store, task, args.epochs, args.self_generated, args.parts)
        if "e" in args.parts:
            epochs_table(store, task)
        if "d" in args.parts:
            robustness_table(store, task, args.n, args.recipes, args.visible_only, args.descending)


if __name__ == "__main__":
    main()
