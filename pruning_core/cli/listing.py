"""`prunescope list`: the shipped models, tasks, methods (with their options) and patterns."""

from __future__ import annotations

import json
from dataclasses import fields


def register(subparsers) -> None:
    subparsers.add_parser("list", help="models, tasks, methods and patterns")


def run(args) -> int:
    from pruning_core.data import tasks as data
    from pruning_core.prune import masks
    from pruning_core.prune import methods
    from pruning_core.model.models import MODELS_DIR

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
    print("  " + ", ".join(masks.PATTERNS) + f" (any N:M with 0 < N < M <= {masks.MAX_M}); structured ("
          + ", ".join(n for n, m in methods.METHODS.items() if m.structured) + ")")
    return 0
