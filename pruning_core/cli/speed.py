"""`prunescope speed`: measured latency and throughput of a stored run beside its dense model."""

from __future__ import annotations

from pathlib import Path

from pruning_core.cli.common import add_background_arg, check_json_path, integer, submit_background, write_json
from pruning_core.core.errors import PrunescopeError


def register(subparsers) -> None:
    sd = subparsers.add_parser("speed", help="measured latency and throughput of a stored run vs its dense model")
    sd.add_argument("key", metavar="RUN_KEY", help="key of a stored run")
    sd.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto")
    sd.add_argument("--repeats", type=integer(1, 10_000, "from 1 to 10,000"), default=20,
                    help="timed passes per batch size (median)")
    sd.add_argument("--seq-len", type=integer(2, 8192, "from 2 to 8192"), default=None,
                    help="tokens per sequence (default: the task's average length where known, else 64)")
    sd.add_argument("--recompute", action="store_true", help="measure again even if the store has numbers")
    sd.add_argument("--json", type=Path, default=None, help="write the measurement as JSON here")
    add_background_arg(sd)


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from pruning_core.experiments.speed import measure_run
    from pruning_core.storage.store import Store

    check_json_path(args.json)
    store = Store()
    if args.background:
        if args.json:
            raise PrunescopeError("--background stores the measurement: drop --json")
        spec = {"key": args.key, "repeats": args.repeats, "seq_len": args.seq_len, "device": args.device}
        return submit_background(store, "speed", spec, args.recompute)
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
    write_json(args.json, out)
    return 0
