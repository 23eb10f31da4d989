"""The one layer-by-layer pruning loop shared by every post-training method.

As in the reference code of SparseGPT (Frantar & Alistarh, "SparseGPT: Massive Language Models Can Be
Accurately Pruned in One-Shot", ICML 2023) and Wanda (Sun et al., "A Simple and Effective Pruning
Approach for Large Language Models", ICLR 2024): embed the calibration batch, then for each encoder
block in order: hook the block's linears to accumulate the Gram matrix X^T X of their inputs, run the
block, let the method choose masks (and new weights), then re-run the pruned block to produce the
next block's inputs (the same pass measures the cumulative errors). Deviations from the reference code: X^T X counts real tokens only (pads left
out) and is built once per distinct input (Q, K and V share one); a dense shadow stream runs
alongside, so the cumulative error at every module and block output is known; it depends only on
the dense model and the texts, so with a `dense_key` it is computed once per calibration and kept
(`dense_cache`). A method that reads only the weights (`needs_statistics = False`: magnitude) gets
no statistics pass: its local error ||W X - W' X||^2 / ||W X||^2 is measured on the pruned pass, so X
are the inputs that reach the module in the pruned block (for Q/K/V the same X as before, equal up to
float error; for the attention output and the FFN, the pruned block's own activations rather than the
dense block's on the pruned inputs, as for `sequential` methods).

Methods can ask for more (class attributes of `Method`):
- `sequential`: statistics recollected input group by input group (Q/K/V, attention output, FFN in,
  FFN out), each on the block with the earlier groups already pruned, with the cross term
  X^T (Y_dense - b) of the pruned-stream inputs X and the dense model's outputs Y (AKRP's target);
- `window(options)` blocks chosen one after the other and then refined together, and
  `refine(...)`, which trains a window's unmasked weights towards a target (reconstruction);
- a held-out set (same size, other texts) flows through dense and pruned blocks too, so each block
  reports its cumulative error on data the method never saw; `extra` calibration texts (e.g.
  self-generated) feed only `refine`.

The loop (`_prune`) walks the windows of blocks through named phases over one `PruneState`, in
`engine_phases`: `dense_pass`, `solve_block` and `advance` per block, then `refine_window` and
`measure_window` per window; the streams and statistics they use are in `engine_stats`.

`prune(...)` validates everything first, then returns a generator that yields a `LayerRecord` per
module and a `BlockRecord` per block as it goes, and returns a `PruneResult` (see `run`).
"""

from __future__ import annotations

import time
from typing import Callable, Generator

import torch
from torch import nn

import pruning_core.prune.dense_cache as dense_cache
import pruning_core.prune.masks as masks_mod
import pruning_core.prune.methods as methods
from pruning_core.measure import metrics
from pruning_core.model.arch import Arch, arch_of
from pruning_core.data.calibration import CalibrationSet
from pruning_core.prune.engine_phases import (PruneState, advance, dense_pass, measure_window, open_window, refine_window,
                                        solve_block, windows)
# Re-exported: the statistics as `engine.GramStats` and friends, the stream for tests that build one.
from pruning_core.prune.engine_stats import GramStats, Stream as _Stream, Targets  # noqa: F401
from pruning_core.measure.profiling import PeakMemory
# The records live in their own module; re-exported here for `engine.LayerRecord` and friends.
from pruning_core.prune.records import BlockRecord, ErrorSum, LayerRecord, PruneResult  # noqa: F401


def prune(model: nn.Module, calib: CalibrationSet, method: str, sparsity: float,
          pattern: str = "unstructured", options: dict | None = None, heldout: CalibrationSet | None = None,
          extra: CalibrationSet | None = None, dense_key=None) -> Generator:
    """Validate the request, then return the pruning generator (nothing is changed until iterated).

    The model is pruned in place, on the device its parameters are on: deep-copy it first to keep
    the dense one. `heldout`: texts measured, never fitted; `extra`: more texts for `refine` only.
    `dense_key`: a hashable name of the dense weights (e.g. model, task, device); given, the dense
    shadow is kept in `dense_cache` and reused by later runs on the same texts (see there).
    """
    arch = arch_of(model)
    meth = methods.get(method)
    if meth.structured:
        from pruning_core.core.errors import PrunescopeError

        raise PrunescopeError(f"'{method}' is a structured method: run it through experiment.prune_copy")
    pat = masks_mod.parse_pattern(pattern)
    masks_mod.check_sparsity(sparsity, pat)
    opts = meth.options(options)
    meth.check_pattern(pat, opts)
    for i, block in enumerate(arch.blocks(model)):
        for kind, lin in arch.block_linears(block).items():
            masks_mod.check_divisible(tuple(lin.weight.shape), pat, arch.linear_name(i, kind))
    return _prune(model, arch, calib, meth, sparsity, pat, opts, heldout, extra, dense_key)


@torch.no_grad()
def fill_dense_cache(model: nn.Module, calib: CalibrationSet, heldout: CalibrationSet | None, dense_key,
                     method: str = "sparsegpt") -> int:
    """Run only the dense shadow of a prune of `model` on these texts (every block's dense pass, the first
    block's statistics for a `method` that reads them) and keep it in `dense_cache` under `dense_key`, so a
    later prune of any method or sparsity on the same texts starts with no dense passes. The model is not
    changed. Returns the number of blocks now cached (0 when the cache is off or too small)."""
    if dense_cache.cap_bytes() == 0 or dense_key is None:
        return 0
    arch, meth = arch_of(model), methods.get(method)
    model.eval()
    state = PruneState.begin(model, arch, calib, meth, 0.5, masks_mod.parse_pattern("unstructured"),
                             meth.options({}), heldout, None, dense_key)
    for i in range(len(state.blocks)):
        dense = dense_pass(state, i)  # computed and kept, or already there
        state.cal.dense = dense.block_out
        for n, st in state.side.items():
            st.dense = dense.side_out[n]
    return sum(dense_cache.has(state.cache_key + (i,)) for i in range(len(state.blocks)))


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
def _prune(model, arch: Arch, calib: CalibrationSet, meth, sparsity, pat, opts, heldout=None, extra=None,
           dense_key=None):
    device = next(model.parameters()).device
    model.eval()
    with PeakMemory(device) as mem:
        t_start = time.perf_counter()
        state = PruneState.begin(model, arch, calib, meth, sparsity, pat, opts, heldout, extra, dense_key)
        for idxs in windows(len(state.blocks), meth.window(opts)):
            win = open_window(state, idxs)
            for i in idxs:
                dense = dense_pass(state, i)
                win.chosen[i], block_target = solve_block(state, i, dense)
                win.block_target = block_target + dense.extra_target  # dense block, pruned inputs: cal + extra
                advance(state, i, dense, inside=i != idxs[-1])
            losses = refine_window(state, win)
            yield from measure_window(state, win, losses)
        cal = state.cal
        dense_logits = torch.cat([arch.logits(model, h) for h in cal.dense])
        pruned_logits = torch.cat([arch.logits(model, h) for h in cal.pruned])
        cls = metrics.relative_error(torch.cat([arch.pooled(model, h) for h in cal.dense]),
                                     torch.cat([arch.pooled(model, h) for h in cal.pruned]))
        seconds = time.perf_counter() - t_start - state.timings["heldout"]
        state.timings["forward"] -= state.timings["heldout"]  # held-out passes ran inside the forward timers
    enc = [p for b in state.blocks for p in b.parameters()]
    return PruneResult(
        method=meth.name, sparsity=sparsity, pattern=str(pat), layers=state.layers, blocks=state.block_records,
        masks=state.masks, achieved_sparsity=state.zeros / state.weights,
        encoder_sparsity=sum(int((p == 0).sum()) for p in enc) / sum(p.numel() for p in enc),
        cls_error=cls, logits_kl=metrics.logits_kl(dense_logits, pruned_logits), prune_seconds=seconds,
        peak_memory_mb=mem.peak_mb, peak_total_mb=mem.peak_total_mb, device=str(device), calib_examples=calib.n_examples,
        calib_tokens=calib.real_tokens, timings=state.timings)
