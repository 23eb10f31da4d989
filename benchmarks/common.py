"""Helpers shared by the benchmark scripts: timing and table printing."""

from __future__ import annotations

import os
import time
from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OUT = Path(__file__).resolve().parents[1] / "artifacts" / "bench"


def best_of(fn, repeat: int = 3) -> float:
    """Fastest wall time of `repeat` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def print_table(headers: list[str], rows: list[list], title: str) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for h in headers:
        table.add_column(h, justify="right")
    for r in rows:
        table.add_row(*[f"{v:.4f}" if isinstance(v, float) and abs(v) < 10 else
                        (f"{v:.1f}" if isinstance(v, float) else str(v)) for v in r])
    console = Console(record=True, width=160)
    console.print(table)
    return console.export_text()


def threads() -> int:
    import torch

    return torch.get_num_threads()


def machine() -> str:
    return f"{os.cpu_count()} CPU cores, torch threads {threads()}"


def print_progress(done, total, cfg, computed) -> None:
    """`run_grid`'s on_progress: one line per config it had to compute."""
    if computed:
        print(f"[{done}/{total}] {cfg.task} {cfg.method} {cfg.sparsity:g} {dict(cfg.options)}", flush=True)
