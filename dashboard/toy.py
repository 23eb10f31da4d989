"""Teaching toys: tiny problems on which the real pruning methods can be watched at work.

Pure functions (no streamlit): a weight matrix with inputs that carry a few outlier features (as real
transformer activations do), the three methods run on it through their registered classes, and a small
stack of layers that shows the cumulative error growing with depth.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from pruning_core.prune import masks
from pruning_core.prune import methods
from pruning_core.measure import metrics
from pruning_core.core.errors import PrunescopeError

TOY_METHODS = ("magnitude", "wanda", "sparsegpt")


def _inputs(tokens: int, cols: int, gen: torch.Generator, outliers: bool) -> torch.Tensor:
    """Correlated inputs (tokens x cols); with `outliers`, a few features have a much larger scale."""
    base = torch.randn(tokens, cols, generator=gen)
    # a shared rank-4 component correlates the features: what SparseGPT's weight update exploits
    x = base + torch.randn(tokens, 4, generator=gen) @ torch.randn(4, cols, generator=gen)
    scale = torch.exp(0.3 * torch.randn(cols, generator=gen))
    if outliers:
        n_out = max(1, cols // 16)
        idx = torch.randperm(cols, generator=gen)[:n_out]
        scale[idx] *= 12.0
    return (x * scale).float()


def toy_problem(rows: int = 16, cols: int = 32, tokens: int = 256, seed: int = 0,
                outliers: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """A small weight matrix W (rows x cols) and inputs X (tokens x cols), both float32.

    With `outliers`, cols // 16 input features are about 12x larger than the others, so a small weight
    on them matters more than a large weight elsewhere: magnitude, Wanda and SparseGPT disagree."""
    if rows < 1 or cols < 1 or tokens < 1:
        raise PrunescopeError(f"toy_problem needs positive sizes; got rows={rows}, cols={cols}, tokens={tokens}")
    gen = torch.Generator().manual_seed(seed)
    w = (torch.randn(rows, cols, generator=gen) / math.sqrt(cols)).float()
    x = _inputs(tokens, cols, gen, outliers)
    return w, x


def _check(sparsity: float | None, pattern: masks.Pattern, shape: tuple[int, int]) -> float:
    """The sparsity to use: an N:M pattern's own when `sparsity` is None; validated either way."""
    if sparsity is None:
        if not pattern.is_nm:
            raise PrunescopeError("the unstructured pattern needs a sparsity in [0, 1)")
        sparsity = pattern.sparsity
    masks.check_sparsity(sparsity, pattern)
    masks.check_divisible(shape, pattern, "the toy weight")
    return float(sparsity)


def prune_one(name: str, w: torch.Tensor, gram: torch.Tensor, sparsity: float, pattern: masks.Pattern,
              context: Any = None, options: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Prune one matrix with the registered method `name`; returns (pruned weight, keep-mask)."""
    method = methods.get(name)
    opts = method.options({}) if options is None else options
    if context is None:
        context = method.prepare([w], sparsity, pattern, opts)
    w_new, keep = method.prune_group({"w": w}, gram, sparsity, pattern, opts, context)["w"]
    return w_new, keep


def compare_methods(w: torch.Tensor, x: torch.Tensor, sparsity: float | None,
                    pattern: str = "unstructured",
                    names: tuple[str, ...] = TOY_METHODS) -> dict[str, dict[str, Any]]:
    """Prune W with each method, given inputs X (tokens x cols).

    Returns {method: {"mask": keep-mask (True = kept), "weight": pruned weight, "output_error":
    ||W X^T - W' X^T||² / ||W X^T||², "sparsity": achieved sparsity}}. For an N:M pattern, `sparsity`
    may be None (the pattern fixes it)."""
    if w.dim() != 2 or x.dim() != 2 or x.shape[1] != w.shape[1]:
        raise PrunescopeError(f"need W (rows x cols) and X (tokens x cols); got {tuple(w.shape)} and {tuple(x.shape)}")
    pat = masks.parse_pattern(pattern)
    sparsity = _check(sparsity, pat, tuple(w.shape))
    w = w.float()
    x = x.float()
    gram = x.T @ x
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        w_new, keep = prune_one(name, w, gram, sparsity, pat)
        out[name] = {"mask": keep.bool(), "weight": w_new,
                     "output_error": metrics.local_error(w, w_new, gram),
                     "sparsity": metrics.achieved_sparsity(w_new)}
    return out


def pattern_examples(w: torch.Tensor, sparsity: float = 0.5) -> dict[str, torch.Tensor]:
    """Keep-masks of W under three patterns, all by |W|: unstructured and 2:4 through the magnitude
    method, and structured (whole output rows removed, lowest row norms first) for comparison."""
    pat_u = masks.parse_pattern("unstructured")
    sparsity = _check(sparsity, pat_u, tuple(w.shape))
    gram = torch.eye(w.shape[1])  # magnitude ignores the data
    _, unstructured = prune_one("magnitude", w, gram, sparsity, pat_u)
    pat_nm = masks.parse_pattern("2:4")
    _, nm = prune_one("magnitude", w, gram, _check(None, pat_nm, tuple(w.shape)), pat_nm)
    n_rows = round(w.shape[0] * sparsity)
    keep_rows = masks.keep_lowest_pruned(w.float().norm(dim=1), n_rows)
    structured = keep_rows.unsqueeze(1).expand_as(w).clone()
    return {"unstructured": unstructured, "2:4": nm, "structured (rows)": structured}


def _stack(depth: int, width: int, seed: int) -> list[torch.Tensor]:
    """Random weights of a residual stack h -> h + tanh(W h), scaled to keep activations stable."""
    gen = torch.Generator().manual_seed(seed + 1)
    return [(torch.randn(width, width, generator=gen) * (1.5 / math.sqrt(width))).float() for _ in range(depth)]


def _layer(h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return h + torch.tanh(h @ w.T)


def depth_accumulation(depth: int = 8, width: int = 32, tokens: int = 128, sparsity: float = 0.5,
                       method: str = "magnitude", seed: int = 0, pattern: str = "unstructured") -> list[float]:
    """Cumulative error ||Y_dense - Y_pruned||² / ||Y_dense||² at the input and after each layer of a
    residual stack of `depth` linear+tanh layers, pruned layer by layer with `method`.

    As in the engine, each layer is pruned with the Gram matrix of the inputs that reach it in the
    PRUNED stack, while a dense copy runs alongside. Returns depth + 1 floats, the first 0.0."""
    if depth < 1 or width < 1 or tokens < 1:
        raise PrunescopeError(f"depth_accumulation needs positive sizes; got depth={depth}, width={width}, "
                              f"tokens={tokens}")
    pat = masks.parse_pattern(pattern)
    sparsity = _check(sparsity, pat, (width, width))
    weights = _stack(depth, width, seed)
    meth = methods.get(method)
    opts = meth.options({})
    context = meth.prepare(weights, sparsity, pat, opts)
    x = _inputs(tokens, width, torch.Generator().manual_seed(seed), outliers=True)
    x = x / x.std()
    dense = pruned = x
    curve = [0.0]
    for w in weights:
        gram = pruned.T @ pruned
        w_new, _ = prune_one(method, w, gram, sparsity, pat, context=context, options=opts)
        dense = _layer(dense, w)
        pruned = _layer(pruned, w_new)
        curve.append(metrics.relative_error(dense, pruned))
    return curve
