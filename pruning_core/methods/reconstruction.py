"""Reconstruction: choose masks with a base method, then fit the unmasked weights to a target.

Paper: Shin et al., "Rethinking Pruning Large Language Models: Benefits and Pitfalls of Reconstruction
Error Minimization" (EMNLP 2024). After the masks of a block are chosen by `base` (magnitude, wanda or
sparsegpt, which also applies SparseGPT's own weight update), the block's linear weights (under the
fixed mask) and biases are trained with AdamW to minimise the MSE of the block output over real tokens:

- `lr`  layer-wise: no training; the base method's own result (SparseGPT's OBS update is LR);
- `br`  block-wise: target = the dense block applied to the pruned model's inputs of that block;
- `gp`  global propagation: target = the dense model's output of that block (dense inputs), so the
        error accumulated upstream is corrected too;
- `cr`  cross-block: adjacent blocks (0-1, 2-3, ...) chosen one after the other, then trained jointly
        towards the dense model's output of the pair's second block.

`self_generated` > 0 adds that many texts generated from the model itself (`pruning_core.selfgen`) to
the set the weights are trained on (never to the mask choice). The engine also reports every block's
error on a held-out set of the same size, which shows when minimising calibration error overfits.

The per-module local error in the engine's records is measured when the masks are chosen (the base
method's weights, before training); block-level cumulative and held-out errors are measured after it.

Deviations: CR windows do not overlap (the paper slides them); AdamW with weight decay 0 (decay would
pull weights away from the reconstruction target); LayerNorm parameters stay frozen; one pass over the
calibration micro-batches (up to 32 texts each) per epoch in a seeded order.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pruning_core.errors import PrunescopeError
from pruning_core.methods.base import Method

BASES = ("magnitude", "wanda", "sparsegpt")
MODES = ("lr", "br", "gp", "cr")


@dataclass(frozen=True)
class ReconstructionOptions:
    base: str = "sparsegpt"
    mode: str = "br"
    epochs: int = 10
    lr: float = 2e-4
    self_generated: int = 0

    def check(self) -> None:
        if self.base not in BASES:
            raise PrunescopeError(f"reconstruction base must be one of {', '.join(BASES)}; got '{self.base}'")
        if self.mode not in MODES:
            raise PrunescopeError(f"reconstruction mode must be one of {', '.join(MODES)}; got '{self.mode}'")
        if self.epochs < 1 or not 0 < self.lr < 1 or self.self_generated < 0:
            raise PrunescopeError("reconstruction needs epochs >= 1, 0 < lr < 1 and self_generated >= 0")


def _base(options):
    from pruning_core import methods

    meth = methods.get(options.base)
    return meth, meth.options({})


class Reconstruction(Method):
    name = "reconstruction"
    paper = "Shin et al. 2024, Rethinking Pruning LLMs: Benefits and Pitfalls of Reconstruction Error Minimization"
    Options = ReconstructionOptions

    def check_pattern(self, pattern, options) -> None:
        meth, opts = _base(options)
        meth.check_pattern(pattern, opts)

    def prepare(self, weights, sparsity, pattern, options):
        meth, opts = _base(options)
        return meth.prepare(weights, sparsity, pattern, opts)

    def prune_group(self, weights, gram, sparsity, pattern, options, context, targets=None):
        meth, opts = _base(options)
        return meth.prune_group(weights, gram, sparsity, pattern, opts, context)

    def window(self, options) -> int:
        return 2 if options.mode == "cr" else 1

    def refine_target(self, options) -> str | None:
        return {"lr": None, "br": "block"}.get(options.mode, "global")

    def refine(self, arch, blocks, linears_and_masks, inputs, targets, attn, keeps, options) -> list[float]:
        return train_blocks(arch, blocks, linears_and_masks, inputs, targets, attn, keeps, options.epochs,
                            options.lr)


def train_blocks(arch, blocks, linears_and_masks, inputs, targets, attn, keeps, epochs: int, lr: float,
                 seed: int = 0) -> list[float]:
    """AdamW on the masked linear weights and biases of `blocks` (run in order) so that their output
    on `inputs[b]` matches `targets[b]` over real tokens; the masks are re-applied after every step.
    Returns the mean MSE per epoch (the loss before each step, averaged over the epoch)."""
    pairs = [pair for lm in linears_and_masks for pair in lm.values()]
    params = [lin.weight for lin, _ in pairs] + [lin.bias for lin, _ in pairs if lin.bias is not None]
    frozen = [p for blk in blocks for p in blk.parameters() if all(p is not q for q in params)]
    saved = [(p, p.requires_grad) for p in frozen + params]
    for p in frozen:
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    losses = []
    try:
        for _ in range(epochs):
            total, count = 0.0, 0
            for b in torch.randperm(len(inputs), generator=gen).tolist():
                h = inputs[b].detach()
                for blk in blocks:
                    h = arch.run_block(blk, h, attn[b])
                keep = keeps[b]
                loss = torch.nn.functional.mse_loss(h[keep], targets[b][keep].detach())
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                with torch.no_grad():
                    for lin, mask in pairs:
                        lin.weight.mul_(mask)
                n = int(keep.sum())
                total, count = total + float(loss.detach()) * n, count + n
            losses.append(total / max(count, 1))
    finally:
        for p, flag in saved:
            p.requires_grad_(flag)
            p.grad = None
    return losses
