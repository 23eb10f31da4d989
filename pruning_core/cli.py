"""The `prunescope` command line: prune, eval, list, finetune, make-splits, attack, export, speed, sweep,
results, serve.

Bad input exits with status 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path

from pruning_core import serve
from pruning_core.errors import PrunescopeError
from pruning_core.paths import check_output_file, write_output
from pruning_core.runtime import quiet_libraries


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of usage + error
        raise PrunescopeError(f"{message} (see `{self.prog} --help`)")


def _option_pairs(items: list[str]) -> dict:
    """--option key=value, values parsed as JSON where they can be (numbers, true/false)."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise PrunescopeError(f"--option takes key=value; got '{item}'")
        k, v = item.split("=", 1)
        if not k.strip():
            raise PrunescopeError(f"--option takes key=value with a non-empty key; got '{item[:40]}'")
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="prunescope", description="Prune BERT-style classifiers and measure what it costs.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def common(sp):
        sp.add_argument("--model", default="default", help="default | local folder | hub id")
        sp.add_argument("--task", default="rotten_tomatoes", help="shipped task, datasets name, or CSV/TSV path")
        sp.add_argument("--eval-size", type=int, default=None, help="evaluate on a seeded subset of the test split")
        sp.add_argument("--seed", type=int, default=0)
        sp.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
        sp.add_argument("--fresh-head", action="store_true",
                        help="allow a model folder without a trained classification head: a seeded random head "
                             "(encoder errors are meaningful, accuracy is chance); refused without this flag")

    pr = sub.add_parser("prune", help="prune a model and report per-layer errors and accuracy")
    common(pr)
    pr.add_argument("--method", default="sparsegpt")
    pr.add_argument("--sparsity", type=float, default=None, help="fraction of weights to remove, in [0, 1) "
                    "(default 0.5, or what an N:M pattern implies)")
    pr.add_argument("--pattern", default=None, help="unstructured | 2:4 | 4:8 | structured "
                    "(default: the method's own: structured for kprune, kwon and pat, else unstructured)")
    pr.add_argument("--calib-size", type=int, default=128)
    pr.add_argument("--seq-len", type=int, default=64)
    pr.add_argument("--option", action="append", metavar="KEY=VALUE", help="a method knob, e.g. scope=global")
    pr.add_argument("--json", type=Path, default=None, help="write the full result as JSON here")
    pr.add_argument("--recompute", action="store_true", help="prune again even if the store has this run")
    pr.add_argument("--no-store", action="store_true", help="do not read or write the results store")

    ev = sub.add_parser("eval", help="accuracy of a (dense) model on a task's test split")
    common(ev)

    sub.add_parser("list", help="models, tasks, methods and patterns")

    ft = sub.add_parser("finetune", help="fine-tune the shipped MiniLM-L6 on a shipped task (reproducible)")
    ft.add_argument("--task", required=True, choices=["rotten_tomatoes", "bbc_news"])
    ft.add_argument("--epochs", type=int, default=None)
    ft.add_argument("--lr", type=float, default=None)
    ft.add_argument("--seed", type=int, default=None)
    ft.add_argument("--out", type=Path, default=None)
    ft.add_argument("--device", default="auto")

    at = sub.add_parser("attack", help="attack a dense or pruned model with a TextAttack recipe (robustness)")
    common(at)
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

    ex = sub.add_parser("export", help="write a stored run's pruned model as a transformers folder")
    ex.add_argument("key", metavar="RUN_KEY", help="key of a stored run")
    ex.add_argument("--out", default=None, metavar="DIR",
                    help="folder under the export root (default: the run key)")
    ex.add_argument("--root", type=Path, default=None,
                    help="export root; DIR may not leave it (default: exports/ beside the results store)")
    ex.add_argument("--force", action="store_true", help="replace the contents of a non-empty folder")
    ex.add_argument("--device", default="cpu", help="where the run is pruned again: cpu | cuda | cuda:N")

    sd = sub.add_parser("speed", help="measured latency and throughput of a stored run vs its dense model")
    sd.add_argument("key", metavar="RUN_KEY", help="key of a stored run")
    sd.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto")
    sd.add_argument("--repeats", type=int, default=20, help="timed passes per batch size (median)")
    sd.add_argument("--seq-len", type=int, default=None,
                    help="tokens per sequence (default: the task's average length where known, else 64)")
    sd.add_argument("--recompute", action="store_true", help="measure again even if the store has numbers")
    sd.add_argument("--json", type=Path, default=None, help="write the measurement as JSON here")

    sw = sub.add_parser("sweep", help="run a grid of experiments from a YAML/TOML file (resumable; local pool or Ray)")
    sw.add_argument("file", type=Path, metavar="SWEEP_FILE", help="a .yaml/.yml or .toml sweep file")
    sw.add_argument("--dry-run", action="store_true",
                    help="print the grid and cost estimates from stored runs; compute nothing")
    sw.add_argument("--executor", default="local", help="local (a process pool, default) | ray | inline")
    sw.add_argument("--workers", type=int, default=None,
                    help="local: worker processes (default: one per core, as memory allows); "
                         "ray without --address: CPUs of the private Ray")
    sw.add_argument("--address", default=None, help="ray: auto | HOST:PORT of a running cluster "
                    "(default: start a private local Ray)")
    sw.add_argument("--cpus-per-task", type=int, default=None,
                    help="torch threads per config (local default: cores // workers; ray: 1 CPU per task; "
                         "inline: as this process has)")
    sw.add_argument("--gpus-per-task", type=float, default=0, help="ray: GPUs per config (e.g. 1)")
    sw.add_argument("--device", default=None, help="override the file's device: auto | cpu | cuda | cuda:N")
    sw.add_argument("--store", type=Path, default=None, help="results store (default: PRUNESCOPE_DB)")
    sw.add_argument("--skip-failed", action="store_true", help="leave out configs that failed before")
    sw.add_argument("--max-configs", type=int, default=None,
                    help="refuse a grid of more runs than this (default 10,000): raise it to confirm a huge sweep")
    sw.add_argument("--sweep-id", default=None, help=argparse.SUPPRESS)  # set by sweep.start_background

    rs = sub.add_parser("results", help="stored runs as one flat table: print it, or write CSV / Parquet / JSON")
    rs.add_argument("--format", default=None, help="csv | parquet | json (default: from --out's suffix; "
                    "without --out, a table on screen)")
    rs.add_argument("--out", type=Path, default=None, help="write the table here")
    for name in ("model", "task", "method", "pattern"):
        rs.add_argument(f"--{name}", default=None, help=f"only runs with this {name}")
    rs.add_argument("--sparsity", type=float, default=None, help="only runs at this (requested) sparsity")
    rs.add_argument("--failures", action="store_true", help="the configs that failed in sweeps, with their errors")
    rs.add_argument("--sweeps", action="store_true", help="the status of every sweep")
    rs.add_argument("--store", type=Path, default=None, help="results store (default: PRUNESCOPE_DB)")

    sub.add_parser("setup-attacks", help="write the offline attack resources (stop words, WordNet copy)")

    sp = sub.add_parser("make-splits", help="write the fixed task splits to assets/splits (run once)")
    sp.add_argument("--sst2-dev", type=Path, required=True, help="GLUE SST-2 validation TSV (sentence, label)")
    serve.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    quiet_libraries()
    try:
        args = build_parser().parse_args(argv)
        return {"prune": cmd_prune, "eval": cmd_eval, "list": cmd_list, "finetune": cmd_finetune,
                "make-splits": cmd_make_splits, "attack": cmd_attack, "setup-attacks": cmd_setup_attacks,
                "export": cmd_export, "speed": cmd_speed, "sweep": cmd_sweep, "results": cmd_results,
                "serve": serve.run}[args.command](args)
    except PrunescopeError as exc:
        print(f"prunescope: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("prunescope: interrupted", file=sys.stderr)
        return 130


def cmd_prune(args) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from pruning_core.arch import KIND_LABELS
    from pruning_core.config import ExperimentConfig
    from pruning_core.engine import BlockRecord
    from pruning_core.experiment import run_experiment
    from pruning_core.masks import parse_pattern
    from pruning_core.models import resolve_device
    from pruning_core.store import Store
    from pruning_core.structured.structure import StepRecord

    _check_json_path(args.json)  # before any work
    resolve_device(args.device)
    sparsity = args.sparsity
    if sparsity is None:
        nm = args.pattern not in (None, "unstructured", "structured") and parse_pattern(args.pattern).sparsity
        sparsity = nm or 0.5
    cfg = ExperimentConfig.create(
        model=args.model, task=args.task, method=args.method, sparsity=sparsity, pattern=args.pattern,
        calib_size=args.calib_size, seq_len=args.seq_len, seed=args.seed, eval_size=args.eval_size,
        options=_option_pairs(args.option), device=args.device, fresh_head=args.fresh_head)
    con = Console(stderr=True, highlight=False)

    def on_record(r):  # plain text: module names like "[attention output]" are not markup
        if isinstance(r, BlockRecord):
            con.print(f"[bold]block {r.block}[/]: sparsity {r.achieved_sparsity:.3f}, cumulative error "
                      f"{r.cumulative_error:.4g} ({r.seconds:.2f} s)")
        elif isinstance(r, StepRecord):
            extra = "".join(f", {k} {v:.4g}" for k, v in (("FLOPs kept", r.flops_kept), ("loss", r.loss))
                            if v is not None)
            con.print(escape(f"  step {r.step}/{r.total}: {r.label}{extra}"))
        else:
            con.print(escape(f"  {r.name} [{KIND_LABELS[r.kind]}]: sparsity {r.achieved_sparsity:.3f}, "
                             f"local error {r.local_error:.4g}, cumulative error {r.cumulative_error:.4g}"))

    store = None if args.no_store else Store()
    out = None if store is None or args.recompute else store.load(cfg.key())
    if out is not None:
        con.print(f"[dim]stored run {cfg.key()} in {store.path} (use --recompute to prune again)[/]")
    else:
        res = run_experiment(cfg, on_record=on_record, on_stage=lambda s: con.print(f"[dim]{escape(s)}...[/]"))
        out = res.to_json()
        if store is not None:
            store.save(out, res.prune.masks)
    table = Table(title=f"{cfg.method} {cfg.pattern} at {cfg.sparsity:g} on {cfg.task} ({cfg.model})")
    for col in ("block", "module", "shape", "achieved sparsity", "local error", "cumulative error"):
        table.add_column(col, justify="left" if col == "module" else "right")
    for r in out["layers"]:
        table.add_row(str(r["block"]), KIND_LABELS[r["kind"]], "x".join(map(str, r["shape"])),
                      f"{r['achieved_sparsity']:.4f}", f"{r['local_error']:.4g}", f"{r['cumulative_error']:.4g}")
    Console().print(table)
    Console().print(
        f"achieved sparsity {out['achieved_sparsity']:.4f} (encoder {out['encoder_sparsity']:.4f}) | "
        f"accuracy {out['accuracy']:.4f} vs dense {out['dense_accuracy']:.4f} on {out['eval_examples']} examples | "
        f"logits KL {out['logits_kl']:.4g} | prune {out['prune_seconds']:.2f} s, peak memory "
        f"{out.get('peak_total_mb', 0):.0f} MB (+{out['peak_memory_mb']:.0f} MB while pruning) on {out['device']}")
    _write_json(args.json, out)
    return 0


def _check_json_path(path: Path | None) -> None:
    if path is not None:
        check_output_file(path, "--json")


def _write_json(path: Path | None, obj: dict) -> None:
    if path is not None:
        text = json.dumps(obj, indent=1)
        write_output(path, lambda tmp: tmp.write_text(text), "--json")


def cmd_attack(args) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from pruning_core.config import ExperimentConfig
    from pruning_core.robustness import RECIPES, AttackConfig, availability, recipes, run_attack
    from pruning_core.store import Store

    if args.list:
        for name, why in availability().items():
            r = RECIPES[name]
            print(f"  {name:16s} {'ready' if why is None else 'unavailable'}  {r.title} ({r.paper})"
                  + (f"\n  {'':16s} -> {why}" if why else ""))
        return 0
    _check_json_path(args.json)
    if args.eval_size is not None:
        raise PrunescopeError("--eval-size does not apply to attack; --n sets how many test examples are attacked")
    from pruning_core.models import resolve_device

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
            options=_option_pairs(args.option), device=args.device, fresh_head=args.fresh_head)
    cfg = AttackConfig(run, args.recipe, args.n, args.seed, args.query_budget, args.visible_only).validate()
    cfg.check_size()
    recipes.check(cfg.recipe)  # unavailable here: say why before any work
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
    _write_json(args.json, out.to_json())
    return 0


def cmd_export(args) -> int:
    from rich.console import Console

    from pruning_core.export import export_run
    from pruning_core.store import Store

    store = Store()
    con = Console(stderr=True)
    folder = export_run(args.key, store, args.out, device=args.device, root=args.root, force=args.force,
                        on_stage=lambda s: con.print(f"[dim]{s}...[/]"))
    meta = json.loads((folder / "prunescope.json").read_text())
    remote = ", trust_remote_code=True" if meta.get("structure") else ""
    print(f"exported {meta['method']} {meta['pattern']} at {meta['sparsity']:g} (achieved sparsity "
          f"{meta['achieved_sparsity']:.4f}, accuracy {meta['accuracy']:.4f}) to {folder}")
    print(f"load with AutoModelForSequenceClassification.from_pretrained('{folder}'{remote})")
    if "semi_structured" in meta:
        print(f"note: {meta['semi_structured']['note']}")
    return 0


def cmd_speed(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from pruning_core.speed import measure_run
    from pruning_core.store import Store

    if not 1 <= args.repeats <= 10_000:
        raise PrunescopeError(f"--repeats must be from 1 to 10,000; got {args.repeats}")
    if args.seq_len is not None and not 2 <= args.seq_len <= 8192:
        raise PrunescopeError(f"--seq-len must be from 2 to 8192; got {args.seq_len}")
    _check_json_path(args.json)
    store = Store()
    con = Console(stderr=True)
    out = measure_run(args.key, store, device=args.device, repeats=args.repeats, seq_len=args.seq_len,
                      recompute=args.recompute, on_stage=lambda s: con.print(f"[dim]{s}...[/]"))
    if out["stored"]:
        con.print(f"[dim]stored measurement in {store.path} (use --recompute to measure again)[/]")
    lat_b, thr_b = out["batch_sizes"]
    table = Table(title=f"{out['method']} {out['pattern']} run {out['key']}: {out['device']}, "
                        f"{out['threads']} threads, {out['seq_len']} tokens, median of {out['repeats']}")
    for col in ("model", f"latency b={lat_b} (ms)", f"throughput b={thr_b} (seq/s)", "speed-up (latency)",
                "speed-up (throughput)", "params", "non-zero params", "FLOPs / sequence", "sparsity"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for r in out["rows"]:
        table.add_row(r["model"], f"{r['latency_ms']:.2f}", f"{r['throughput']:.1f}", f"{r['speedup']:.2f}x",
                      f"{r['throughput_speedup']:.2f}x", f"{r['params']:,}", f"{r['nonzero_params']:,}",
                      "n/a" if r["flops"] is None else f"{r['flops'] / 1e9:.3f} G",
                      "n/a" if r["sparsity"] is None else f"{r['sparsity']:.4f}")
    Console().print(table)
    if out.get("semi_structured"):
        print("the 2:4 linears ran as semi-structured sparse tensors (float16)")
    elif out["pattern"] not in ("structured",):
        print("note: zeros run on dense kernels here" + (f" ({out['semi_structured_note']})"
                                                          if out.get("semi_structured_note") else ""))
    _write_json(args.json, out)
    return 0


def _wide_console(stderr: bool = False):
    """A rich console; wide when the output is not a terminal, so tables in logs stay readable."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else 200)


def _changed_options(cfg) -> dict:
    """The method options of a run that differ from the method's defaults."""
    from dataclasses import asdict

    from pruning_core import methods

    defaults = asdict(methods.get(cfg.method).options({}))
    return {k: v for k, v in cfg.options_dict().items() if defaults.get(k) != v}


def _config_label(cfg) -> str:
    """task, model (if not default), method, pattern, sparsity and non-default options of a run or attack."""
    from pruning_core.robustness import AttackConfig

    if isinstance(cfg, AttackConfig):
        target = "the dense model" if cfg.dense else _config_label(cfg.run)
        budget = (f", {cfg.query_budget} queries" if cfg.query_budget else "") + (
            ", visible words only" if cfg.visible_only else "")
        return f"attack {cfg.recipe} (n={cfg.n}, seed {cfg.seed}{budget}) on {target}"
    opts = _changed_options(cfg)
    model = "" if cfg.model == "default" else f" [{cfg.model}]"
    return (f"{cfg.task}{model} {cfg.method} {cfg.pattern} {cfg.sparsity:g}"
            + (f" {json.dumps(opts)}" if opts else "") + (f" seed {cfg.seed}" if cfg.seed else ""))


def _outcome_line(event) -> str:
    from rich.markup import escape

    out, cfg = event.outcome, event.config
    label = escape(_config_label(cfg))
    if not out.ok:
        return f"[red]failed[/] {label}: {escape(out.error.splitlines()[0])}"
    r = out.result
    if out.job.kind == "attack":
        s = r["summary"]
        pct = lambda v: "n/a" if v is None else f"{100 * v:.1f}%"  # noqa: E731
        what = (f"clean accuracy {pct(s['clean_accuracy'])}, accuracy under attack "
                f"{pct(s['accuracy_under_attack'])}, attack success rate {pct(s['attack_success_rate'])}")
    else:
        flops = (r.get("structure") or {}).get("flops_reduction")
        what = (f"accuracy {r['accuracy']:.4f} (dense {r['dense_accuracy']:.4f}), achieved sparsity "
                f"{r['achieved_sparsity']:.4f}" + (f", FLOPs -{flops:.1%}" if flops is not None else ""))
    return f"[green]done[/] {label}: {what} [dim]({out.seconds:.1f} s, {out.worker})[/]"


def _sweep_with_device(sweep, device: str):
    from dataclasses import replace

    from pruning_core.sweepfile import _check_device

    _check_device(device)
    runs = tuple(r.with_(device=device) for r in sweep.runs)
    attacks = tuple(a.with_(run=a.run.with_(device=device)) for a in sweep.attacks)
    return replace(sweep, runs=runs, attacks=attacks)


def cmd_sweep(args) -> int:
    import signal
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from pruning_core import executors, sweepfile
    from pruning_core.store import Store
    from pruning_core.sweep import new_sweep_id, plan, run_sweep

    if args.executor not in executors.EXECUTORS:
        raise PrunescopeError(f"unknown executor '{args.executor}'; choose one of {', '.join(executors.EXECUTORS)}")
    for flag, value in (("--workers", args.workers), ("--cpus-per-task", args.cpus_per_task)):
        if value is not None and not 1 <= value <= 4096:
            raise PrunescopeError(f"{flag} must be an integer from 1 to 4096; got {value}")
    if not 0 <= args.gpus_per_task <= 64:  # NaN fails too
        raise PrunescopeError(f"--gpus-per-task must be a number from 0 to 64; got {args.gpus_per_task}")
    store = None
    sweep_id = args.sweep_id
    try:
        if args.max_configs is not None and args.max_configs < 1:
            raise PrunescopeError(f"--max-configs must be at least 1; got {args.max_configs}")
        sweep = sweepfile.load(args.file, args.max_configs or sweepfile.MAX_CONFIGS)
        if args.device:
            if args.executor != "ray":  # local workers run here: the device must exist here
                from pruning_core.models import resolve_device

                resolve_device(args.device)
            sweep = _sweep_with_device(sweep, args.device)
        if args.dry_run:
            return _dry_run(sweep, args)
        store = Store(args.store)
    except PrunescopeError as exc:
        if sweep_id:  # a background sweep: say why on its status row
            Store(args.store).update_sweep(sweep_id, state="failed", finished=time.time(), error=str(exc))
        raise
    sweep_id = sweep_id or new_sweep_id()
    err = _wide_console(stderr=True)
    p = plan(sweep, store, args.skip_failed)
    err.print(f"sweep {sweep.name} ({sweep_id}): {sweepfile.describe(sweep)}; {p.stored} already stored"
              + (f", {p.skipped_failed} failed before (skipped)" if p.skipped_failed else "")
              + f", {p.todo} to compute; store {store.path}", soft_wrap=True, highlight=False)
    if not p.todo:
        store.update_sweep(sweep_id, state="finished", total=p.total, stored=p.stored, started=time.time(),
                           finished=time.time(), spec=sweep.source)
        print(f"sweep {sweep.name}: all {p.total} configs are stored")
        return 0
    gpus = args.gpus_per_task
    if args.executor == "ray" and not gpus and (args.device or "").startswith("cuda"):
        gpus = 1
    workers = args.workers
    if args.executor == "local" and workers is None:
        workers = executors.default_workers(max(len(p.runs), len(p.attacks)), _peak_estimate(p, store))

    def on_term(signum, frame):  # `sweep.cancel` and kill: stop like Ctrl-C, with the status row updated
        raise KeyboardInterrupt

    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, on_term)
    if args.executor == "ray":
        err.print("[dim]starting Ray...[/]" if not args.address else f"[dim]joining Ray at {args.address}...[/]")
    try:
        executor = executors.make(args.executor, workers, args.address, args.cpus_per_task, gpus)
    except PrunescopeError as exc:
        store.update_sweep(sweep_id, state="failed", finished=time.time(), error=str(exc))
        raise
    err.print(f"[dim]running on {executor.describe()}[/]", soft_wrap=True)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[tally]}"), TimeElapsedColumn())
    try:
        with executor, Progress(*columns, console=err) as bar:
            task = bar.add_task(f"sweep {sweep.name}", total=p.todo, tally="")

            def on_event(ev):
                bar.console.print(_outcome_line(ev), soft_wrap=True, highlight=False)
                bar.update(task, completed=ev.done + ev.failed,
                           tally=f"{ev.done} done" + (f", [red]{ev.failed} failed[/]" if ev.failed else ""))

            report = run_sweep(sweep, store, executor, sweep_id=sweep_id, on_event=on_event,
                               skip_failed=args.skip_failed)
    except KeyboardInterrupt:
        err.print("stopped: every finished config is stored; run the same command to resume")
        raise
    print(f"sweep {sweep.name} ({sweep_id}): {report.total} configs, {report.stored} already stored, "
          f"{report.done} computed, {report.failed} failed in {report.seconds:.0f} s; store {store.path}"
          + ("; see `prunescope results --failures`" if report.failed else ""))
    return 1 if report.failed else 0


def _peak_estimate(p, store) -> float | None:
    """The largest estimated peak memory of the runs left to do (None without a basis)."""
    from pruning_core.estimate import estimate_run
    from pruning_core.results import runs_table

    table = runs_table(store, attacks=False)
    peaks = [e.peak_mb for e in (estimate_run(c, table) for c in p.runs) if e.peak_mb]
    return max(peaks) if peaks else None


def _dry_run(sweep, args) -> int:
    from rich.markup import escape
    from rich.table import Table

    from pruning_core import executors
    from pruning_core.estimate import estimate_sweep
    from pruning_core.store import Store, default_path

    path = args.store or default_path()
    store = Store(path) if Path(path).exists() else None  # a dry run creates no store
    est = estimate_sweep(sweep, store)
    con = _wide_console()
    fmt = lambda v, f="{:.1f}": "?" if v is None else f.format(v)  # noqa: E731
    status = lambda s: "[red]failed before[/]" if s == "failed before" else s  # noqa: E731

    table = Table(title=escape(f"sweep {sweep.name}: {len(sweep.runs)} runs ({args.file})"))
    for col in ("#", "task", "model", "method", "pattern", "sparsity", "options (changed)", "seed", "status",
                "prune s", "eval s", "peak MB", "estimate basis"):
        table.add_column(col, justify="right" if col in ("#", "sparsity", "prune s", "eval s", "peak MB") else "left")
    for i, (cfg, st, e) in enumerate(est.runs, 1):
        table.add_row(str(i), cfg.task, escape(cfg.model), cfg.method, cfg.pattern, f"{cfg.sparsity:g}",
                      escape(json.dumps(_changed_options(cfg))) if _changed_options(cfg) else "", str(cfg.seed),
                      status(st),
                      fmt(e.prune_seconds), fmt(e.eval_seconds), fmt(e.peak_mb, "{:.0f}"), escape(e.basis))
    con.print(table)
    if est.attacks:
        at = Table(title=f"{len(est.attacks)} attacks (after their pruned runs)")
        for col in ("#", "recipe", "n", "seed", "query budget", "target", "status", "prune s", "attack s",
                    "estimate basis"):
            at.add_column(col, justify="right" if col in ("#", "n", "seed", "prune s", "attack s") else "left")
        for i, (a, st, e) in enumerate(est.attacks, 1):
            target = "dense" if a.dense else f"{a.run.method} {a.run.pattern} {a.run.sparsity:g}"
            at.add_row(str(i), a.recipe, str(a.n), str(a.seed), str(a.query_budget or "-"), f"{a.run.task} {target}",
                       status(st), fmt(e.prune_seconds), fmt(e.eval_seconds), escape(e.basis))
        con.print(at)
    todo = sum(st != "stored" for rows in (est.runs, est.attacks) for _, st, _ in rows)
    stored = len(sweep) - todo
    workers = args.workers or (executors.default_workers(todo, est.peak_mb) if args.executor == "local" else 1)
    line = (f"{len(sweep)} configs: {stored} stored, {todo} to compute. Estimated {est.todo_seconds / 60:.1f} "
            "CPU-minutes of prune + eval (+ attacks) at the speed of this store's earlier runs")
    if est.unknown:
        line += (f"; {est.unknown} config(s) have no basis for an estimate (no stored run of that method and "
                 "pattern kind, or attack of that recipe)")
    if todo:
        line += (f"; with {workers} parallel worker(s) at least {est.wall_seconds(workers) / 60:.1f} min wall time"
                 + (f", peak memory per worker up to {est.peak_mb:.0f} MB" if est.peak_mb else ""))
    print(line + ". Nothing was computed (--dry-run).")
    return 0


def cmd_results(args) -> int:
    from rich.table import Table

    from pruning_core.results import runs_table, write_table
    from pruning_core.store import Store

    store = Store(args.store)
    if args.failures and args.sweeps:
        raise PrunescopeError("--failures and --sweeps are two different tables: pick one")
    filters = {k: getattr(args, k) for k in ("model", "task", "method", "pattern")}
    if args.sweeps:
        df = store.sweeps()
    elif args.failures:
        df = store.failures(**filters)
    else:
        df = runs_table(store, sparsity=args.sparsity, **filters)
    if args.format is not None or args.out is not None:
        text = write_table(df, args.out, args.format)
        if text is not None:
            sys.stdout.write(text)
        else:
            print(f"wrote {len(df)} rows to {args.out}", file=sys.stderr)
        return 0
    con = _wide_console()
    if args.sweeps or args.failures:
        cols = (["id", "state", "total", "stored", "done", "failed", "pid", "spec"] if args.sweeps else
                ["key", "kind", "task", "method", "pattern", "sparsity", "error"])
    else:
        attack_cols = [c for c in df.columns if c.endswith("_accuracy_under_attack")]
        optional = [c for c in ("flops_reduction",) if c in df and df[c].notna().any()]
        cols = ["key", "task", "method", "pattern", "sparsity", "options", "accuracy", "dense_accuracy",
                "achieved_sparsity", *optional, "prune_seconds", "peak_total_mb", *attack_cols]
    title = ("sweeps" if args.sweeps else "sweep failures" if args.failures else "stored runs") + f" in {store.path}"
    table = Table(title=title)
    for c in cols:
        table.add_column(c, justify="left" if c in ("key", "id", "task", "method", "pattern", "options", "error",
                                                      "kind", "state", "spec") else "right")
    for _, row in df.iterrows():
        cells = []
        for c in cols:
            v = row[c]
            if c == "error":
                v = str(v).splitlines()[0]
            cells.append("" if v is None or (isinstance(v, float) and v != v) else
                         f"{v:.4f}" if isinstance(v, float) and c not in ("prune_seconds", "peak_total_mb") else
                         f"{v:.1f}" if isinstance(v, float) else str(v))
        table.add_row(*cells)
    con.print(table)
    if not (args.sweeps or args.failures):
        print(f"{len(df)} runs; --format csv|parquet|json [--out FILE] for every column", file=sys.stderr)
    return 0


def cmd_setup_attacks(args) -> int:
    from pruning_core.robustness import availability, resources

    have = resources.prepare()
    print(f"attack resources in {resources.data_root()}: stop words yes, WordNet {'yes' if have['wordnet'] else 'no'}")
    for name, why in availability().items():
        print(f"  {name:16s} {'ready' if why is None else 'unavailable: ' + why}")
    return 0


def cmd_eval(args) -> int:
    from pruning_core.config import ExperimentConfig
    from pruning_core.experiment import dense_outputs
    from pruning_core.models import resolve_device

    # the same validation as a prune (task, model, eval size, seed), then the cached dense evaluation
    cfg = ExperimentConfig.create(model=args.model, task=args.task, method="magnitude", sparsity=0.0,
                                  seed=args.seed, eval_size=args.eval_size, device=args.device,
                                  fresh_head=args.fresh_head)
    ev, _, _ = dense_outputs(cfg.model, cfg.task, cfg.eval_size, cfg.seed, str(resolve_device(cfg.device)),
                             cfg.fresh_head)
    print(json.dumps({"model": args.model, "task": args.task, "split": "test", "examples": ev.n,
                      "accuracy": ev.accuracy}))
    return 0


def cmd_list(args) -> int:
    from pruning_core import data, masks, methods
    from pruning_core.models import MODELS_DIR

    print("models:")
    print("  default  the shipped MiniLM-L6 fine-tuned for the chosen task; or a local folder or hub id")
    for d in sorted(MODELS_DIR.glob("minilm-*")):
        rep = d / "training.json"
        acc = json.loads(rep.read_text()).get("test_accuracy") if rep.exists() else None
        print(f"  {d}" + (f"  (test accuracy {acc:.4f})" if acc is not None else ""))
    print("tasks:")
    for name, desc in data.list_tasks().items():
        print(f"  {name:16s} {desc}")
    print("methods:")
    for name, cls in methods.METHODS.items():
        opts = ", ".join(f"{f.name}={f.default}" for f in fields(cls.Options)) or "no options"
        print(f"  {name:16s} {cls.paper} [{opts}]")
    print("patterns:")
    print("  " + ", ".join(masks.PATTERNS) + " (any N:M with N < M)")
    return 0


def cmd_finetune(args) -> int:
    from dataclasses import replace

    from pruning_core.finetune import DEFAULTS, finetune

    if args.epochs is not None and not 1 <= args.epochs <= 1000:
        raise PrunescopeError(f"--epochs must be from 1 to 1000; got {args.epochs}")
    if args.lr is not None and not 0 < args.lr < 1:  # NaN fails too
        raise PrunescopeError(f"--lr must be in (0, 1); got {args.lr}")
    if args.seed is not None and not 0 <= args.seed < 2**32:
        raise PrunescopeError(f"--seed must be from 0 to 2^32 - 1; got {args.seed}")
    if args.out is not None:
        from pruning_core.paths import check_output_dir

        check_output_dir(args.out, "--out")
    from pruning_core.models import resolve_device

    resolve_device(args.device)
    cfg = DEFAULTS[args.task]
    cfg = replace(cfg, **{k: v for k, v in (("epochs", args.epochs), ("lr", args.lr), ("seed", args.seed))
                          if v is not None})
    report = finetune(cfg, out=args.out, device=args.device)
    print(json.dumps({k: v for k, v in report.items() if k != "history"}, indent=2))
    return 0


def cmd_make_splits(args) -> int:
    from pruning_core.splits import write_all

    if not args.sst2_dev.is_file():
        raise PrunescopeError(f"file '{args.sst2_dev}' does not exist or is not a regular file")
    try:
        head = args.sst2_dev.read_bytes().decode("utf-8").split("\n", 1)[0]
    except UnicodeDecodeError:
        raise PrunescopeError(f"'{args.sst2_dev}' is not UTF-8 text (the GLUE SST-2 dev.tsv is)") from None
    if not {"sentence", "label"} <= set(head.strip().split("\t")):
        raise PrunescopeError(f"'{args.sst2_dev}' needs a tab-separated header with columns sentence and label "
                              "(the GLUE SST-2 dev.tsv has them)")
    for p in write_all(args.sst2_dev):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
