"""`prunescope attack`: attack a dense or pruned model with a TextAttack recipe (resumable, stored)."""

from __future__ import annotations

from pathlib import Path

from pruning_core.cli.common import (add_background_arg, add_model_args, check_json_path, option_pairs, submit_background,
                                     write_json)
from pruning_core.core.errors import PrunescopeError


def register(subparsers) -> None:
    at = subparsers.add_parser("attack", help="attack a dense or pruned model with a TextAttack recipe (robustness)")
    add_model_args(at)
    at.add_argument("--recipe", default="deepwordbug", help="an attack recipe (see --list)")
    at.add_argument("--n", type=int, default=100, help="test examples to attack (a seeded sample)")
    at.add_argument("--query-budget", type=int, default=None, help="model queries per example (default: no limit)")
    at.add_argument("--visible-only", action="store_true",
                    help="attack only the words the model reads (texts cut at its maximum length); much faster "
                         "on long documents, and no perturbation is wasted on words it never sees")
    at.add_argument("--method", default="magnitude", help="pruning method of the attacked model")
    at.add_argument("--sparsity", type=float, default=0.0, help="0 (default) attacks the dense model")
    at.add_argument("--pattern", default=None, help="default: the method's own (see prune --help)")
    at.add_argument("--calib-size", type=int, default=128)
    at.add_argument("--seq-len", type=int, default=64)
    at.add_argument("--option", action="append", metavar="KEY=VALUE", help="a pruning method knob")
    at.add_argument("--run", default=None, metavar="KEY", help="attack the pruned model of a stored run")
    at.add_argument("--json", type=Path, default=None, help="write the summary and every example as JSON here")
    at.add_argument("--recompute", action="store_true", help="attack again even if the store has this attack")
    at.add_argument("--list", action="store_true", help="list the recipes and whether each can run here")
    add_background_arg(at)


def list_recipes() -> int:
    from pruning_core.robustness import RECIPES, availability

    for name, why in availability().items():
        r = RECIPES[name]
        print(f"  {name:16s} {'ready' if why is None else 'unavailable'}  {r.title} ({r.paper})"
              + (f"\n  {'':16s} -> {why}" if why else ""))
    return 0


def run(args) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from pruning_core.experiments.config import ExperimentConfig
    from pruning_core.model.models import resolve_device
    from pruning_core.robustness import AttackConfig, recipes, run_attack
    from pruning_core.storage.store import Store

    if args.list:
        return list_recipes()
    check_json_path(args.json)
    if args.eval_size is not None:
        raise PrunescopeError("--eval-size does not apply to attack; --n sets how many test examples are attacked")
    resolve_device(args.device)
    store = Store()
    if args.run:
        stored = store.load(args.run)
        if stored is None:
            raise PrunescopeError(f"no stored run with key '{args.run}' in {store.path}; see `prunescope prune`")
        run = ExperimentConfig.from_dict(stored["config"]).with_(device=args.device)
    else:
        run = ExperimentConfig.create(
            model=args.model, task=args.task, method=args.method, sparsity=args.sparsity, pattern=args.pattern,
            calib_size=args.calib_size, seq_len=args.seq_len, seed=args.seed,
            options=option_pairs(args.option), device=args.device, fresh_head=args.fresh_head)
    cfg = AttackConfig(run, args.recipe, args.n, args.seed, args.query_budget, args.visible_only).validate()
    cfg.check_size()
    recipes.check(cfg.recipe)  # unavailable here: say why before any work
    if args.background:
        if args.json:
            raise PrunescopeError("--background stores the attack: drop --json (write it from a foreground run)")
        return submit_background(store, "attack", {"config": cfg.to_dict()}, args.recompute)
    con = Console(stderr=True)
    counts = {"successful": 0, "failed": 0, "skipped": 0}
    stored = store.attack_done(cfg.key()) and not args.recompute
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[tally]}"), TimeRemainingColumn(), console=con, disable=stored) as bar:
        task = bar.add_task(f"{cfg.recipe} on {cfg.meta()['method']} {run.sparsity:g}", total=None, tally="")

        def on_example(done, total, rec):
            counts[rec["result"]] += 1
            bar.update(task, completed=done, total=total, tally=", ".join(f"{v} {k}" for k, v in counts.items()))

        try:
            out = run_attack(cfg, store, on_example=on_example, on_stage=lambda s: con.print(f"[dim]{s}...[/]"),
                             recompute=args.recompute)
        except KeyboardInterrupt:
            done = len(store.attack_examples(cfg.key()))
            con.print(f"stopped: {done} finished examples are stored; run the same command to resume")
            raise
    if out.computed == 0:
        con.print(f"[dim]stored attack {out.key} in {store.path} (use --recompute to attack again)[/]")
    s = out.summary

    def num(v, fmt="{:.1f}", scale=1.0):
        return "n/a" if v is None else fmt.format(scale * v)

    print(f"{cfg.recipe} on {run.model} ({cfg.meta()['method']}, sparsity {run.sparsity:g}) | {s['examples']} "
          f"{run.task} test examples | clean accuracy {num(s['clean_accuracy'], '{:.1f}%', 100)} | "
          f"accuracy under attack {num(s['accuracy_under_attack'], '{:.1f}%', 100)} | attack success rate "
          f"{num(s['attack_success_rate'], '{:.1f}%', 100)} | perturbed words {num(s['avg_perturbed_word_pct'], '{:.1f}%')}"
          f" | avg queries {num(s['avg_queries'])} | {s['successful']} successful, {s['failed']} failed, "
          f"{s['skipped']} skipped")
    write_json(args.json, out.to_json())
    return 0
