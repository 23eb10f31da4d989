"""`prunescope prune`: prune a model, print per-layer errors and accuracy, store the run."""

from __future__ import annotations

from pathlib import Path

from pruning_core.cli.common import (add_background_arg, add_model_args, check_json_path, option_pairs, submit_background,
                                     write_json)
from pruning_core.core.errors import PrunescopeError


def register(subparsers) -> None:
    pr = subparsers.add_parser("prune", help="prune a model and report per-layer errors and accuracy")
    add_model_args(pr)
    pr.add_argument("--method", default="sparsegpt")
    pr.add_argument("--sparsity", type=float, default=None, help="fraction of weights to remove, in [0, 1) "
                    "(default 0.5, or what an N:M pattern implies)")
    pr.add_argument("--pattern", default=None, help="unstructured | 2:4 | 4:8 | structured "
                    "(default: the method's own: structured for kprune, kwon and pat, else unstructured)")
    pr.add_argument("--calib-size", type=int, default=128)
    pr.add_argument("--seq-len", type=int, default=64)
    pr.add_argument("--option", action="append", metavar="KEY=VALUE", help="a method knob, e.g. scope=global")
    pr.add_argument("--json", type=Path, default=None, help="write the full result as JSON here")
    pr.add_argument("--repeats", type=int, default=1, metavar="K",
                    help="prune K times and report the median prune time (all K times are stored with the run)")
    pr.add_argument("--recompute", action="store_true", help="prune again even if the store has this run")
    pr.add_argument("--no-store", action="store_true", help="do not read or write the results store")
    add_background_arg(pr)


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from pruning_core.core import environment
    from pruning_core.model.arch import KIND_LABELS
    from pruning_core.experiments.config import ExperimentConfig
    from pruning_core.storage.prune_run import prune_and_store
    from pruning_core.prune.masks import parse_pattern
    from pruning_core.model.models import resolve_device
    from pruning_core.storage.store import Store

    check_json_path(args.json)  # before any work
    if args.repeats < 1:
        raise PrunescopeError(f"--repeats takes a whole number of at least 1; got {args.repeats}")
    resolve_device(args.device)
    sparsity = args.sparsity
    if sparsity is None:
        nm = args.pattern not in (None, "unstructured", "structured") and parse_pattern(args.pattern).sparsity
        sparsity = nm or 0.5
    cfg = ExperimentConfig.create(
        model=args.model, task=args.task, method=args.method, sparsity=sparsity, pattern=args.pattern,
        calib_size=args.calib_size, seq_len=args.seq_len, seed=args.seed, eval_size=args.eval_size,
        options=option_pairs(args.option), device=args.device, fresh_head=args.fresh_head)
    if args.background:
        if args.no_store or args.json:
            raise PrunescopeError("--background stores the run: drop --no-store and --json "
                                  "(read it later with `prunescope results` or --json on a foreground run)")
        spec = {"config": cfg.to_dict(), **({"repeats": args.repeats} if args.repeats > 1 else {})}
        return submit_background(Store(), "prune", spec, args.recompute)
    con = Console(stderr=True, highlight=False)
    store = None if args.no_store else Store()
    out, computed = prune_and_store(cfg, store, on_record=lambda r: con.print(record_line(r)),
                                    on_stage=lambda s: con.print(stage_line(s)), recompute=args.recompute,
                                    repeats=args.repeats)
    if not computed and store is not None:
        con.print(f"[dim]stored run {cfg.key()} in {store.path} (use --recompute to prune again)[/]")
    table = Table(title=f"{cfg.method} {cfg.pattern} at {cfg.sparsity:g} on {cfg.task} ({cfg.model})")
    for col in ("block", "module", "shape", "achieved sparsity", "local error", "cumulative error"):
        table.add_column(col, justify="left" if col == "module" else "right")
    for r in out["layers"]:
        table.add_row(str(r["block"]), KIND_LABELS[r["kind"]], "x".join(map(str, r["shape"])),
                      f"{r['achieved_sparsity']:.4f}", f"{r['local_error']:.4g}", f"{r['cumulative_error']:.4g}")
    Console().print(table)
    Console().print(summary_line(out))
    con.print(f"environment: {environment.describe(out.get('environment'))}")
    write_json(args.json, out)
    return 0


def summary_line(out: dict) -> str:
    """The summary under the table: sparsity, accuracy with its 95% Wilson interval, KL, prune time (the median
    of the repeats where there were several), memory and device."""
    from pruning_core.measure.intervals import accuracy_interval

    ci = out.get("accuracy_ci") or accuracy_interval(out["accuracy"], out["eval_examples"])
    acc = f"accuracy {out['accuracy']:.4f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
    runs = out.get("prune_seconds_runs") or []
    prune = (f"prune {out['prune_seconds_median']:.2f} s (median of {len(runs)}: "
             f"{', '.join(f'{t:.2f}' for t in runs)})" if len(runs) > 1 else f"prune {out['prune_seconds']:.2f} s")
    return (f"achieved sparsity {out['achieved_sparsity']:.4f} (encoder {out['encoder_sparsity']:.4f}) | "
            f"{acc} vs dense {out['dense_accuracy']:.4f} on {out['eval_examples']} examples | "
            f"logits KL {out['logits_kl']:.4g} | {prune}, peak memory "
            f"{out.get('peak_total_mb', 0):.0f} MB (+{out['peak_memory_mb']:.0f} MB while pruning) on {out['device']}")


def record_line(r) -> str:
    """The console line of one engine record (LayerRecord, BlockRecord or StepRecord), rich markup;
    `prunescope jobs watch` prints the same lines for a background prune."""
    from rich.markup import escape

    from pruning_core.model.arch import KIND_LABELS
    from pruning_core.prune.records import BlockRecord, StepRecord

    if isinstance(r, BlockRecord):
        return (f"[bold]block {r.block}[/]: sparsity {r.achieved_sparsity:.3f}, cumulative error "
                f"{r.cumulative_error:.4g} ({r.seconds:.2f} s)")
    if isinstance(r, StepRecord):
        extra = "".join(f", {k} {v:.4g}" for k, v in (("FLOPs kept", r.flops_kept), ("loss", r.loss)) if v is not None)
        return escape(f"  step {r.step}/{r.total}: {r.label}{extra}")
    # plain text: module names like "[attention output]" are not markup
    return escape(f"  {r.name} [{KIND_LABELS[r.kind]}]: sparsity {r.achieved_sparsity:.3f}, "
                  f"local error {r.local_error:.4g}, cumulative error {r.cumulative_error:.4g}")


def stage_line(text: str) -> str:
    from rich.markup import escape

    return f"[dim]{escape(text)}...[/]"
