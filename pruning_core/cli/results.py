"""`prunescope results`: the stored runs (or sweep failures, or sweeps) as one flat table."""

from __future__ import annotations

import sys
from pathlib import Path

from pruning_core.cli.common import wide_console
from pruning_core.core.errors import PrunescopeError

LEFT = ("key", "id", "task", "method", "pattern", "options", "error", "kind", "state", "spec")


def register(subparsers) -> None:
    rs = subparsers.add_parser("results", help="stored runs as one flat table: print it, or write CSV / Parquet / JSON")
    rs.add_argument("--format", default=None, help="csv | parquet | json (default: from --out's suffix; "
                    "without --out, a table on screen)")
    rs.add_argument("--out", type=Path, default=None, help="write the table here")
    for name in ("model", "task", "method", "pattern"):
        rs.add_argument(f"--{name}", default=None, help=f"only runs with this {name}")
    rs.add_argument("--sparsity", type=float, default=None, help="only runs at this (requested) sparsity")
    rs.add_argument("--failures", action="store_true", help="the configs that failed in sweeps, with their errors")
    rs.add_argument("--sweeps", action="store_true", help="the status of every sweep")
    rs.add_argument("--store", type=Path, default=None, help="results store (default: PRUNESCOPE_DB)")


def run(args) -> int:
    from pruning_core.storage.results import runs_table, write_table
    from pruning_core.storage.store import Store

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
    print_table(df, args, store.path)
    if not (args.sweeps or args.failures):
        print(f"{len(df)} runs; --format csv|parquet|json [--out FILE] for every column", file=sys.stderr)
    return 0


def print_table(df, args, path) -> None:
    """The table on screen: the columns that matter of runs, sweep failures or sweeps."""
    from rich.table import Table

    if args.sweeps or args.failures:
        cols = (["id", "state", "total", "stored", "done", "failed", "pid", "spec"] if args.sweeps else
                ["key", "kind", "task", "method", "pattern", "sparsity", "error"])
    else:
        attack_cols = [c for c in df.columns if c.endswith("_accuracy_under_attack")]
        optional = [c for c in ("flops_reduction",) if c in df and df[c].notna().any()]
        cols = ["key", "task", "method", "pattern", "sparsity", "options", "accuracy", "dense_accuracy",
                "achieved_sparsity", *optional, "prune_seconds", "peak_total_mb", *attack_cols]
    title = ("sweeps" if args.sweeps else "sweep failures" if args.failures else "stored runs") + f" in {path}"
    table = Table(title=title)
    for c in cols:
        table.add_column(c, justify="left" if c in LEFT else "right")
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
    wide_console().print(table)
