"""`prunescope finetune`: fine-tune the shipped MiniLM-L6 on a shipped task, reproducibly."""

from __future__ import annotations

import json
from pathlib import Path

from pruning_core.cli.common import integer, number


def register(subparsers) -> None:
    ft = subparsers.add_parser("finetune", help="fine-tune the shipped MiniLM-L6 on a shipped task (reproducible)")
    ft.add_argument("--task", required=True, choices=["rotten_tomatoes", "bbc_news"])
    ft.add_argument("--epochs", type=integer(1, 1000, "from 1 to 1000"), default=None)
    ft.add_argument("--lr", type=number(lambda v: 0 < v < 1, "in (0, 1)"), default=None)
    ft.add_argument("--seed", type=integer(0, 2**32 - 1, "from 0 to 2^32 - 1"), default=None)
    ft.add_argument("--out", type=Path, default=None)
    ft.add_argument("--device", default="auto")


def run(args) -> int:
    from dataclasses import replace

    from pruning_core.experiments.finetune import DEFAULTS, finetune
    from pruning_core.model.models import resolve_device
    from pruning_core.core.paths import check_output_dir

    if args.out is not None:
        check_output_dir(args.out, "--out")
    resolve_device(args.device)
    cfg = DEFAULTS[args.task]
    cfg = replace(cfg, **{k: v for k, v in (("epochs", args.epochs), ("lr", args.lr), ("seed", args.seed))
                          if v is not None})
    report = finetune(cfg, out=args.out, device=args.device)
    print(json.dumps({k: v for k, v in report.items() if k != "history"}, indent=2))
    return 0
