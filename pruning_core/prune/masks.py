"""Mask utilities: sparsity patterns, keep-masks from scores, N:M checks.

A mask is a bool tensor shaped like the weight, True = weight kept. Masks are applied to the
weights directly (no `torch.nn.utils.prune` re-parametrisation, which re-masks on every forward).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from pruning_core.core.errors import PrunescopeError


@dataclass(frozen=True)
class Pattern:
    """`unstructured`, or N:M = at most N non-zeros in every M consecutive input weights of a row."""

    n: int = 0
    m: int = 0

    @property
    def is_nm(self) -> bool:
        return self.m > 0

    @property
    def sparsity(self) -> float | None:
        """The sparsity an N:M pattern implies (None for unstructured)."""
        return 1 - self.n / self.m if self.is_nm else None

    def __str__(self) -> str:
        return f"{self.n}:{self.m}" if self.is_nm else "unstructured"


PATTERNS = ("unstructured", "2:4", "4:8")


MAX_M = 64


def parse_pattern(text: str) -> Pattern:
    """'unstructured' or 'N:M' with 0 < N < M (2:4 and 4:8 are the hardware-friendly ones)."""
    if text == "unstructured":
        return Pattern()
    match = re.fullmatch(r"(\d+):(\d+)", str(text).strip())
    if match and max(len(match[1]), len(match[2])) > 6:
        raise PrunescopeError(f"pattern '{str(text)[:40]}' is out of range; N:M patterns take M from 2 to {MAX_M}")
    if not match or not 0 < int(match[1]) < int(match[2]):
        raise PrunescopeError(f"unknown pattern '{str(text)[:40]}'; use unstructured or N:M with 0 < N < M, "
                              "e.g. 2:4, 4:8")
    if int(match[2]) > MAX_M:
        raise PrunescopeError(f"pattern {match[1]}:{match[2]} has groups of {match[2]} weights; N:M patterns "
                              f"take M from 2 to {MAX_M} (2:4 and 4:8 are the ones hardware runs faster)")
    return Pattern(int(match[1]), int(match[2]))


def check_sparsity(sparsity: float, pattern: Pattern) -> None:
    """Raise a clear error when `sparsity` is out of range or the pattern cannot reach it."""
    if not isinstance(sparsity, (int, float)) or not 0 <= sparsity < 1:
        raise PrunescopeError(f"sparsity must be in [0, 1); got {sparsity}")
    if pattern.is_nm and abs(sparsity - pattern.sparsity) > 1e-9:
        raise PrunescopeError(
            f"pattern {pattern} gives sparsity {pattern.sparsity:g} exactly; got {sparsity:g}. "
            f"Use sparsity {pattern.sparsity:g} or the unstructured pattern")


def check_divisible(shape: tuple[int, int], pattern: Pattern, name: str) -> None:
    if pattern.is_nm and shape[1] % pattern.m:
        raise PrunescopeError(f"pattern {pattern} needs input dimensions divisible by {pattern.m}; "
                              f"{name} has {shape[1]}")


def keep_lowest_pruned(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Keep-mask that prunes exactly the k lowest scores of a flat tensor (ties broken by index)."""
    keep = torch.ones(scores.numel(), dtype=torch.bool, device=scores.device)
    if k > 0:
        keep[torch.topk(scores.flatten(), k, largest=False).indices] = False
    return keep.view_as(scores)


def unstructured_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Prune the lowest `sparsity` fraction of the whole matrix."""
    return keep_lowest_pruned(scores, round(scores.numel() * sparsity))


def row_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Prune the lowest `sparsity` fraction within every row (Wanda's per-output comparison group)."""
    k = round(scores.shape[1] * sparsity)
    keep = torch.ones_like(scores, dtype=torch.bool)
    if k > 0:
        keep.scatter_(1, torch.topk(scores, k, dim=1, largest=False).indices, False)
    return keep


def nm_mask(scores: torch.Tensor, pattern: Pattern) -> torch.Tensor:
    """In every group of M consecutive columns of a row, prune the M - N lowest scores."""
    rows, cols = scores.shape
    groups = scores.reshape(rows, cols // pattern.m, pattern.m)
    keep = torch.ones_like(groups, dtype=torch.bool)
    keep.scatter_(2, torch.topk(groups, pattern.m - pattern.n, dim=2, largest=False).indices, False)
    return keep.reshape(rows, cols)


def select(scores: torch.Tensor, sparsity: float, pattern: Pattern, per_row: bool = False) -> torch.Tensor:
    """Keep-mask for scores under a pattern: N:M groups, else per row or per matrix."""
    if pattern.is_nm:
        return nm_mask(scores, pattern)
    return row_mask(scores, sparsity) if per_row else unstructured_mask(scores, sparsity)


def is_nm(weight: torch.Tensor, pattern: Pattern) -> bool:
    """True when every group of M consecutive inputs of every row has at most N non-zeros."""
    rows, cols = weight.shape
    if cols % pattern.m:
        return False
    nonzero = (weight != 0).reshape(rows, cols // pattern.m, pattern.m).sum(-1)
    return bool((nonzero <= pattern.n).all())
