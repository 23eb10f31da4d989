"""Evaluation: logits, accuracy, and feature-space distances to the dense model.

Robustness under TextAttack attacks lives in its own module (a later issue); the measures here use
README's Measures names: clean accuracy, [CLS]-representation error, KL(dense || pruned) logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

import pruning_core.measure.metrics as metrics
from pruning_core.model.arch import arch_of
from pruning_core.data.calibration import length_sorted_batches


@torch.no_grad()
def predict(model, tokenizer, texts: Sequence[str], max_length: int = 128, device=None,
            batch_size: int = 64, with_pooled: bool = False):
    """Logits for `texts` (and the pooled [CLS] representation when `with_pooled`), in input order.

    Texts are sorted by length and padded per batch, so little compute is spent on pads.
    """
    device = device or next(model.parameters()).device
    arch = arch_of(model)
    logits = [None] * len(texts)
    pooled = [None] * len(texts)
    for idx, ids, mask in length_sorted_batches(tokenizer, texts, max_length, batch_size):
        out = model(input_ids=ids.to(device), attention_mask=mask.long().to(device),
                    output_hidden_states=with_pooled)
        p = arch.pooled(model, out.hidden_states[-1]) if with_pooled else None
        for j, i in enumerate(idx):
            logits[i] = out.logits[j].float().cpu()
            if with_pooled:
                pooled[i] = p[j].float().cpu()
    logits_t = torch.stack(logits) if logits else torch.empty(0)
    if with_pooled:
        return logits_t, torch.stack(pooled)
    return logits_t


@dataclass(frozen=True)
class Evaluation:
    """Clean accuracy of a model on a split, and its distance to the dense model's outputs."""

    accuracy: float
    n: int
    kl_to_dense: float | None = None
    cls_error: float | None = None


def evaluate(model, tokenizer, texts, labels, max_length: int = 128, dense: tuple | None = None,
             batch_size: int = 64) -> tuple[Evaluation, tuple[torch.Tensor, torch.Tensor]]:
    """Accuracy on (texts, labels); with `dense` = (logits, pooled) of the dense model, also the
    logits KL and [CLS] error. Returns the evaluation and this model's (logits, pooled)."""
    logits, pooled = predict(model, tokenizer, texts, max_length, batch_size=batch_size, with_pooled=True)
    acc = metrics.accuracy(logits, torch.tensor(labels))
    kl = cls = None
    if dense is not None:
        kl = metrics.logits_kl(dense[0], logits)
        cls = metrics.relative_error(dense[1], pooled)
    return Evaluation(acc, len(labels), kl, cls), (logits, pooled)
