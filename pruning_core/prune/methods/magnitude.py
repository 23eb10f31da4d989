"""Magnitude pruning: drop the weights of smallest |W|.

Paper: Han et al., "Learning both Weights and Connections for Efficient Neural Networks" (2015),
one-shot, without the retraining. Scope `layer` thresholds each matrix on its own; `global` uses
one threshold over all encoder linears (so per-module sparsity varies). The data are ignored
(`needs_statistics = False`): the engine collects no Gram matrices for it and measures the local
error on the pruned pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

import pruning_core.prune.masks as masks
from pruning_core.core.errors import PrunescopeError
from pruning_core.prune.methods.base import Method, knob


@dataclass(frozen=True)
class MagnitudeOptions:
    scope: str = knob("layer", "Threshold scope", "layer: each matrix loses its own smallest |w|; global: one "
                      "threshold over all encoder linears, so the sparsity varies per module (unstructured only)",
                      choices=("layer", "global"), widget="radio")


class Magnitude(Method):
    name = "magnitude"
    paper = "Han et al. 2015, Learning both Weights and Connections for Efficient Neural Networks"
    Options = MagnitudeOptions
    colour = "#4C78A8"
    needs_statistics = False

    def check_pattern(self, pattern, options) -> None:
        if pattern.is_nm and options.scope == "global":
            raise PrunescopeError("global magnitude applies to the unstructured pattern only")

    def prepare(self, weights, sparsity, pattern, options):
        if options.scope != "global":
            return None
        flat = torch.cat([w.abs().flatten().float().cpu() for w in weights])
        k = int(flat.numel() * sparsity)
        return float(torch.kthvalue(flat, k).values) if k > 0 else -1.0

    def prune_group(self, weights, gram, sparsity, pattern, options, context, targets=None):
        out = {}
        for kind, w in weights.items():
            if context is not None:  # global threshold
                keep = w.abs() > context
            else:
                keep = masks.select(w.abs(), sparsity, pattern)
            out[kind] = (w * keep, keep)
        return out
