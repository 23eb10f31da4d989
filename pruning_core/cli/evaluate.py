"""`prunescope eval`: accuracy of a dense model on a task's test split, as one JSON line."""

from __future__ import annotations

import json

from pruning_core.cli.common import add_model_args


def register(subparsers) -> None:
    ev = subparsers.add_parser("eval", help="accuracy of a (dense) model on a task's test split")
    add_model_args(ev)


def run(args) -> int:
    from pruning_core.experiments.config import ExperimentConfig
    from pruning_core.experiments.experiment import dense_outputs
    from pruning_core.model.models import resolve_device

    # the same validation as a prune (task, model, eval size, seed), then the cached dense evaluation
    cfg = ExperimentConfig.create(model=args.model, task=args.task, method="magnitude", sparsity=0.0,
                                  seed=args.seed, eval_size=args.eval_size, device=args.device,
                                  fresh_head=args.fresh_head)
    ev, _, _ = dense_outputs(cfg.model, cfg.task, cfg.eval_size, cfg.seed, str(resolve_device(cfg.device)),
                             cfg.fresh_head)
    print(json.dumps({"model": args.model, "task": args.task, "split": "test", "examples": ev.n,
                      "accuracy": ev.accuracy}))
    return 0
