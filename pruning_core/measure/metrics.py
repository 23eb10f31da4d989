"""Measures, named as in README's Measures section: achieved sparsity, local reconstruction error, cumulative error,
[CLS]-representation error, logits KL, accuracy."""

from __future__ import annotations

import torch


def achieved_sparsity(weight: torch.Tensor) -> float:
    """Fraction of exact zeros in a tensor."""
    return float((weight == 0).sum()) / weight.numel()


def local_error(w_dense: torch.Tensor, w_pruned: torch.Tensor, gram: torch.Tensor) -> float:
    """||W X - W' X||^2 / ||W X||^2 from the Gram matrix G = X^T X of the module's inputs.

    With D = W - W', ||D X||_F^2 = tr(D G D^T), so the inputs need not be kept.
    """
    w = w_dense.float()
    g = gram.float()
    d = w - w_pruned.float()
    num = ((d @ g) * d).double().sum()
    den = ((w @ g) * w).double().sum()
    return float(num / den) if den > 0 else 0.0


def relative_error(y_dense: torch.Tensor, y_pruned: torch.Tensor) -> float:
    """||Y_dense - Y_pruned||^2 / ||Y_dense||^2 (cumulative error, [CLS] error)."""
    num = (y_dense.double() - y_pruned.double()).pow(2).sum()
    den = y_dense.double().pow(2).sum()
    return float(num / den) if den > 0 else 0.0


def logits_kl(dense_logits: torch.Tensor, pruned_logits: torch.Tensor) -> float:
    """Mean over examples of KL(softmax(dense) || softmax(pruned))."""
    p = torch.log_softmax(dense_logits.double(), -1)
    q = torch.log_softmax(pruned_logits.double(), -1)
    return float((p.exp() * (p - q)).sum(-1).mean())


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float((logits.argmax(-1) == labels).double().mean()) if len(labels) else float("nan")
