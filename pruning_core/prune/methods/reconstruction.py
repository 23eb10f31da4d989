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

`self_generated` > 0 adds that many texts generated from the model itself (`pruning_core.data.selfgen`) to
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

from pruning_core.prune.methods.base import Method, knob

BASES = ("magnitude", "wanda", "sparsegpt")
MODES = ("lr", "br", "gp", "cr")
MODE_HELP = {"lr": "LR, layer-wise: no training; the base method's own result (SparseGPT's update is LR)",
             "br": "BR, block-wise: train each block towards the dense block applied to the pruned inputs",
             "gp": "GP, global propagation: train towards the dense model's block output (dense inputs), so "
                   "upstream error is corrected too",
             "cr": "CR, cross-block: pairs of adjacent blocks trained jointly towards the dense output of the pair"}
TRAINING = {"mode": ("br", "gp", "cr")}  # LR trains nothing: its training knobs keep their defaults


@dataclass(frozen=True)
class ReconstructionOptions:
    base: str = knob("sparsegpt", "Mask chosen by",
                     "the base method picks every block's mask (sparsegpt also applies its own update); training "
                     "then only changes the kept weights", choices=BASES, widget="selectbox")
    mode: str = knob("br", "Reconstruction target", "  \n".join(MODE_HELP[m] for m in MODES),
                     choices={m: m.upper() for m in MODES}, widget="radio")
    epochs: int = knob(10, "Epochs", "AdamW passes over the calibration set per block (or pair of blocks)",
                       ge=1, ui_max=1000, shown_when=TRAINING)
    lr: float = knob(2e-4, "Learning rate", "AdamW learning rate (weight decay 0); masks stay fixed",
                     gt=0, lt=1, ui_min=1e-7, ui_max=0.99, step=1e-5, format="%.1e", shown_when=TRAINING)
    self_generated: int = knob(0, "Self-generated texts",
                               "texts generated from the model itself (resampled from the calibration texts), added "
                               "to the set the weights are trained on; never to the mask choice",
                               ge=0, ui_max=4096, shown_when=TRAINING)


def _base(options):
    import pruning_core.prune.methods as methods

    meth = methods.get(options.base)
    return meth, meth.options({})


class Reconstruction(Method):
    name = "reconstruction"
    paper = "Shin et al. 2024, Rethinking Pruning LLMs: Benefits and Pitfalls of Reconstruction Error Minimization"
    Options = ReconstructionOptions
    colour = "#E45756"

    def note(self, options) -> str:
        if options.mode == "lr":
            return MODE_HELP["lr"] + "."
        return (f"{MODE_HELP[options.mode]}. Trains for {options.epochs} epoch{'s' * (options.epochs != 1)} per "
                "block: slower than the one-shot methods (10 epochs at 128 calibration texts: about a minute on "
                "a CPU).")

    def extra_calibration_texts(self, options) -> int:
        return options.self_generated

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
