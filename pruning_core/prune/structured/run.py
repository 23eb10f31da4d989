"""Driving a structured method end to end: calibration texts with their labels, the method's unit
masks, removal (physical for BERT, zeroed units for RoBERTa and DistilBERT: see `shrink`), and the
measures every run records (per-block cumulative error on the calibration and held-out sets, FLOPs and
parameters before and after).

Records passed to `on_record` while it runs: `StepRecord` (one per step the method reports), then a
`BlockRecord` per block, as the engine yields for unstructured methods.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from pruning_core.measure import metrics
from pruning_core.model.arch import arch_of
from pruning_core.data.calibration import CalibrationSet
from pruning_core.measure.profiling import PeakMemory
from pruning_core.prune.records import BlockRecord, ErrorSum, PruneResult, StepRecord
from pruning_core.prune.structured.shrink import check_supported, physical, remove
from pruning_core.prune.structured.structure import Structure, average_length


@dataclass
class StructuredContext:
    """Everything a structured method may use. `model` is a private full-size copy: the method may
    change its weights (they are kept for the units that survive)."""

    model: nn.Module
    tokenizer: Any
    task: str
    calib: CalibrationSet
    labels: torch.Tensor  # class of each calibration text, in `calib.texts` order
    budget: float
    options: Any
    seed: int
    seq_len: float  # average real tokens per calibration sequence (the s of the FLOPs count)
    report: Callable[[StepRecord], None] = field(default=lambda r: None)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def batches(self):
        """(input_ids, attention_mask, labels) micro-batches on the model's device."""
        start = 0
        for ids, mask in self.calib.batches:
            n = ids.shape[0]
            yield ids.to(self.device), mask.to(self.device), self.labels[start:start + n].to(self.device)
            start += n


def labels_for(task: str, texts) -> torch.Tensor:
    """Labels of calibration texts (drawn from the task's training split)."""
    from pruning_core.data.calibration import _source
    from pruning_core.data.tasks import load

    split = load(_source(task), "train")
    index = dict(zip(split.texts, split.labels))
    return torch.tensor([index[t] for t in texts])


def hidden_states(model: nn.Module, cset: CalibrationSet, hidden: torch.Tensor | None = None):
    """Per block output, per batch: hidden states on real tokens (width restored to the full hidden
    size with zeros where a pruned model dropped channels); the logits; the pooled [CLS]."""
    device = next(model.parameters()).device
    arch = arch_of(model)
    per_block, logits, pooled = None, [], []
    with torch.no_grad():
        for ids, mask in cset.batches:
            out = model(input_ids=ids.to(device), attention_mask=mask.to(device), output_hidden_states=True)
            hs = out.hidden_states[1:]
            keep = mask.to(device)
            if per_block is None:
                per_block = [[] for _ in hs]
            for i, h in enumerate(hs):
                h = h[keep]
                if hidden is not None and h.shape[-1] != len(hidden):
                    full = h.new_zeros(h.shape[0], len(hidden))
                    full[:, hidden.to(device)] = h
                    h = full
                per_block[i].append(h)
            logits.append(out.logits)
            pooled.append(arch.pooled(model, hs[-1]))
    return per_block, torch.cat(logits), torch.cat(pooled)


def prune(cfg, meth, dense_net: nn.Module, tok, calib: CalibrationSet, heldout: CalibrationSet | None,
          on_record: Callable | None = None):
    """Run structured method `meth` (the registry's object for `cfg.method`: passed in, so this module does
    not import the registry that imports it) on a copy of `dense_net`; returns (smaller model, PruneResult)."""
    emit = on_record or (lambda r: None)
    check_supported(dense_net, meth)
    opts = meth.options(cfg.options_dict())
    device = next(dense_net.parameters()).device
    full = Structure.full(dense_net.config)
    seq_len = average_length(calib.batches)
    with PeakMemory(device) as mem:
        t0 = time.perf_counter()
        work = copy.deepcopy(dense_net)
        ctx = StructuredContext(work, tok, cfg.task, calib, labels_for(cfg.task, calib.texts), cfg.sparsity, opts,
                                cfg.seed, seq_len, emit)
        with torch.enable_grad():
            structure, log = meth.prune_structured(ctx)
        small = remove(work, structure)
        seconds = time.perf_counter() - t0
        del work
    blocks = []
    dense_cal, dense_logits, dense_cls = hidden_states(dense_net, calib)
    small_cal, small_logits, small_cls = hidden_states(small, calib, structure.hidden)
    if heldout is not None:
        dense_held, _, _ = hidden_states(dense_net, heldout)
        small_held, _, _ = hidden_states(small, heldout, structure.hidden)
    for i in range(len(dense_cal)):
        err = ErrorSum()
        for d, p in zip(dense_cal[i], small_cal[i]):
            err.add(d, p)
        held = None
        if heldout is not None:
            h = ErrorSum()
            for d, p in zip(dense_held[i], small_held[i]):
                h.add(d, p)
            held = h.value
        kept = (structure.heads[i].float().mean() + structure.neurons[i].float().mean()) / 2
        rec = BlockRecord(i, float(1 - kept), err.value, 0.0, held)
        blocks.append(rec)
        emit(rec)
    cls = metrics.relative_error(dense_cls, small_cls)
    flops_dense, flops = full.flops(seq_len), structure.flops(seq_len)
    params_dense, params = full.params(), structure.params()
    info = structure.to_json() | {
        "flops_dense": flops_dense, "flops": flops, "flops_reduction": 1 - flops / flops_dense,
        "params_dense": params_dense, "params": params, "seq_len": seq_len, "budget_meaning": meth.budget_meaning,
        "log": log,
    }
    result = PruneResult(
        method=meth.name, sparsity=cfg.sparsity, pattern="structured", layers=[], blocks=blocks,
        masks=structure.masks(), achieved_sparsity=1 - params / params_dense,
        encoder_sparsity=1 - _encoder_weights(small) / _encoder_weights(dense_net),
        cls_error=cls, logits_kl=metrics.logits_kl(dense_logits, small_logits), prune_seconds=seconds,
        peak_memory_mb=mem.peak_mb, peak_total_mb=mem.peak_total_mb, device=str(device),
        calib_examples=calib.n_examples, calib_tokens=calib.real_tokens, structure=info)
    return small, result


def _encoder_weights(model: nn.Module) -> int:
    """Parameters of the encoder blocks (biases, LayerNorm included); for a model whose removed units
    are zeroed rather than removed (see `shrink`), the non-zero ones."""
    params = arch_of(model).encoder(model).parameters()
    if physical(model):
        return sum(p.numel() for p in params)
    return sum(int(p.count_nonzero()) for p in params)
