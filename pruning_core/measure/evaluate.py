"""Evaluation: logits, accuracy, and feature-space distances to the dense model.

Robustness under TextAttack attacks lives in its own module (a later issue); the measures here use
README's Measures names: clean accuracy, [CLS]-representation error, KL(dense || pruned) logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

import pruning_core.measure.metrics as metrics
from pruning_core.model.arch import arch_of
from pruning_core.data.calibration import length_sorted_batches


@torch.no_grad()
def predict(model, tokenizer, texts: Sequence[str], max_length: int = 128, device=None,
            batch_size: int = 64, with_pooled: bool = False, first: tuple[float, int] | None = None,
            on_first: Callable[[list[int], torch.Tensor], None] | None = None):
    """Logits for `texts` (and the pooled [CLS] representation when `with_pooled`), in input order.

    Texts are sorted by length and padded per batch, so little compute is spent on pads. With `first` =
    (fraction, seed) and `on_first`, a seeded random share of the batches runs first and `on_first(positions,
    logits)` gets their examples' logits before the rest run; every batch is the same as without it, so
    the results are identical (only the order of the batches changes).
    """
    device = device or next(model.parameters()).device
    arch = arch_of(model)
    logits = [None] * len(texts)
    pooled = [None] * len(texts)
    batches = length_sorted_batches(tokenizer, texts, max_length, batch_size)
    early: set[int] = set()
    if first is not None and on_first is not None and len(batches) > 1:
        fraction, seed = first
        k = min(len(batches) - 1, max(1, round(fraction * len(batches))))
        gen = torch.Generator().manual_seed(int(seed))
        early = set(torch.randperm(len(batches), generator=gen)[:k].tolist())
        batches = [b for i, b in enumerate(batches) if i in early] + \
                  [b for i, b in enumerate(batches) if i not in early]
    for n, (idx, ids, mask) in enumerate(batches):
        if early and n == len(early):
            done = [i for i in range(len(texts)) if logits[i] is not None]
            on_first(done, torch.stack([logits[i] for i in done]))
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
             batch_size: int = 64, first: tuple[float, int] | None = None,
             on_first: Callable[[float, int, int], None] | None = None
             ) -> tuple[Evaluation, tuple[torch.Tensor, torch.Tensor]]:
    """Accuracy on (texts, labels); with `dense` = (logits, pooled) of the dense model, also the
    logits KL and [CLS] error. Returns the evaluation and this model's (logits, pooled).

    With `first` = (fraction, seed), `on_first(accuracy, examples, total)` hears the accuracy on a seeded
    random share of the batches (length-sorted batches: a sample spread over text lengths) before the rest
    is evaluated; the final numbers are the same as without it."""
    def heard(done: list[int], part: torch.Tensor) -> None:
        on_first(metrics.accuracy(part, torch.tensor([labels[i] for i in done])), len(done), len(labels))

    logits, pooled = predict(model, tokenizer, texts, max_length, batch_size=batch_size, with_pooled=True,
                             first=first, on_first=heard if on_first else None)
    acc = metrics.accuracy(logits, torch.tensor(labels))
    kl = cls = None
    if dense is not None:
        kl = metrics.logits_kl(dense[0], logits)
        cls = metrics.relative_error(dense[1], pooled)
    return Evaluation(acc, len(labels), kl, cls), (logits, pooled)
