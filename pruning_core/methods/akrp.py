"""AKRP: robust knowledge-retention pruning by cumulative-error reconstruction with adaptive rectification.

Paper: Li, Lan, Tao et al., "Towards Robust Pruning: An Adaptive Knowledge-Retention Pruning Strategy
for Language Models" (2023). Layer by layer and module by module (Q, K, V, attention output, FFN in,
FFN out), each module's target is the DENSE model's output Y while its input X is what the PRUNED
model produces so far, so every module also corrects the error accumulated before it:

1. rectify: w* = (X^T X + lambda * mean(diag X^T X) I)^-1 X^T (Y - b), lambda from `lambda0`,
   raised tenfold until the system is positive definite and the solution finite (adaptive rectification);
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

from pruning_core.errors import PrunescopeError
from pruning_core.methods.sparsegpt import SparseGPT

MAX_RAISES = 12  # lambda0 * 10^12 at most: beyond that the inputs carry no usable information


@dataclass(frozen=True)
class AKRPOptions:
    lambda0: float = 1e-4
    blocksize: int = 128
    percdamp: float = 0.01

    def check(self) -> None:
        if not self.lambda0 > 0:
            raise PrunescopeError(f"akrp needs lambda0 > 0; got {self.lambda0}")
        if self.blocksize < 1 or not 0 < self.percdamp < 1:
            raise PrunescopeError("akrp needs blocksize >= 1 and 0 < percdamp < 1")


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


class AKRP(SparseGPT):
    name = "akrp"
    paper = "Li et al. 2023, Towards Robust Pruning: An Adaptive Knowledge-Retention Pruning Strategy for LMs"
    Options = AKRPOptions
    sequential = True

    def prune_group(self, weights, gram, sparsity, pattern, options, context, targets=None):
        if targets is None:
            raise PrunescopeError("akrp needs the dense model's outputs as targets (run it through the engine)")
        rectified = {k: rectify(gram, targets[k], options.lambda0)[0].to(w.dtype) for k, w in weights.items()}
        return super().prune_group(rectified, gram, sparsity, pattern, options, context)
