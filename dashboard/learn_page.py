"""Learn page: what pruning does, on toys small enough to see every weight (computed by dashboard.toy)."""

from __future__ import annotations

from typing import Any

import streamlit as st
import torch

from pruning_core import PrunescopeError
from dashboard import toy
from pruning_core.prune.masks import PATTERNS, parse_pattern

from dashboard import charts

SEED = 0


@st.cache_data(show_spinner=False, max_entries=64)
def toy_data(seed: int = SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """The toy weight matrix W and its inputs X."""
    return toy.toy_problem(seed=seed)


@st.cache_data(show_spinner=False, max_entries=64)
def toy_compare(sparsity: float | None, pattern: str, seed: int = SEED) -> dict[str, dict[str, Any]]:
    """The three methods on the toy problem."""
    w, x = toy_data(seed)
    return toy.compare_methods(w, x, sparsity, pattern)


@st.cache_data(show_spinner=False, max_entries=64)
def toy_depth(sparsity: float, seed: int = SEED) -> dict[str, list[float]]:
    """Cumulative error across the toy stack, per method."""
    return {m: toy.depth_accumulation(sparsity=sparsity, method=m, seed=seed) for m in toy.TOY_METHODS}


st.title("Learn: what pruning does")
st.markdown(
    "Pruning sets most of a model's weights to zero and hopes the model barely notices. The methods "
    "differ in **which** weights they remove and in whether they **repair** the ones they keep. "
    "Everything below runs the real methods of this library on toy matrices small enough to see "
    "every weight.")

# ---- 1. a mask ---------------------------------------------------------------------------------------
st.header("1. What a mask is")
st.markdown(
    "A **mask** is a grid of yes/no values, one per weight: *kept* (dark) or *pruned* (light, the weight "
    "becomes exactly 0). Here a 16×32 toy weight matrix is pruned to 50% by **magnitude**: it keeps the "
    "weights with the largest |w|. Rows are outputs, columns are inputs. The histogram shows what that "
    "does to the weights: the small ones are gone, the large ones are untouched.")
try:
    w, x = toy_data()
    examples = toy.pattern_examples(w, 0.5)
    left, right = st.columns(2)
    mask = examples["unstructured"]
    left.plotly_chart(charts.mask_zoom(mask, 0, 0, rows=w.shape[0], cols=w.shape[1], title="Magnitude, 50%"),
                      key="learn_mask")
    right.plotly_chart(charts.weight_histogram(w, w * mask), key="learn_hist")
except PrunescopeError as exc:
    examples = None
    st.error(str(exc))

# ---- 2. patterns -------------------------------------------------------------------------------------
st.header("2. Unstructured, N:M and structured")
st.markdown(
    "- **Unstructured**: any weight may go. The most freedom, so the least damage, but the matrix keeps "
    "its shape: it only gets faster with special sparse kernels at high sparsity.\n"
    "- **N:M** (2:4, 4:8): in every group of M consecutive inputs of a row, keep at most N. Less freedom "
    "(each group must lose exactly half here), but recent GPUs (sparse tensor cores) run 2:4 matrices "
    "up to about twice as fast. The red lines mark the groups of 4.\n"
    "- **Structured**: remove whole rows (neurons) or whole attention heads. The matrix really shrinks, so "
    "it is faster on any hardware, but it is the coarsest choice and costs the most accuracy.")
if examples is not None:
    cols = st.columns(3)
    for col, (name, m) in zip(cols, examples.items()):
        col.plotly_chart(charts.mask_zoom(m, 0, 0, rows=w.shape[0], cols=w.shape[1], m=4 if name == "2:4" else None,
                                          title=name), key=f"learn_pattern_{name}")

# ---- 3. data-aware methods ---------------------------------------------------------------------------
st.header("3. Why the data matter: magnitude vs Wanda vs SparseGPT")
st.markdown(
    "A weight's effect on the output is **weight × input**. In transformers a few input features are "
    "much larger than the rest (*outlier features*): a small weight on such a feature can matter more "
    "than a large weight elsewhere.\n"
    "- **Magnitude** looks at |w| only: it never sees the inputs.\n"
    "- **Wanda** scores |w| × (size of the input feature over calibration text) and compares weights "
    "within each row: it keeps the weights on outlier features.\n"
    "- **SparseGPT** picks the mask from the inputs' correlations too, and then **updates the kept "
    "weights** to make up for the pruned ones.\n\n"
    "The *output error* is ‖WXᵀ − W′Xᵀ‖² / ‖WXᵀ‖²: how much the layer's output moves (0 = not at all).")
c1, c2 = st.columns(2)
pattern = c1.selectbox("Pattern", PATTERNS, key="toy_pattern")
fixed = parse_pattern(pattern).sparsity
sparsity = c2.slider("Sparsity", 0.0, 0.9, 0.5, 0.05, key="toy_sparsity", disabled=fixed is not None,
                     help="fraction of weights set to zero")
if fixed is not None:
    c2.caption(f"{pattern} fixes the sparsity at {fixed:.0%}")
try:
    w, x = toy_data()
    results = toy_compare(None if fixed is not None else float(sparsity), pattern)
    st.plotly_chart(charts.toy_masks(results), key="learn_toy")
    outliers = sorted(x.norm(dim=0).topk(max(1, x.shape[1] // 16)).indices.tolist())
    st.caption(f"Outlier input features of this toy: columns {', '.join(map(str, outliers))}. "
               "Compare how each method treats them.")
except PrunescopeError as exc:
    st.error(str(exc))

# ---- 4. depth ----------------------------------------------------------------------------------------
st.header("4. Why errors add up across layers")
st.markdown(
    "A model is a stack of layers, and each pruned layer passes a slightly wrong output to the next one, "
    "which adds its own error on top. Below, a stack of 8 toy layers (linear, tanh and a residual "
    "connection) is pruned layer by layer, each layer seeing the inputs that the *already pruned* layers "
    "produce, as the real engine does. The *cumulative error* ‖Y_dense − Y_pruned‖² / ‖Y_dense‖² grows with "
    "depth; methods that keep each layer's error small keep the total small too.")
depth_sparsity = st.slider("Sparsity of every layer", 0.0, 0.9, 0.5, 0.05, key="depth_sparsity")
try:
    st.plotly_chart(charts.depth_chart(toy_depth(float(depth_sparsity))), key="learn_depth")
except PrunescopeError as exc:
    st.error(str(exc))
