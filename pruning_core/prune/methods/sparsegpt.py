"""SparseGPT: one-shot pruning with OBS weight reconstruction.

Paper: Frantar & Alistarh, "SparseGPT: Massive Language Models Can Be Accurately Pruned in One-Shot"
(ICML 2023). H = X^T X over real calibration tokens (the paper's 2 X X^T / n differs by a scale that
changes neither the mask nor the update); inputs never seen (H_jj = 0) get H_jj = 1 and their weights
are zeroed; dampening 0.01 * mean(diag H); upper Cholesky factor of H^-1; columns in blocks of 128;
inside a block the mask is chosen by w^2 / [H^-1]_jj^2 (N:M: among each M columns of a row, when the
group is reached), the pruned weight's error is spread over the remaining columns of the block,
and a lazy batched update applies it to the later blocks.

Deviation: several matrices that read the same input (Q, K and V) share one H and one factorisation
and are processed stacked, while the mask of each matrix is still chosen on its own (the count of
pruned weights per block is set per matrix, where the reference takes one quantile over the block).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch

from pruning_core.core.errors import PrunescopeError
from pruning_core.prune.masks import Pattern
from pruning_core.prune.methods.base import Method, knob


BLOCKSIZE_HELP = "columns pruned per block by the OBS solver (lazy batched update)"


@dataclass(frozen=True)
class SparseGPTOptions:
    blocksize: int = knob(128, "Block size", BLOCKSIZE_HELP, ge=1, ui_max=4096)
    percdamp: float = knob(0.01, "Dampening (× mean diag H)",
                           "H = XᵀX over the calibration tokens, dampened by this times its mean diagonal",
                           gt=0, lt=1, ui_min=0.0, ui_max=0.99, format="%.3f")


def inverse_hessian_factor(gram: torch.Tensor, percdamp: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Upper Cholesky factor of (H + damp I)^-1, and the mask of dead inputs (H_jj = 0)."""
    h = gram.to(torch.float64 if gram.dtype == torch.float64 else torch.float32, copy=True)  # never the caller's
    dead = h.diagonal() == 0
    h[dead, dead] = 1
    damp = percdamp * h.diagonal().mean()
    h.diagonal().add_(damp)
    try:
        inv = torch.cholesky_inverse(torch.linalg.cholesky(h))
        return torch.linalg.cholesky(inv, upper=True), dead
    except torch.linalg.LinAlgError:
        raise PrunescopeError("sparsegpt: the calibration Hessian is not positive definite; raise percdamp "
                              "or the calibration size") from None


@contextmanager
def _one_thread(active: bool = True) -> Iterator[None]:
    """torch on one CPU thread while inside: the OBS column loop is thousands of small element-wise ops, and
    at that size the intra-op threads' hand-offs cost more than they save (7x slower on 2 busy cores)."""
    before = torch.get_num_threads()
    if active and before > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def sparsegpt_solve(weight: torch.Tensor, hinv: torch.Tensor, sparsity: float, pattern: Pattern,
                    blocksize: int = 128, segments: list[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Prune `weight` (rows x cols, dead input columns already zero) given the upper Cholesky factor
    of H^-1. `segments` = row counts of stacked matrices whose masks are chosen separately.
    Returns (new weight, keep-mask).

    Inside a block the columns are updated one after the other on a transposed copy (block column i =
    contiguous row i), as rank-1 updates w -= h_i e^T computed as a product then a subtraction (the
    reference's rounding: no fused multiply-add)."""
    w = weight.clone().to(hinv.dtype)
    rows, cols = w.shape
    segments = segments or [rows]
    keep = torch.ones_like(w, dtype=torch.bool)
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        w1 = w[:, i1:i2].clone()
        hinv1 = hinv[i1:i2, i1:i2]
        d = hinv1.diagonal()
        prune1 = torch.zeros_like(w1, dtype=torch.bool)
        if not pattern.is_nm:
            score = w1.pow(2) / d.pow(2).unsqueeze(0)
            start = 0
            for seg in segments:  # each matrix chooses its own mask
                k = round(score[start:start + seg].numel() * sparsity)
                if k:
                    idx = torch.topk(score[start:start + seg].flatten(), k, largest=False).indices
                    prune1[start:start + seg].view(-1)[idx] = True
                start += seg
        scale = (prune1.to(w1.dtype) / d.unsqueeze(0)).T.contiguous()  # e_i = w_i / d_i where pruned, else 0
        w1t, err1t = w1.T.contiguous(), torch.zeros(i2 - i1, rows, dtype=w1.dtype, device=w1.device)
        update = torch.empty_like(w1t)
        with _one_thread():
            for i in range(i2 - i1):
                if pattern.is_nm and i % pattern.m == 0:  # N:M: the group's mask when the group is reached
                    score = w1t[i:i + pattern.m].T.pow(2) / d[i:i + pattern.m].pow(2).unsqueeze(0)
                    idx = torch.topk(score, pattern.m - pattern.n, dim=1, largest=False).indices
                    prune1.scatter_(1, i + idx, True)
                    scale[i:i + pattern.m] = (prune1[:, i:i + pattern.m].to(w1.dtype) / d[i:i + pattern.m]).T
                e = torch.mul(w1t[i], scale[i], out=err1t[i])
                # OBS update of the rest of the block; it also takes a pruned w_i to exactly w_i - e_i d_i = 0
                w1t[i:].sub_(torch.mul(hinv1[i, i:].unsqueeze(1), e, out=update[:i2 - i1 - i]))
        w1 = w1t.T.contiguous()
        w1[prune1] = 0  # exact zeros (the update leaves rounding residue)
        w[:, i1:i2] = w1
        keep[:, i1:i2] = ~prune1
        w[:, i2:] -= err1t.T.contiguous() @ hinv[i1:i2, i2:]
    return w, keep


class SparseGPT(Method):
    name = "sparsegpt"
    paper = "Frantar & Alistarh 2023, SparseGPT: Massive Language Models Can Be Accurately Pruned in One-Shot"
    Options = SparseGPTOptions
    colour = "#54A24B"

    def check_pattern(self, pattern, options) -> None:
        if pattern.is_nm and options.blocksize % pattern.m:
            raise PrunescopeError(f"sparsegpt blocksize {options.blocksize} must be a multiple of {pattern.m} "
                                  f"for pattern {pattern}")

    def prune_group(self, weights, gram, sparsity, pattern, options, context, targets=None):
        hinv, dead = inverse_hessian_factor(gram, options.percdamp)
        kinds = list(weights)
        dtype = torch.float64 if gram.dtype == torch.float64 else torch.float32
        stacked = torch.cat([weights[k].to(dtype) for k in kinds])
        stacked[:, dead] = 0
        segments = [weights[k].shape[0] for k in kinds]
        new, keep = sparsegpt_solve(stacked, hinv, sparsity, pattern, options.blocksize, segments)
        keep[:, dead] = False  # inputs never seen are zeroed and count as pruned
        out, start = {}, 0
        for k, seg in zip(kinds, segments):
            out[k] = (new[start:start + seg].to(weights[k].dtype), keep[start:start + seg])
            start += seg
        return out
