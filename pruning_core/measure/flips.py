"""The examples that flip (LIT-like): which test examples the dense model got right and the pruned model gets
wrong (lost), and the reverse (gained), with both models' confidences, the per-example KL(dense || pruned) and a
confusion matrix for each model.

Stored with a run as plain columns (`predictions` in the run's JSON), so the table redraws without recomputation.
"""

from __future__ import annotations

import torch

LOST, GAINED, SAME_RIGHT, SAME_WRONG = "lost", "gained", "right", "wrong"


def predictions(dense_logits: torch.Tensor, pruned_logits: torch.Tensor, labels, index=None) -> dict:
    """Per-example columns: `index` (the example's row in the test split), `label`, `dense_pred`, `dense_conf`
    (the dense model's probability of its prediction), `pruned_pred`, `pruned_conf`, `pruned_p_dense` (the pruned
    model's probability of the dense prediction) and `kl` (KL(dense || pruned) of that example, nats)."""
    labels_t = torch.as_tensor(list(labels))
    lp = torch.log_softmax(dense_logits.double(), -1)
    lq = torch.log_softmax(pruned_logits.double(), -1)
    p, q = lp.exp(), lq.exp()
    dense_pred, pruned_pred = p.argmax(-1), q.argmax(-1)
    rows = torch.arange(len(labels_t))
    kl = (p * (lp - lq)).sum(-1).clamp_min(0.0)
    return {
        "index": [int(i) for i in (index if index is not None else range(len(labels_t)))],
        "label": labels_t.tolist(),
        "dense_pred": dense_pred.tolist(),
        "dense_conf": [round(float(v), 5) for v in p[rows, dense_pred]],
        "pruned_pred": pruned_pred.tolist(),
        "pruned_conf": [round(float(v), 5) for v in q[rows, pruned_pred]],
        "pruned_p_dense": [round(float(v), 5) for v in q[rows, dense_pred]],
        "kl": [float(f"{float(v):.5g}") for v in kl],
    }


def outcome(label: int, dense_pred: int, pruned_pred: int) -> str:
    """lost (dense right, pruned wrong), gained (the reverse), right (both right) or wrong (both wrong)."""
    d, q = dense_pred == label, pruned_pred == label
    return LOST if d and not q else GAINED if q and not d else SAME_RIGHT if d else SAME_WRONG


def outcomes(pred: dict) -> list[str]:
    return [outcome(*t) for t in zip(pred["label"], pred["dense_pred"], pred["pruned_pred"])]


def confusion(labels, preds, n_classes: int) -> list[list[int]]:
    """counts[true][predicted]."""
    m = [[0] * n_classes for _ in range(n_classes)]
    for t, p in zip(labels, preds):
        m[int(t)][int(p)] += 1
    return m


def summary(pred: dict, n_classes: int) -> dict:
    """Counts of lost/gained/right/wrong, the two confusion matrices, and the mean KL."""
    kinds = outcomes(pred)
    n = len(kinds)
    return {
        "n": n,
        **{k: kinds.count(k) for k in (LOST, GAINED, SAME_RIGHT, SAME_WRONG)},
        "dense_confusion": confusion(pred["label"], pred["dense_pred"], n_classes),
        "pruned_confusion": confusion(pred["label"], pred["pruned_pred"], n_classes),
        "mean_kl": sum(pred["kl"]) / n if n else float("nan"),
    }
