"""Wanda: prune by |W_ij| * ||X_j||_2, compared within each output row; no weight update.

Paper: Sun et al., "A Simple and Effective Pruning Approach for Large Language Models" (ICLR 2024).
||X_j||_2 is the norm of input feature j over the real (non-pad) calibration tokens, read off the
diagonal of the Gram matrix X^T X. Deviation: none in the criterion; for N:M the comparison group
is each M consecutive inputs of a row, as in the paper.
"""

from __future__ import annotations

import pruning_core.prune.masks as masks
from pruning_core.prune.methods.base import Method


def wanda_scores(weight, gram):
    """S_ij = |W_ij| * ||X_j||_2."""
    return weight.abs() * gram.diagonal().clamp_min(0).sqrt().unsqueeze(0)


class Wanda(Method):
    name = "wanda"
    paper = "Sun et al. 2024, A Simple and Effective Pruning Approach for Large Language Models"
    colour = "#F58518"

    def prune_group(self, weights, gram, sparsity, pattern, options, context, targets=None):
        out = {}
        for kind, w in weights.items():
            keep = masks.select(wanda_scores(w, gram), sparsity, pattern, per_row=True)
            out[kind] = (w * keep, keep)
        return out
