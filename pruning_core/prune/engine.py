"""The one layer-by-layer pruning loop shared by every post-training method.

As in the SparseGPT and Wanda reference code: embed the calibration batch, then for each encoder
block in order: hook the block's linears to accumulate the Gram matrix X^T X of their inputs over
real tokens (one per distinct input: Q, K and V share one), run the block, let the method choose
masks (and new weights), then re-run the pruned block to produce the next block's inputs. A dense
shadow stream runs alongside, so the cumulative error at every module and block output is known.

Methods can ask for more (class attributes of `Method`):
- `sequential`: statistics recollected input group by input group (Q/K/V, attention output, FFN in,
  FFN out), each on the block with the earlier groups already pruned, with the cross term
  X^T (Y_dense - b) of the pruned-stream inputs X and the dense model's outputs Y (AKRP's target);
- `window(options)` blocks chosen one after the other and then refined together, and
  `refine(...)`, which trains a window's unmasked weights towards a target (reconstruction);
- a held-out set (same size, other texts) flows through dense and pruned blocks too, so each block
  reports its cumulative error on data the method never saw; `extra` calibration texts (e.g.
  self-generated) feed only `refine`.

`prune(...)` validates everything first, then returns a generator that yields a `LayerRecord` per
module and a `BlockRecord` per block as it goes, and returns a `PruneResult` (see `run`).
"""

from __future__ import annotations

import time
from contextlib import contextmanager, nullcontext
from typing import Callable, Generator, Iterator, NamedTuple

import torch
from torch import nn

import pruning_core.prune.masks as masks_mod
import pruning_core.prune.methods as methods
from pruning_core.measure import metrics
from pruning_core.model.arch import INPUT_GROUPS, KINDS, Arch, arch_of
from pruning_core.data.calibration import CalibrationSet
from pruning_core.measure.profiling import PeakMemory
# The records live in their own module; re-exported here for `engine.LayerRecord` and friends.
from pruning_core.prune.records import BlockRecord, ErrorSum, LayerRecord, PruneResult


class GramStats:
    """X^T X over the real (non-pad) tokens that reach one input; `add_batch` as in the reference code."""

    def __init__(self, dim: int, device, dtype: torch.dtype = torch.float32):
        self.gram = torch.zeros(dim, dim, device=device, dtype=dtype)
        self.tokens = 0

    def add_batch(self, x: torch.Tensor, keep: torch.Tensor) -> None:
        xr = x[keep].to(self.gram.dtype)
        self.gram.addmm_(xr.T, xr)
        self.tokens += xr.shape[0]


@contextmanager
def _hooks(modules: dict[str, nn.Module], fn: Callable[[str, torch.Tensor, torch.Tensor], None]) -> Iterator[None]:
    handles = [m.register_forward_hook(lambda mod, inp, out, k=k: fn(k, inp[0], out)) for k, m in modules.items()]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def prune(model: nn.Module, calib: CalibrationSet, method: str, sparsity: float,
          pattern: str = "unstructured", options: dict | None = None, heldout: CalibrationSet | None = None,
          extra: CalibrationSet | None = None) -> Generator:
    """Validate the request, then return the pruning generator (nothing is changed until iterated).

    The model is pruned in place, on the device its parameters are on: deep-copy it first to keep
    the dense one. `heldout`: texts measured, never fitted; `extra`: more texts for `refine` only.
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
    return _prune(model, arch, calib, meth, sparsity, pat, opts, heldout, extra)


def run(gen: Generator, on_record: Callable[[LayerRecord | BlockRecord], None] | None = None) -> PruneResult:
    """Drive a pruning generator to the end, passing each record to `on_record`."""
    while True:
        try:
            rec = next(gen)
        except StopIteration as stop:
            return stop.value
        if on_record:
            on_record(rec)


class _Stream:
    """A set of micro-batches flowing through the encoder twice: dense and pruned hidden states."""

    def __init__(self, model, arch: Arch, cset: CalibrationSet, device, dtype):
        cset = cset.to(device)
        self.attn = [arch.block_mask(model, m.long(), dtype) for _, m in cset.batches]
        self.keeps = [m for _, m in cset.batches]
        self.dense = [arch.embed(model, ids) for ids, _ in cset.batches]
        self.pruned = self.dense  # identical until the first block is pruned

    def run(self, arch: Arch, block, hidden: list[torch.Tensor]) -> list[torch.Tensor]:
        return [arch.run_block(block, h, self.attn[b]) for b, h in enumerate(hidden)]


class Targets(NamedTuple):
    """What a `sequential` method gets per module: the cross term X^T (Y_dense - b) over all real tokens,
    and (X^T X, X^T (Y_dense - b)) of two halves of the calibration examples (alternate rows of every
    micro-batch), for choosing a ridge by fitting on one half and checking on the other. float64."""

    cross: torch.Tensor
    folds: tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def _collect(arch: Arch, block, lin: dict, stream: _Stream, hidden: list[torch.Tensor], groups, device,
             dense_out=None, also: Callable | None = None):
    """Gram matrices of the given input groups from one pass of `hidden` through `block`; with
    `dense_out`, in float64 and per half of the examples, with the cross terms (see `Targets`).
    `also(kind, x, out, batch)` is hooked on every linear. Returns (stats, targets, block outputs)."""
    f64 = dense_out is not None
    dtype = torch.float64 if f64 else torch.float32
    stats = {g[0]: GramStats(lin[g[0]].in_features, device, dtype) for g in groups}
    folds = [{g[0]: torch.zeros(lin[g[0]].in_features, lin[g[0]].in_features, device=device, dtype=dtype)
              for g in groups} for _ in range(2)] if f64 else []
    cross = [{k: torch.zeros(lin[k].in_features, lin[k].out_features, device=device, dtype=dtype)
              for g in groups for k in g} for _ in range(2)] if f64 else []
    cur = {"b": 0}

    def add(kind, x, out):
        keep = stream.keeps[cur["b"]]
        stats[kind].add_batch(x, keep)
        if not f64:
            return
        xr = x[keep].to(dtype)
        rows = keep.nonzero(as_tuple=True)[0]  # the example of every real token, in x[keep] order
        for f in range(2):
            sel = rows % 2 == f
            xf = xr[sel]
            folds[f][kind].addmm_(xf.T, xf)
            for k in next(g for g in groups if g[0] == kind):
                y = dense_out[k][cur["b"]].to(dtype)
                if lin[k].bias is not None:
                    y = y - lin[k].bias.to(dtype)
                cross[f][k].addmm_(xf.T, y[sel])

    outs = []
    with _hooks({g[0]: lin[g[0]] for g in groups}, add), \
            (_hooks(lin, lambda k, x, o: also(k, x, o, cur["b"])) if also else nullcontext()):
        for b, h in enumerate(hidden):
            cur["b"] = b
            outs.append(arch.run_block(block, h, stream.attn[b]))
    targets = {k: Targets(cross[0][k] + cross[1][k], ((folds[0][g[0]], cross[0][k]), (folds[1][g[0]], cross[1][k])))
               for g in groups for k in g} if f64 else {}
    return stats, targets, outs


@torch.no_grad()
def _prune(model, arch: Arch, calib: CalibrationSet, meth, sparsity, pat, opts, heldout=None, extra=None):
    device = next(model.parameters()).device
    model.eval()
    blocks = arch.blocks(model)
    linears = [arch.block_linears(b) for b in blocks]
    # forward includes the statistics hooks; side = held-out and extra streams (held-out time is measurement,
    # not pruning: it is left out of prune_seconds)
    timings = {"forward": 0.0, "method": 0.0, "refine": 0.0, "heldout": 0.0}
    records, block_records, keep_masks = [], [], {}
    pruned_zeros = pruned_total = 0
    window, target_kind = meth.window(opts), meth.refine_target(opts)
    with PeakMemory(device) as mem:
        t_start = time.perf_counter()
        context = meth.prepare([m.weight for lin in linears for m in lin.values()], sparsity, pat, opts)
        dtype = next(model.parameters()).dtype
        cal = _Stream(model, arch, calib, device, dtype)
        side = {name: _Stream(model, arch, c, device, dtype) for name, c in (("heldout", heldout), ("extra", extra))
                if c is not None}

        def side_run(name, block, hidden):  # held-out passes are measurement: timed apart from pruning
            t_side = time.perf_counter()
            out = side[name].run(arch, block, hidden)
            if name == "heldout":
                timings["heldout"] += time.perf_counter() - t_side
            return out
        for w0 in range(0, len(blocks), window):
            idxs = list(range(w0, min(w0 + window, len(blocks))))
            t_window = time.perf_counter()
            start = {"cal": cal.pruned, **{n: st.pruned for n, st in side.items()}}
            per_block = {}
            for i in idxs:
                block, lin = blocks[i], linears[i]
                dense_out: dict[str, list[torch.Tensor]] = {k: [] for k in KINDS}

                def keep_dense(kind, x, out, b):
                    dense_out[kind].append(out[cal.keeps[b]])

                # 1. dense shadow of every stream (where the inputs still agree, with the statistics),
                # and block-wise targets: the dense block on the pruned inputs
                t = time.perf_counter()
                same = cal.pruned is cal.dense and not meth.sequential
                stats0, _, dense_next = _collect(arch, block, lin, cal, cal.dense, INPUT_GROUPS if same else (),
                                                 device, also=keep_dense)
                side_next = {n: side_run(n, block, st.dense) for n, st in side.items()}
                extra_target = (side["extra"].run(arch, block, side["extra"].pruned)
                                if target_kind == "block" and "extra" in side else [])
                # 2. statistics on the pruned stream; 3. masks and new weights, one input group at a time
                local, spent, block_target = {}, {}, None
                for groups in ([(g,) for g in INPUT_GROUPS] if meth.sequential else [INPUT_GROUPS]):
                    if same:
                        stats, cross, outs = stats0, {}, dense_next
                    else:
                        stats, cross, outs = _collect(arch, block, lin, cal, cal.pruned, groups, device,
                                                      dense_out if meth.sequential else None)
                    block_target = outs if block_target is None else block_target
                    timings["forward"] += time.perf_counter() - t
                    for group in groups:
                        t = time.perf_counter()
                        gram = stats[group[0]].gram
                        dense_w = {k: lin[k].weight.data for k in group}  # methods return new tensors
                        targets = {k: cross[k] for k in group} if cross else None  # sequential methods
                        result = meth.prune_group(dense_w, gram, sparsity, pat, opts, context, targets=targets)
                        elapsed = time.perf_counter() - t  # one solve serves the whole input group
                        timings["method"] += elapsed
                        for k, (w_new, keep) in result.items():
                            local[k] = metrics.local_error(dense_w[k], w_new, gram)
                            lin[k].weight.data.copy_(w_new)
                            keep_masks[arch.linear_name(i, k)] = keep.cpu()
                            spent[k] = elapsed
                    t = time.perf_counter()
                per_block[i] = (dense_out, dense_next, local, spent, side_next.get("heldout"))
                more = i != idxs[-1]  # the window's next block needs these inputs; else step 5 makes them
                cal.dense, cal.pruned = dense_next, cal.run(arch, block, cal.pruned) if more else cal.pruned
                for n, st in side.items():
                    st.dense, st.pruned = side_next[n], side_run(n, block, st.pruned) if more else st.pruned
                timings["forward"] += time.perf_counter() - t
            # 4. refine the window's unmasked weights towards its target (reconstruction methods)
            losses = None
            if target_kind is not None:
                t = time.perf_counter()
                ex = side.get("extra")
                target = (block_target + extra_target if target_kind == "block"
                          else cal.dense + (ex.dense if ex else []))
                with torch.enable_grad():
                    losses = meth.refine(
                        arch, [blocks[i] for i in idxs],
                        [{k: (linears[i][k], keep_masks[arch.linear_name(i, k)].to(device)) for k in KINDS}
                         for i in idxs],
                        start["cal"] + start.get("extra", []), target,
                        cal.attn + (ex.attn if ex else []), cal.keeps + (ex.keeps if ex else []), opts)
                timings["refine"] += time.perf_counter() - t
            # 5. re-run the pruned window: next inputs, and cumulative error per module and block
            t = time.perf_counter()
            h_cal, h_side = start["cal"], {n: start[n] for n in side}
            for i in idxs:
                block, lin = blocks[i], linears[i]
                dense_out, dense_next, local, spent, held_dense = per_block[i]
                cum = {k: ErrorSum() for k in KINDS}
                cur = {"b": 0}

                def compare(kind, x, out):
                    cum[kind].add(dense_out[kind][cur["b"]], out[cal.keeps[cur["b"]]])

                block_err = ErrorSum()
                with _hooks(lin, compare):
                    nxt = []
                    for b, h in enumerate(h_cal):
                        cur["b"] = b
                        out = arch.run_block(block, h, cal.attn[b])
                        block_err.add(dense_next[b][cal.keeps[b]], out[cal.keeps[b]])
                        nxt.append(out)
                h_cal = nxt
                h_side = {n: side_run(n, block, h) for n, h in h_side.items()}
                held = None
                if "heldout" in side:
                    held_err, hs = ErrorSum(), side["heldout"]
                    for b, (d, p) in enumerate(zip(held_dense, h_side["heldout"])):
                        held_err.add(d[hs.keeps[b]], p[hs.keeps[b]])
                    held = held_err.value
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
                brec = BlockRecord(i, zeros / total, block_err.value, time.perf_counter() - t_window, held,
                                   tuple(losses) if losses and i == idxs[-1] else None)
                block_records.append(brec)
                yield brec
            cal.pruned = h_cal
            for n in side:
                side[n].pruned = h_side[n]
            timings["forward"] += time.perf_counter() - t
        dense_logits = torch.cat([arch.logits(model, h) for h in cal.dense])
        pruned_logits = torch.cat([arch.logits(model, h) for h in cal.pruned])
        cls = metrics.relative_error(torch.cat([arch.pooled(model, h) for h in cal.dense]),
                                     torch.cat([arch.pooled(model, h) for h in cal.pruned]))
        seconds = time.perf_counter() - t_start - timings["heldout"]
        timings["forward"] -= timings["heldout"]  # held-out passes ran inside the forward timers
    enc = [p for b in blocks for p in b.parameters()]
    return PruneResult(
        method=meth.name, sparsity=sparsity, pattern=str(pat), layers=records, blocks=block_records,
        masks=keep_masks, achieved_sparsity=pruned_zeros / pruned_total,
        encoder_sparsity=sum(int((p == 0).sum()) for p in enc) / sum(p.numel() for p in enc),
        cls_error=cls, logits_kl=metrics.logits_kl(dense_logits, pruned_logits), prune_seconds=seconds,
        peak_memory_mb=mem.peak_mb, peak_total_mb=mem.peak_total_mb, device=str(device), calib_examples=calib.n_examples,
        calib_tokens=calib.real_tokens, timings=timings)
