"""What the engine's phases measure with: calibration streams, forward hooks and the Gram statistics.

As in the SparseGPT and Wanda reference code, a small per-input statistics object (`GramStats`) with
`add_batch`; unlike them, X^T X is accumulated over real tokens only, one matmul per micro-batch, and
once per distinct input (Q, K and V share one). See `engine` for the loop that uses these.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from typing import Callable, Iterator, NamedTuple

import torch
from torch import nn

from pruning_core.model.arch import Arch
from pruning_core.data.calibration import CalibrationSet


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
def hooks(modules: dict[str, nn.Module], fn: Callable[[str, torch.Tensor, torch.Tensor], None]) -> Iterator[None]:
    """Call `fn(kind, input, output)` on every forward of the given modules while inside."""
    handles = [m.register_forward_hook(lambda mod, inp, out, k=k: fn(k, inp[0], out)) for k, m in modules.items()]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


class Stream:
    """A set of micro-batches flowing through the encoder twice: dense and pruned hidden states."""

    def __init__(self, model, arch: Arch, cset: CalibrationSet, device, dtype):
        cset = cset.to(device)
        self.attn = [arch.block_mask(model, m.long(), dtype) for _, m in cset.batches]
        self.keeps = [m for _, m in cset.batches]
        self.dense = [arch.embed(model, ids) for ids, _ in cset.batches]
        self.pruned = self.dense  # identical until the first block is pruned

    def run(self, arch: Arch, block, hidden: list[torch.Tensor]) -> list[torch.Tensor]:
        """`block` applied to every micro-batch of `hidden` (this stream's attention masks)."""
        return [arch.run_block(block, h, self.attn[b]) for b, h in enumerate(hidden)]


class Targets(NamedTuple):
    """What a `sequential` method gets per module: the cross term X^T (Y_dense - b) over all real tokens,
    and (X^T X, X^T (Y_dense - b)) of two halves of the calibration examples (alternate rows of every
    micro-batch), for choosing a ridge by fitting on one half and checking on the other. float64."""

    cross: torch.Tensor
    folds: tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def collect(arch: Arch, block, lin: dict, stream: Stream, hidden: list[torch.Tensor], groups, device,
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
    with hooks({g[0]: lin[g[0]] for g in groups}, add), \
            (hooks(lin, lambda k, x, o: also(k, x, o, cur["b"])) if also else nullcontext()):
        for b, h in enumerate(hidden):
            cur["b"] = b
            outs.append(arch.run_block(block, h, stream.attn[b]))
    targets = {k: Targets(cross[0][k] + cross[1][k], ((folds[0][g[0]], cross[0][k]), (folds[1][g[0]], cross[1][k])))
               for g in groups for k in g} if f64 else {}
    return stats, targets, outs
