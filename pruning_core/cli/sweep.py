"""`prunescope sweep`: run a grid of experiments from a YAML/TOML file (resumable; a local pool or Ray),
one line per finished config; `--dry-run` prints the grid and estimates instead (see sweep_plan.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pruning_core.cli.common import add_background_arg, config_label, integer, number, submit_background, wide_console
from pruning_core.core.errors import PrunescopeError


def register(subparsers) -> None:
    workers = integer(1, 4096, "an integer from 1 to 4096")
    sw = subparsers.add_parser("sweep", help="run a grid of experiments from a YAML/TOML file (resumable; local pool or Ray)")
    sw.add_argument("file", type=Path, metavar="SWEEP_FILE", help="a .yaml/.yml or .toml sweep file")
    sw.add_argument("--dry-run", action="store_true",
                    help="print the grid and cost estimates from stored runs; compute nothing")
    sw.add_argument("--executor", default="local", help="local (a process pool, default) | ray | inline")
    sw.add_argument("--workers", type=workers, default=None,
                    help="local: worker processes (default: one per core, as memory allows); "
                         "ray without --address: CPUs of the private Ray")
    sw.add_argument("--address", default=None, help="ray: auto | HOST:PORT of a running cluster "
                    "(default: start a private local Ray)")
    sw.add_argument("--cpus-per-task", type=workers, default=None,
                    help="torch threads per config (local default: cores // workers; ray: 1 CPU per task; "
                         "inline: as this process has)")
    sw.add_argument("--gpus-per-task", type=number(lambda v: 0 <= v <= 64, "a number from 0 to 64"), default=0,
                    help="ray: GPUs per config (e.g. 1)")
    sw.add_argument("--device", default=None, help="override the file's device: auto | cpu | cuda | cuda:N")
    sw.add_argument("--store", type=Path, default=None, help="results store (default: PRUNESCOPE_DB)")
    sw.add_argument("--skip-failed", action="store_true", help="leave out configs that failed before")
    sw.add_argument("--max-configs", type=int, default=None,
                    help="refuse a grid of more runs than this (default 10,000): raise it to confirm a huge sweep")
    add_background_arg(sw)
    sw.add_argument("--sweep-id", default=None, help=argparse.SUPPRESS)  # set by sweeps.background.start_background


def run(args) -> int:
    import signal
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from pruning_core.sweeps import executors
    from pruning_core.sweeps import sweepfile
    from pruning_core.cli.sweep_plan import dry_run
    from pruning_core.storage.store import Store
    from pruning_core.sweeps.background import new_sweep_id
    from pruning_core.sweeps.run import plan, run_sweep

    if args.executor not in executors.EXECUTORS:
        raise PrunescopeError(f"unknown executor '{args.executor}'; choose one of {', '.join(executors.EXECUTORS)}")
    store = None
    sweep_id = args.sweep_id
    try:
        if args.max_configs is not None and args.max_configs < 1:
            raise PrunescopeError(f"--max-configs must be at least 1; got {args.max_configs}")
        sweep = sweepfile.load(args.file, args.max_configs or sweepfile.MAX_CONFIGS)
        if args.device:
            if args.executor != "ray":  # local workers run here: the device must exist here
                from pruning_core.model.models import resolve_device

                resolve_device(args.device)
            sweep = with_device(sweep, args.device)
        if args.dry_run:
            return dry_run(sweep, args)
        store = Store(args.store)
        if args.background:
            if args.device or args.workers or args.address or args.executor != "local" or sweep_id:
                raise PrunescopeError("--background runs the sweep in a job worker, one config at a time: "
                                      "drop --executor, --workers, --address and --device")
            return submit_background(store, "sweep", {"spec": sweep.spec})
    except PrunescopeError as exc:
        if sweep_id:  # a background sweep: say why on its status row
            Store(args.store).update_sweep(sweep_id, state="failed", finished=time.time(), error=str(exc))
        raise
    sweep_id = sweep_id or new_sweep_id()
    err = wide_console(stderr=True)
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
        workers = executors.default_workers(max(len(p.runs), len(p.attacks)), peak_estimate(p, store))

    def on_term(signum, frame):  # `sweeps.background.cancel` and kill: stop like Ctrl-C, with the status row updated
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
                bar.console.print(outcome_line(ev), soft_wrap=True, highlight=False)
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


def with_device(sweep, device: str):
    """The sweep with every run (and every attack's run) on `device` (--device overrides the file's)."""
    from dataclasses import replace

    from pruning_core.model.models import check_device_name

    check_device_name(device)
    runs = tuple(r.with_(device=device) for r in sweep.runs)
    attacks = tuple(a.with_(run=a.run.with_(device=device)) for a in sweep.attacks)
    return replace(sweep, runs=runs, attacks=attacks)


def peak_estimate(p, store) -> float | None:
    """The largest estimated peak memory of the runs left to do (None without a basis)."""
    from pruning_core.sweeps.estimate import estimate_run
    from pruning_core.storage.results import runs_table

    table = runs_table(store, attacks=False)
    peaks = [e.peak_mb for e in (estimate_run(c, table) for c in p.runs) if e.peak_mb]
    return max(peaks) if peaks else None


def outcome_line(event) -> str:
    """One line per finished config: done (its accuracy, or its attack numbers) or failed (the error's first line)."""
    from rich.markup import escape

    out, cfg = event.outcome, event.config
    label = escape(config_label(cfg))
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
