"""`prunescope export`: write a stored run's pruned model as a transformers folder."""

from __future__ import annotations

import json
from pathlib import Path

from pruning_core.cli.common import add_background_arg, submit_background


def register(subparsers) -> None:
    ex = subparsers.add_parser("export", help="write a stored run's pruned model as a transformers folder")
    ex.add_argument("key", metavar="RUN_KEY", help="key of a stored run")
    ex.add_argument("--out", default=None, metavar="DIR",
                    help="folder under the export root (default: the run key)")
    ex.add_argument("--root", type=Path, default=None,
                    help="export root; DIR may not leave it (default: exports/ beside the results store)")
    ex.add_argument("--force", action="store_true", help="replace the contents of a non-empty folder")
    ex.add_argument("--device", default="cpu", help="where the run is pruned again: cpu | cuda | cuda:N")
    add_background_arg(ex)


def run(args) -> int:
    from rich.console import Console

    from pruning_core.experiments.export import export_run
    from pruning_core.storage.store import Store

    store = Store()
    if args.background:
        spec = {"key": args.key, "out": args.out, "root": str(args.root) if args.root else None,
                "force": args.force, "device": args.device}
        return submit_background(store, "export", spec)
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
