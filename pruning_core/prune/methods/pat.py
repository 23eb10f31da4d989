"""PAT: pruning-aware tuning of hidden channels, adapted to post-LayerNorm BERT encoders.

Liu, Yang, Chen, Zhang, Wang, Du, Du. "PAT: Pruning-Aware Tuning for Large Language Models",
AAAI 2025 (arXiv 2408.14721).

The hidden width d of the model is pruned while the model is fine-tuned on the task:

- Hybrid Sparsification Modules (HSM) ``x -> scale * m * (x + B A x)`` (A: d -> r with orthonormal
  rows at the start, B: r -> d zero-initialised, ``scale`` a trainable per-channel vector starting at 1)
  on every sub-layer output that writes into the residual stream: the embedding sum (before its
  LayerNorm), the attention output projection and the FFN output projection of every layer;
- one trainable channel mask m (a real value per channel, starting at 1) shared by all HSMs and by
  every LayerNorm output (BERT is post-LayerNorm: the residual stream is the LayerNorm output, so the
  mask multiplies it too; at a 0/1 mask a removed channel is exactly zero at every LayerNorm input and
  output, which is what ``structured.units.masked`` computes and ``shrink.remove`` reproduces);
- LoRA (rank ``lora_rank``, scaling ``lora_alpha / lora_rank``, B zero-initialised) on Q, K, V, the
  attention output, FFN in and out of every layer and the pooler; every original weight is frozen;
- loss = cross-entropy on the task's labelled training split + ``identity_weight`` * the mean over
  HSMs of ||A A^T - I_r||_F^2 (the identity loss keeps A a rotation, leaving scaling to ``scale``/m).

Mask schedule (T = ``steps``, K = round(budget * d) channels to remove; t counts optimiser steps
from 0; the schedule runs after the optimiser step of step t; m is kept >= 0 after every step):
1. t < t0 = round(prune_start * T): m trains freely with the rest (its value is the channel's learned
   importance);
2. t0 <= t < t_s = t1 - D (t1 = round(prune_end * T), D = round(decay * T) >= 1): the number of selected
   channels grows linearly, k(t) = ceil(K (t - t0 + 1) / (t_s - t0)), reaching K at t = t_s - 1; the
   newly selected channels are the unselected ones with the lowest mask values (a selection is never
   undone);
3. a channel selected at step s with value v gets the ceiling v * max(0, 1 - (t - s + 1) / D) on its
   mask value at every step t >= s: it falls linearly to exactly 0 in D steps (gradients may lower it
   further, never raise it above the ceiling);
4. after step t1 - 1 the mask is frozen at exactly 0 (the K selected channels) and 1 (the others): the
   kept channels' values are first folded into every HSM scale and every LayerNorm's weight and bias,
   so the function does not change at the freeze; steps t1..T-1 tune LoRA and HSMs with the hard mask.
Defaults: prune_start 0.1, decay 0.1, prune_end 0.7 (select over 10-60% of training, frozen at 70%).

Finally LoRA is merged (W += B_l A_l alpha/r), then every HSM: after a linear W x + b it becomes
W' = diag(scale * m) (I + B A) W, b' = diag(scale * m) (I + B A) b; after the embeddings each table's rows
e become diag(scale * m) (I + B A) e. The model so obtained, under ``masked(model, hidden=m)``, computes
exactly what the tuned model computed; ``shrink.remove`` slices the kept channels out.

Baseline (``baseline=True``, prune-then-LoRA): the K channels with the lowest mean |LayerNorm output|
(summed over all LayerNorms, real tokens of up to 512 training texts) are removed once, before
training; the 0/1 mask is fixed; only LoRA trains (same steps, batch, lr; no HSM, no identity loss);
same merge and slicing.

The adapters (LoRA, HSMs, the shared mask) are in `pat_adapters`; the schedule, the training texts and the
tuning loop in `pat_train`.

Deviations from the paper: PAT targets pre-norm decoder LLMs and places HSMs between attention and FFN
(after the RMSNorm-ed residual); here they sit on the sub-layer outputs and the mask also multiplies
every LayerNorm output (post-LN encoder). The paper's HSM operator is a "Hybrid-Identity-Operator";
here it is I + B A with a trainable per-channel scale. The mask schedule above (linear selection by
lowest learned mask value, linear ceiling decay, freeze) is ours; the paper's exact decay constants
for LLM instruction tuning do not transfer to a small classifier. Training uses a seeded sample of
``train_size`` labelled training texts truncated to the calibration sequence length, AdamW with weight
decay 0, constant learning rates, dropout off (the model stays in eval mode); the classifier layer is
frozen (the dense model is already a fine-tuned classifier).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from pruning_core.core.errors import PrunescopeError
from pruning_core.prune.methods.base import StructuredMethod, knob
from pruning_core.prune.methods.pat_adapters import Adapters
from pruning_core.prune.methods.pat_train import Schedule, activation_importance, train, training_data
from pruning_core.prune.structured.structure import Structure


LEARNED_MASK = {"baseline": False}  # the baseline has no learned mask or sparsification modules


@dataclass(frozen=True)
class PATOptions:
    baseline: bool = knob(False, "Baseline: prune, then LoRA",  # fixed mask by activation magnitude, LoRA only
                          "instead of PAT: remove the channels with the lowest mean |LayerNorm output| once, before "
                          "training, then train LoRA only (no sparsification modules, no learned mask)")
    steps: int = knob(300, "Training steps",
                      "optimiser steps on the task's labelled training texts; the mask is annealed to 0/1 during "
                      "the first 70% and frozen for the rest", ge=10, ui_max=100_000)
    lr: float = knob(1e-3, "Learning rate", "AdamW learning rate of LoRA and the sparsification modules (weight "
                     "decay 0)", gt=0, lt=1, ui_min=1e-7, ui_max=0.99, step=1e-4, format="%.1e")
    lora_rank: int = knob(8, "LoRA rank", "rank of the low-rank update on Q, K, V, attention output, FFN in/out "
                          "and pooler", ge=1, ui_max=384)
    batch_size: int = knob(16, "Batch size", ge=1, ui_max=4096, more=True)
    train_size: int = knob(2000, "Training texts", "a seeded sample of the task's training split", ge=1, more=True)
    lora_alpha: float = knob(16.0, "LoRA α", "LoRA scaling α / rank", gt=0, ui_min=1e-3, ui_max=1e4, more=True)
    mask_lr: float = knob(1e-2, "Mask learning rate", gt=0, lt=1, ui_min=1e-7, ui_max=0.99, step=1e-3,
                          format="%.1e", more=True, shown_when=LEARNED_MASK)
    hsm_rank: int = knob(8, "Sparsification-module rank", "rank r of x → scale · m · (x + B A x)", ge=1,
                         ui_max=384, more=True, shown_when=LEARNED_MASK)
    identity_weight: float = knob(1.0, "Identity-loss weight", "weight of ||A Aᵀ − I||² in the loss", ge=0,
                                  ui_max=1e4, more=True, shown_when=LEARNED_MASK)
    prune_start: float = knob(0.1, "Selection starts at (fraction of steps)", "steps before channels are selected",
                              ge=0, ui_max=1.0, more=True, shown_when=LEARNED_MASK)
    decay: float = knob(0.1, "Mask decay (fraction of steps)",
                        "a selected channel's mask falls linearly to 0 in this long", gt=0, ui_min=0.001,
                        ui_max=1.0, more=True, shown_when=LEARNED_MASK)
    prune_end: float = knob(0.7, "Mask frozen at (fraction of steps)", "the mask is frozen at 0/1 after this",
                            gt=0, le=1, ui_min=0.01, more=True, shown_when=LEARNED_MASK)

    def check(self) -> None:
        """The schedule's order, which one field's bounds cannot say."""
        if not self.prune_start + self.decay < self.prune_end:
            raise PrunescopeError(f"pat needs prune_start + decay < prune_end; got {self.prune_start:g} + "
                                  f"{self.decay:g} >= {self.prune_end:g}")


class PAT(StructuredMethod):
    name = "pat"
    paper = "Liu et al., PAT: Pruning-Aware Tuning for Large Language Models (AAAI 2025)"
    Options = PATOptions
    colour = "#843C39"
    removes = "hidden channels"

    def note(self, options) -> str:
        return (("Prune-then-LoRA baseline" if options.baseline else "PAT") + f": {options.steps} training steps "
                f"of batch {options.batch_size}, a forward and backward pass each: much slower than the one-shot "
                "methods (kwon takes seconds; 300 steps take minutes on a CPU).")
    budget_meaning = "fraction of hidden channels removed"
    # Hidden channels are sliced out physically into a PrunedBertForSequenceClassification: BERT only.
    families = ("bert",)

    def prune_structured(self, ctx):
        model, opts = ctx.model, ctx.options
        d = model.config.hidden_size
        n_remove = round(ctx.budget * d)
        if n_remove >= d:
            raise PrunescopeError(f"pat cannot remove all {d} hidden channels; lower the sparsity")
        ids, labels = training_data(ctx, opts)
        t0 = time.perf_counter()
        log: list[dict] = []
        if opts.baseline:
            score = activation_importance(model, ctx.tokenizer, ids, ctx.device)
            adapters = Adapters(model, opts.lora_rank, opts.lora_alpha, opts.hsm_rank, ctx.seed, hsm=False,
                                train_mask=False)
            with torch.no_grad():
                adapters.mask[torch.argsort(score, stable=True)[:n_remove]] = 0
            schedule = None
        else:
            adapters = Adapters(model, opts.lora_rank, opts.lora_alpha, opts.hsm_rank, ctx.seed)
            schedule = Schedule.of(opts)
        try:
            train(ctx, adapters, ids, labels, opts, n_remove, schedule, log)
        except BaseException:
            adapters.detach()
            raise
        adapters.merge()
        hidden = adapters.mask.detach() != 0
        if int((~hidden).sum()) != n_remove or not ((adapters.mask == 0) | (adapters.mask == 1)).all():
            raise RuntimeError(f"pat ended with {int((~hidden).sum())} channels removed, not {n_remove}")
        log.append({"train_seconds": time.perf_counter() - t0, "train_examples": len(ids),
                    "removed_channels": n_remove, "baseline": opts.baseline})
        return Structure.full(model.config).replace(hidden=hidden), log
