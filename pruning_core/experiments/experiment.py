"""One experiment end to end: load, evaluate dense, build calibration, prune (streaming), evaluate.

Used by the CLI and the dashboard alike, so both run exactly the same code for a config.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
import torch

from pruning_core.data import calibration
from pruning_core.data import tasks as data
from pruning_core.prune import engine
from pruning_core.prune import methods
from pruning_core.model import models
from pruning_core.experiments.config import ExperimentConfig
from pruning_core.measure.evaluate import Evaluation, evaluate
from pruning_core.measure import flips, intervals
from pruning_core.core import environment


@dataclass
class ExperimentResult:
    config: ExperimentConfig
    dense: Evaluation
    pruned: Evaluation
    prune: engine.PruneResult
    eval_seconds: float
    histograms: dict | None = None
    predictions: dict | None = None  # measure.flips.predictions(): per-example columns, dense and pruned
    environment: dict | None = None  # core.environment.snapshot() at the start of the run

    def to_json(self) -> dict:
        """Plain JSON: the config, headline numbers, and one entry per module and per block."""
        p = self.prune
        return {
            "config": self.config.to_dict(),
            "key": self.config.key(),
            "achieved_sparsity": p.achieved_sparsity,
            "encoder_sparsity": p.encoder_sparsity,
            "dense_accuracy": self.dense.accuracy,
            "accuracy": self.pruned.accuracy,
            "dense_accuracy_ci": intervals.accuracy_interval(self.dense.accuracy, self.dense.n),  # Wilson, 95%
            "accuracy_ci": intervals.accuracy_interval(self.pruned.accuracy, self.pruned.n),
            "eval_examples": self.pruned.n,
            "logits_kl": self.pruned.kl_to_dense,
            "cls_error": self.pruned.cls_error,
            "calib_logits_kl": p.logits_kl,
            "calib_cls_error": p.cls_error,
            "heldout_error": p.blocks[-1].heldout_error if p.blocks else None,  # last block, held-out set
            "prune_seconds": p.prune_seconds,
            "eval_seconds": self.eval_seconds,
            "peak_memory_mb": p.peak_memory_mb,
            "peak_total_mb": p.peak_total_mb,
            "device": p.device,
            "calib_examples": p.calib_examples,
            "calib_tokens": p.calib_tokens,
            "layers": [{k: v for k, v in asdict(r).items()} for r in p.layers],
            "blocks": [asdict(b) for b in p.blocks],
            "histograms": self.histograms or {},
            "structure": p.structure,
            "predictions": self.predictions,
            "environment": self.environment,
        }


def eval_index(n_test: int, eval_size: int | None, seed: int) -> list[int]:
    """The rows of a test split of `n_test` examples that the evaluation uses (all, or a seeded subset)."""
    if eval_size is None or eval_size >= n_test:
        return list(range(n_test))
    return [int(i) for i in sorted(np.random.default_rng(seed).choice(n_test, size=eval_size, replace=False))]


def eval_split(task: str, eval_size: int | None, seed: int) -> data.TaskData:
    """The test split, or a seeded subset of `eval_size` examples of it."""
    split = data.load(task, "test")
    if eval_size is None or eval_size >= len(split):
        return split
    idx = eval_index(len(split), eval_size, seed)
    return data.TaskData(split.name, split.split, tuple(split.texts[i] for i in idx),
                         tuple(split.labels[i] for i in idx), split.label_names)


def eval_max_length(task: str) -> int:
    info = data.task_info(task)
    return info.max_length if info else 128


FIRST_SLICE = 0.2  # share of the evaluation (in batches) whose pruned accuracy is reported before the rest


@lru_cache(maxsize=4)
def load_dense(model: str, task: str, device: str, fresh_head: bool = False):
    """The dense model and tokenizer (cached: never mutate; deep-copy before pruning)."""
    net, tok = models.load(model, task, device, fresh_head=fresh_head)
    return net, tok


@lru_cache(maxsize=8)
def dense_outputs(model: str, task: str, eval_size: int | None, seed: int, device: str, fresh_head: bool = False):
    """Dense evaluation (accuracy, logits, pooled) on the evaluation split; cached per process."""
    net, tok = load_dense(model, task, device, fresh_head)
    split = eval_split(task, eval_size, seed)
    check_labels(net, split)
    t = time.perf_counter()
    ev, out = evaluate(net, tok, split.texts, split.labels, eval_max_length(task))
    return ev, out, time.perf_counter() - t


def check_labels(net, split: data.TaskData) -> None:
    from pruning_core.core.errors import PrunescopeError

    if net.config.num_labels != split.num_labels:
        raise PrunescopeError(f"the model predicts {net.config.num_labels} classes but task '{split.name}' "
                              f"has {split.num_labels}; pick a model fine-tuned for this task")


def run_experiment(cfg: ExperimentConfig, on_record: Callable | None = None,
                   on_stage: Callable[[str], None] | None = None) -> ExperimentResult:
    """Load, evaluate dense, prune a copy with live records, evaluate pruned."""
    stage = on_stage or (lambda s: None)
    cfg.validate()
    device = str(models.resolve_device(cfg.device))
    env = environment.snapshot(device)  # before this run loads the machine
    stage("loading model and data")
    dense_net, tok = load_dense(cfg.model, cfg.task, device, cfg.fresh_head)
    if methods.get(cfg.method).structured:  # a family the method cannot prune: say so before evaluating
        from pruning_core.prune.structured.shrink import check_supported

        check_supported(dense_net, methods.get(cfg.method))
    split = eval_split(cfg.task, cfg.eval_size, cfg.seed)
    stage(f"evaluating the dense model on {len(split)} examples")
    hits = dense_outputs.cache_info().hits
    dense_eval, dense_out, eval_seconds = dense_outputs(cfg.model, cfg.task, cfg.eval_size, cfg.seed, device, cfg.fresh_head)
    if dense_outputs.cache_info().hits > hits:  # reused: this run spent no time on the dense evaluation
        eval_seconds = 0.0
        stage("the dense model's evaluation was kept from an earlier run in this process")
    max_len = eval_max_length(cfg.task)
    stage(f"pruning with {cfg.method}")
    net, result = prune_copy(cfg, dense_net, tok, on_record)
    hists = weight_histograms(dense_net, net) if result.structure is None else None  # same shapes only
    stage(f"evaluating the pruned model on {len(split)} examples")
    t = time.perf_counter()

    def first_slice(acc: float, n: int, total: int) -> None:  # a number on screen while the rest is evaluated
        lo, hi = intervals.accuracy_interval(acc, n)
        stage(f"pruned accuracy on a first random {n} of {total} examples: {acc:.3f} [{lo:.2f}, {hi:.2f}]; "
              "the rest follow")

    pruned_eval, (pruned_logits, _) = evaluate(net, tok, split.texts, split.labels, max_len, dense=dense_out,
                                               first=(FIRST_SLICE, cfg.seed) if len(split) >= 400 else None,
                                               on_first=first_slice)
    eval_seconds += time.perf_counter() - t
    del net
    index = eval_index(len(data.load(cfg.task, "test")), cfg.eval_size, cfg.seed)
    preds = flips.predictions(dense_out[0], pruned_logits, split.labels, index)
    return ExperimentResult(cfg, dense_eval, pruned_eval, result, eval_seconds, hists, preds, env)


def calibration_sets(cfg: ExperimentConfig, tok):
    """The run's calibration set (the task's training split) and its held-out set of the same size (its
    validation split, other texts): what `prune_copy` prunes on and `warm` runs the dense shadow of."""
    calib = calibration.from_task(tok, cfg.task, cfg.calib_size, cfg.seq_len, cfg.seed)
    return calib, calibration.heldout(tok, cfg.task, cfg.calib_size, cfg.seq_len, cfg.seed, exclude=calib.texts)


def warm(cfg: ExperimentConfig, on_stage: Callable[[str], None] | None = None) -> dict:
    """Do ahead of time the part of `run_experiment(cfg)` that does not depend on the method or the sparsity:
    load the dense model, evaluate it on the evaluation split, and run the dense shadow of the calibration
    and held-out texts into the engine's dense cache. A later run on the same model, task, calibration and
    evaluation split in this process (a job worker) then pays only for pruning and the pruned evaluation.
    Returns seconds per stage."""
    stage = on_stage or (lambda s: None)
    cfg.validate()
    device = str(models.resolve_device(cfg.device))
    times, t = {}, time.perf_counter()
    stage("loading model and data")
    dense_net, tok = load_dense(cfg.model, cfg.task, device, cfg.fresh_head)
    times["load"], t = time.perf_counter() - t, time.perf_counter()
    stage("evaluating the dense model")
    dense_outputs(cfg.model, cfg.task, cfg.eval_size, cfg.seed, device, cfg.fresh_head)
    times["dense_eval"], t = time.perf_counter() - t, time.perf_counter()
    if not methods.get(cfg.method).structured:
        stage("running the dense model on the calibration texts")
        calib, held = calibration_sets(cfg, tok)
        engine.fill_dense_cache(dense_net, calib, held, dense_key(cfg, dense_net))
    times["dense_pass"] = time.perf_counter() - t
    return times


def prune_copy(cfg: ExperimentConfig, dense_net, tok, on_record: Callable | None = None):
    """Prune a deep copy of `dense_net` as `cfg` says; returns (pruned model, PruneResult).

    Calibration from the task's training split; a held-out set of the same size from its validation
    split (measured per block, never fitted); self-generated texts where the method asks for them."""
    from pruning_core.data import selfgen

    calib, held = calibration_sets(cfg, tok)
    method = methods.get(cfg.method)
    if method.structured:  # whole units removed: a smaller model comes back
        from pruning_core.prune.structured import run as structured_run

        return structured_run.prune(cfg, method, dense_net, tok, calib, held, on_record)
    extra = None
    n_gen = method.extra_calibration_texts(method.options(cfg.options_dict()))
    if n_gen:
        texts = selfgen.generate(dense_net, tok, calib.texts, n_gen, cfg.seq_len, cfg.seed,
                                 model_path=models.resolve(cfg.model, cfg.task))
        extra = calibration.build(tok, texts, cfg.seq_len)
    net = copy.deepcopy(dense_net)
    gen = engine.prune(net, calib, cfg.method, cfg.sparsity, cfg.pattern, cfg.options_dict(), heldout=held,
                       extra=extra, dense_key=dense_key(cfg, dense_net))
    return net, engine.run(gen, on_record)


def dense_key(cfg: ExperimentConfig, dense_net) -> tuple:
    """What names the dense weights for the engine's dense activation cache: the model and task as loaded
    (`load_dense`), the device, and the loaded object itself (a reloaded model gets new entries)."""
    return (cfg.model, cfg.task, cfg.fresh_head, str(next(dense_net.parameters()).device), id(dense_net))


def weight_histograms(dense_net, pruned_net, bins: int = 40) -> dict:
    """Per pruned module: counts of |w| before and after pruning on shared bins (after: non-zeros only),
    small enough to store with every run."""
    from pruning_core.model.arch import arch_of

    arch = arch_of(dense_net)
    out = {}
    for i, (bd, bp) in enumerate(zip(arch.blocks(dense_net), arch.blocks(pruned_net))):
        for kind, ld in arch.block_linears(bd).items():
            before = ld.weight.detach().abs().flatten().float().cpu()
            after = arch.block_linears(bp)[kind].weight.detach().abs().flatten().float().cpu()
            hi = float(max(before.max(), after.max())) or 1.0
            nz = after[after != 0]
            out[arch.linear_name(i, kind)] = {
                "edges": torch.linspace(0, hi, bins + 1).tolist(),
                "before": torch.histc(before, bins, 0, hi).int().tolist(),
                "after": torch.histc(nz, bins, 0, hi).int().tolist(),
                "zeros_after": int((after == 0).sum()),
            }
    return out
