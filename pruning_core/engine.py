"""The one layer-by-layer pruning loop shared by every post-training method.

As in the SparseGPT and Wanda reference code: embed the calibration batch, then for each encoder
block in order: hook the block's linears to accumulate the Gram matrix X^T X of their inputs over
real tokens (one per distinct input: Q, K and V share one), run the block, let the method choose
masks (and new weights), then re-run the pruned block to produce the next block's inputs. A dense
shadow stream runs alongside, so the cumulative error at every module and block output is known.

`prune(...)` validates everything first, then returns a generator that yields a `LayerRecord` per
module and a `BlockRecord` per block as it goes, and returns a `PruneResult` (see `run`).
"""

from __future__ import annotations

import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Callable, Generator, Iterator

import torch
from torch import nn

from pruning_core import masks as masks_mod
from pruning_core import methods, metrics
from pruning_core.arch import INPUT_GROUPS, KINDS, Arch, arch_of
from pruning_core.calibration import CalibrationSet
from pruning_core.profiling import PeakMemory


@dataclass(frozen=True)
class LayerRecord:
    """One pruned linear module."""

    name: str
    block: int
    kind: str
    shape: tuple[int, int]
    achieved_sparsity: float
    local_error: float  # ||WX - W'X||^2 / ||WX||^2, X = inputs reaching it in the pruned model
    cumulative_error: float  # module output, pruned model vs dense model, calibration inputs
    seconds: float  # time the method spent on this module's input group (shared by Q, K and V)


@dataclass(frozen=True)
class BlockRecord:
    """One encoder block after all its modules are pruned."""

    block: int
    achieved_sparsity: float
    cumulative_error: float  # block output, pruned vs dense
    seconds: float


@dataclass
class PruneResult:
    method: str
    sparsity: float
    pattern: str
    layers: list[LayerRecord]
    blocks: list[BlockRecord]
    masks: dict[str, torch.Tensor]  # module name -> bool keep-mask (CPU)
    achieved_sparsity: float  # zeros / weights over the pruned modules
    encoder_sparsity: float  # zeros / parameters over all encoder blocks (biases, LayerNorm included)
    cls_error: float  # [CLS] (pooled) representation error on the calibration set
    logits_kl: float  # KL(dense || pruned) on the calibration set
    prune_seconds: float
    peak_memory_mb: float  # memory growth at the peak of pruning
    peak_total_mb: float  # whole process (CPU) / allocator (GPU) footprint at that peak
    device: str
    calib_examples: int
    calib_tokens: int
    timings: dict = field(default_factory=dict)


class GramStats:
    """X^T X over the real (non-pad) tokens that reach one input; `add_batch` as in the reference code."""

    def __init__(self, dim: int, device):
        self.gram = torch.zeros(dim, dim, device=device)
        self.tokens = 0

    def add_batch(self, x: torch.Tensor, keep: torch.Tensor) -> None:
        xr = x[keep].float()
        self.gram.addmm_(xr.T, xr)
        self.tokens += xr.shape[0]


class _ErrorSum:
    """Accumulates ||dense - pruned||^2 and ||dense||^2 batch by batch."""

    def __init__(self):
        self.num = 0.0
        self.den = 0.0

    def add(self, dense: torch.Tensor, pruned: torch.Tensor) -> None:
        self.num += float((dense - pruned).float().pow(2).sum())
        self.den += float(dense.float().pow(2).sum())

    @property
    def value(self) -> float:
        return self.num / self.den if self.den > 0 else 0.0


@contextmanager
def _hooks(modules: dict[str, nn.Module], fn: Callable[[str, torch.Tensor, torch.Tensor], None]) -> Iterator[None]:
    handles = [m.register_forward_hook(lambda mod, inp, out, k=k: fn(k, inp[0], out)) for k, m in modules.items()]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def prune(model: nn.Module, calib: CalibrationSet, method: str, sparsity: float,
          pattern: str = "unstructured", options: dict | None = None) -> Generator:
    """Validate the request, then return the pruning generator (nothing is changed until iterated).

    The model is pruned in place, on the device its parameters are on: deep-copy it first to keep
    the dense one.
    """
    arch = arch_of(model)
    meth = methods.get(method)
    pat = masks_mod.parse_pattern(pattern)
    masks_mod.check_sparsity(sparsity, pat)
    opts = meth.options(options)
    meth.check_pattern(pat, opts)
    for i, block in enumerate(arch.blocks(model)):
        for kind, lin in arch.block_linears(block).items():
            masks_mod.check_divisible(tuple(lin.weight.shape), pat, arch.linear_name(i, kind))
    return _prune(model, arch, calib, meth, sparsity, pat, opts)


def run(gen: Generator, on_record: Callable[[LayerRecord | BlockRecord], None] | None = None) -> PruneResult:
    """Drive a pruning generator to the end, passing each record to `on_record`."""
    while True:
        try:
            rec = next(gen)
        except StopIteration as stop:
            return stop.value
        if on_record:
            on_record(rec)


@torch.no_grad()
def _prune(model, arch: Arch, calib: CalibrationSet, meth, sparsity, pat, opts):
    device = next(model.parameters()).device
    model.eval()
    calib = calib.to(device)
    blocks = arch.blocks(model)
    linears = [arch.block_linears(b) for b in blocks]
    timings = {"forward": 0.0, "method": 0.0}  # forward includes the statistics hooks
    records, block_records, keep_masks = [], [], {}
    pruned_zeros = pruned_total = 0
    with PeakMemory(device) as mem:
        t_start = time.perf_counter()
        context = meth.prepare([m.weight for lin in linears for m in lin.values()], sparsity, pat, opts)
        dtype = next(model.parameters()).dtype
        attn = [arch.block_mask(model, m.long(), dtype) for _, m in calib.batches]
        keeps = [m for _, m in calib.batches]
        dense_h = [arch.embed(model, ids) for ids, _ in calib.batches]
        pruned_h = dense_h  # identical until the first block is pruned
        for i, block in enumerate(blocks):
            t_block = time.perf_counter()
            lin = linears[i]
            firsts = {g[0]: lin[g[0]] for g in INPUT_GROUPS}
            stats = {g[0]: GramStats(lin[g[0]].in_features, device) for g in INPUT_GROUPS}
            dense_out: dict[str, list[torch.Tensor]] = {k: [] for k in KINDS}
            cur = {"b": 0}

            def add_stats(kind, x, out):
                stats[kind].add_batch(x, keeps[cur["b"]])

            def keep_dense(kind, x, out):
                dense_out[kind].append(out[keeps[cur["b"]]])

            # 1. dense shadow (and, at block 0 where inputs agree, the statistics)
            t = time.perf_counter()
            with _hooks(lin, keep_dense), (_hooks(firsts, add_stats) if pruned_h is dense_h else nullcontext()):
                dense_next = []
                for b, h in enumerate(dense_h):
                    cur["b"] = b
                    dense_next.append(arch.run_block(block, h, attn[b]))
            # 2. statistics on the pruned stream, block still dense
            if pruned_h is not dense_h:
                with _hooks(firsts, add_stats):
                    for b, h in enumerate(pruned_h):
                        cur["b"] = b
                        arch.run_block(block, h, attn[b])
            timings["forward"] += time.perf_counter() - t
            # 3. masks and new weights, one input group at a time
            local, spent = {}, {}
            for group in INPUT_GROUPS:
                t = time.perf_counter()
                gram = stats[group[0]].gram
                dense_w = {k: lin[k].weight.data for k in group}
                result = meth.prune_group(dense_w, gram, sparsity, pat, opts, context)
                elapsed = time.perf_counter() - t  # one solve serves the whole input group
                timings["method"] += elapsed
                for k, (w_new, keep) in result.items():
                    local[k] = metrics.local_error(dense_w[k], w_new, gram)
                    lin[k].weight.data.copy_(w_new)
                    keep_masks[arch.linear_name(i, k)] = keep.cpu()
                    spent[k] = elapsed
            # 4. re-run the pruned block: next inputs, and cumulative error per module
            t = time.perf_counter()
            cum = {k: _ErrorSum() for k in KINDS}

            def compare(kind, x, out):
                cum[kind].add(dense_out[kind][cur["b"]], out[keeps[cur["b"]]])

            block_err = _ErrorSum()
            with _hooks(lin, compare):
                pruned_next = []
                for b, h in enumerate(pruned_h):
                    cur["b"] = b
                    out = arch.run_block(block, h, attn[b])
                    block_err.add(dense_next[b][keeps[b]], out[keeps[b]])
                    pruned_next.append(out)
            timings["forward"] += time.perf_counter() - t
            zeros = total = 0
            for k in KINDS:
                w = lin[k].weight
                z = int((w == 0).sum())
                zeros, total = zeros + z, total + w.numel()
                rec = LayerRecord(arch.linear_name(i, k), i, k, tuple(w.shape), z / w.numel(), local[k],
                                  cum[k].value, spent[k])
                records.append(rec)
                yield rec
            pruned_zeros, pruned_total = pruned_zeros + zeros, pruned_total + total
            brec = BlockRecord(i, zeros / total, block_err.value, time.perf_counter() - t_block)
            block_records.append(brec)
            yield brec
            dense_h, pruned_h = dense_next, pruned_next
        dense_logits = torch.cat([arch.logits(model, h) for h in dense_h])
        pruned_logits = torch.cat([arch.logits(model, h) for h in pruned_h])
        cls = metrics.relative_error(torch.cat([arch.pooled(model, h) for h in dense_h]),
                                     torch.cat([arch.pooled(model, h) for h in pruned_h]))
        seconds = time.perf_counter() - t_start
    enc = [p for b in blocks for p in b.parameters()]
    return PruneResult(
        method=meth.name, sparsity=sparsity, pattern=str(pat), layers=records, blocks=block_records,
        masks=keep_masks, achieved_sparsity=pruned_zeros / pruned_total,
        encoder_sparsity=sum(int((p == 0).sum()) for p in enc) / sum(p.numel() for p in enc),
        cls_error=cls, logits_kl=metrics.logits_kl(dense_logits, pruned_logits), prune_seconds=seconds,
        peak_memory_mb=mem.peak_mb, peak_total_mb=mem.peak_total_mb, device=str(device), calib_examples=calib.n_examples,
        calib_tokens=calib.real_tokens, timings=timings)

