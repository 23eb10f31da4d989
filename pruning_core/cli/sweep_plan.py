"""`prunescope sweep --dry-run`: the grid as tables, with cost estimates from the store's earlier runs;
computes nothing and creates no store."""

from __future__ import annotations

import json
from pathlib import Path

from pruning_core.cli.common import changed_options, wide_console


def dry_run(sweep, args) -> int:
    from rich.markup import escape
    from rich.table import Table

    from pruning_core.sweeps import executors
    from pruning_core.sweeps.estimate import estimate_sweep
    from pruning_core.storage.store import Store, default_path

    path = args.store or default_path()
    store = Store(path) if Path(path).exists() else None  # a dry run creates no store
    est = estimate_sweep(sweep, store)
    con = wide_console()
    fmt = lambda v, f="{:.1f}": "?" if v is None else f.format(v)  # noqa: E731
    status = lambda s: "[red]failed before[/]" if s == "failed before" else s  # noqa: E731

    table = Table(title=escape(f"sweep {sweep.name}: {len(sweep.runs)} runs ({args.file})"))
    for col in ("#", "task", "model", "method", "pattern", "sparsity", "options (changed)", "seed", "status",
                "prune s", "eval s", "peak MB", "estimate basis"):
        table.add_column(col, justify="right" if col in ("#", "sparsity", "prune s", "eval s", "peak MB") else "left")
    for i, (cfg, st, e) in enumerate(est.runs, 1):
        table.add_row(str(i), cfg.task, escape(cfg.model), cfg.method, cfg.pattern, f"{cfg.sparsity:g}",
                      escape(json.dumps(changed_options(cfg))) if changed_options(cfg) else "", str(cfg.seed),
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
