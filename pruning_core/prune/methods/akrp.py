"""AKRP: robust knowledge-retention pruning by cumulative-error reconstruction with adaptive rectification.

Paper: Li, Lan, Tao et al., "Towards Robust Pruning: An Adaptive Knowledge-Retention Pruning Strategy
for Language Models" (2023). Layer by layer and module by module (Q, K, V, attention output, FFN in,
FFN out), each module's target is the DENSE model's output Y while its input X is what the PRUNED
model produces so far, so every module also corrects the error accumulated before it:

1. rectify: w* = (X^T X + lambda * mean(diag X^T X) I)^-1 X^T (Y - b), lambda from `lambda0`,
   raised tenfold until the solution is stable (adaptive rectification). "Stable" is measured, not
   assumed: the calibration examples are split in two halves; lambda is raised while the solution
   fitted on one half reconstructs the other half better (two-fold, both ways), and the first lambda
   past which it stops improving is used on all tokens. (Cholesky of X^T X plus any positive ridge
   succeeds in float64, so a positive-definiteness test alone would never raise lambda; with 128
   texts the unregularised fit reconstructs the calibration texts 5x better than SparseGPT and
   held-out texts worse.) Statistics for AKRP are accumulated in float64;
2. prune w* with the OBS / SparseGPT solver, H = X^T X (dampened by `percdamp`, as SparseGPT);
3. write the module and recollect statistics on the partly pruned block before the next module
   (the engine's `sequential` mode); Q, K and V read the same input and are solved together.

Deviations from the reference code, on purpose: pad tokens are left out of X^T X and X^T Y; biases
are kept as they are and never pruned (the target is Y - b); the ridge starts from `lambda0` for every
module instead of accumulating across modules.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pruning_core.core.errors import PrunescopeError
from pruning_core.prune.methods.base import knob
from pruning_core.prune.methods.sparsegpt import BLOCKSIZE_HELP, SparseGPT

MAX_RAISES = 12  # lambda0 * 10^12 at most: beyond that the inputs carry no usable information


@dataclass(frozen=True)
class AKRPOptions:
    lambda0: float = knob(1e-4, "Ridge λ₀ (× mean diag XᵀX)",
                          "adaptive rectification: w* = (XᵀX + λ·mean(diag) I)⁻¹ Xᵀ(Y_dense − b) with X the pruned "
                          "model's inputs; λ starts here and is raised tenfold while a fit on half of the calibration "
                          "examples reconstructs the other half better", gt=0, ui_min=1e-12, ui_max=1.0, step=1e-5,
                          format="%.1e")
    blocksize: int = knob(128, "Block size", BLOCKSIZE_HELP, ge=1, ui_max=4096)
    percdamp: float = knob(0.01, "Dampening (× mean diag H)",
                           "the OBS / SparseGPT solver that prunes the rectified weights: H = XᵀX dampened by this",
                           gt=0, lt=1, ui_min=0.0, ui_max=0.99, format="%.3f")


def rectify(gram: torch.Tensor, cross: torch.Tensor, lambda0: float = 1e-4) -> tuple[torch.Tensor, float]:
    """Ridge least squares w* = (G + lambda mean(diag G) I)^-1 C for G = X^T X, C = X^T (Y - b).

    Returns (w* as out x in, the lambda used). Lambda starts at `lambda0` and is raised tenfold while
    the Cholesky factorisation fails or the solution is not finite."""
    g = gram.double()
    scale = float(g.diagonal().mean()) or 1.0
    eye = torch.eye(g.shape[0], dtype=g.dtype, device=g.device)
    lam = lambda0
    for _ in range(MAX_RAISES + 1):
        chol, info = torch.linalg.cholesky_ex(g + lam * scale * eye)
        if int(info) == 0:
            sol = torch.cholesky_solve(cross.double(), chol)
            if torch.isfinite(sol).all():
                return sol.T.contiguous(), lam
        lam *= 10
    raise PrunescopeError("akrp: the calibration inputs of a module are degenerate (no stable ridge solution); "
                          "use more calibration examples")


def validation_residual(sol: torch.Tensor, gram: torch.Tensor, cross: torch.Tensor) -> float:
    """||X W - Y||^2 up to the constant ||Y||^2, from G = X^T X and C = X^T Y, for W = `sol` (in x out)."""
    return float((sol * (gram @ sol)).sum() - 2 * (sol * cross).sum())


def choose_lambda(folds, lambda0: float = 1e-4) -> float:
    """Raise lambda tenfold from `lambda0` while the two-fold validation residual falls: fit on one half
    of the examples, measure on the other, both ways. Returns the last lambda that improved it."""
    (g_a, c_a), (g_b, c_b) = folds
    best, best_lam, lam = float("inf"), lambda0, lambda0
    for _ in range(MAX_RAISES + 1):
        err = 0.0
        for (g_fit, c_fit), (g_val, c_val) in (((g_a, c_a), (g_b, c_b)), ((g_b, c_b), (g_a, c_a))):
            w, _ = rectify(g_fit, c_fit, lam)  # (its own raise only if the system is not positive definite)
            err += validation_residual(w.T.double(), g_val.double(), c_val.double())
        if err >= best:
            break
        best, best_lam, lam = err, lam, lam * 10
    return best_lam


class AKRP(SparseGPT):
    name = "akrp"
    paper = "Li et al. 2023, Towards Robust Pruning: An Adaptive Knowledge-Retention Pruning Strategy for LMs"
    Options = AKRPOptions
    colour = "#B279A2"
    sequential = True

    def prune_group(self, weights, gram, sparsity, pattern, options, context, targets=None):
        if targets is None:
            raise PrunescopeError("akrp needs the dense model's outputs as targets (run it through the engine)")
        rectified = {}
        for k, w in weights.items():
            lam = choose_lambda(targets[k].folds, options.lambda0)
            rectified[k] = rectify(gram, targets[k].cross, lam)[0].to(w.dtype)
        return super().prune_group(rectified, gram, sparsity, pattern, options, context)
