"""Each method against an independent, plain implementation of its definition."""

import pytest
import torch

from pruning_core.prune import masks
from pruning_core.prune import methods
from pruning_core.prune.methods.sparsegpt import inverse_hessian_factor, sparsegpt_solve


def _problem(rows=6, cols=16, tokens=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(rows, cols, generator=g, dtype=torch.float64)
    x = torch.randn(tokens, cols, generator=g, dtype=torch.float64) * torch.linspace(0.2, 3, cols, dtype=torch.float64)
    return w, x


def test_wanda_equals_definition():
    w, x = _problem(8, 32, 100)
    gram = x.T @ x
    out = methods.get("wanda").prune_group({"q": w.float()}, gram.float(), 0.5, masks.Pattern(), None, None)
    _, keep = out["q"]
    # definition: score_ij = |W_ij| * ||X_j||_2 over tokens; drop the lowest half of every row
    score = w.abs() * x.norm(dim=0)
    for r in range(w.shape[0]):
        dropped = set(score[r].argsort()[:16].tolist())
        assert set((~keep[r]).nonzero().flatten().tolist()) == dropped


def test_magnitude_equals_definition():
    w, _ = _problem(8, 32)
    out = methods.get("magnitude").prune_group({"q": w}, None, 0.25, masks.Pattern(),
                                                methods.get("magnitude").options({}), None)
    new, keep = out["q"]
    k = int(w.numel() * 0.25)
    assert set((~keep).flatten().nonzero().flatten().tolist()) == set(w.abs().flatten().argsort()[:k].tolist())
    assert torch.equal(new, w * keep)


def exact_obs(w, h, sparsity, pattern, blocksize, percdamp=0.01):
    """Plain sequential OBS with explicit inverses of the Hessian of the not-yet-fixed columns.

    Column by column, left to right: a pruned weight w_j is zeroed and the remaining columns F get
    the optimal compensation -w_j / [H_F^-1]_00 * [H_F^-1]_{:,0}. The mask of each block is chosen
    on the current weights by the OBS saliency w^2 / [H_F^-1]_00 (N:M: per M-column group)."""
    w = w.clone()
    rows, cols = w.shape
    h = h.clone()
    h += percdamp * h.diagonal().mean() * torch.eye(cols, dtype=h.dtype)
    d = torch.stack([torch.linalg.inv(h[j:, j:])[0, 0] for j in range(cols)])
    prune = torch.zeros_like(w, dtype=torch.bool)
    for b in range(0, cols, blocksize):
        e = min(b + blocksize, cols)
        if not pattern.is_nm:
            score = w[:, b:e] ** 2 / d[b:e]
            k = round(score.numel() * sparsity)
            idx = score.flatten().argsort()[:k]
            prune[:, b:e].reshape(-1)[idx] = True  # view of a slice: write through a clone
            blk = torch.zeros(rows * (e - b), dtype=torch.bool)
            blk[idx] = True
            prune[:, b:e] = blk.view(rows, e - b)
        for j in range(b, e):
            if pattern.is_nm and (j - b) % pattern.m == 0:
                score = w[:, j:j + pattern.m] ** 2 / d[j:j + pattern.m]
                low = score.argsort(dim=1)[:, : pattern.m - pattern.n]
                prune[:, j:j + pattern.m].scatter_(1, low, True)
            hinv = torch.linalg.inv(h[j:, j:])
            for r in range(rows):
                if prune[r, j]:
                    w[r, j:] -= w[r, j] / hinv[0, 0] * hinv[:, 0]
                    w[r, j] = 0.0
    return w, ~prune


@pytest.mark.parametrize("pattern,blocksize", [("unstructured", 16), ("unstructured", 4), ("2:4", 8), ("4:8", 16)])
def test_sparsegpt_equals_exact_obs(pattern, blocksize):
    pat = masks.parse_pattern(pattern)
    w, x = _problem(6, 16, 64, seed=3)
    h = x.T @ x
    hinv, dead = inverse_hessian_factor(h, 0.01)
    assert not dead.any()
    new, keep = sparsegpt_solve(w, hinv.double(), 0.5, pat, blocksize)
    ref_w, ref_keep = exact_obs(w, h, 0.5, pat, blocksize)
    assert torch.equal(keep, ref_keep)
    assert torch.allclose(new.double(), ref_w, atol=1e-4, rtol=1e-4)


def test_sparsegpt_beats_wanda_on_reconstruction():
    w, x = _problem(16, 32, 200, seed=4)
    gram = (x.T @ x).float()

    def err(name):
        opts = methods.get(name).options({})
        new, _ = methods.get(name).prune_group({"q": w.float()}, gram, 0.5, masks.Pattern(), opts, None)["q"]
        d = (w.float() - new)
        return float(((d @ gram) * d).sum())

    assert err("sparsegpt") < err("wanda") < err("magnitude")


def test_sparsegpt_shared_input_chooses_each_mask_on_its_own():
    """Stacking Q, K, V behind one factorisation gives each the same result as pruning it alone."""
    w, x = _problem(6, 16, 64, seed=5)
    w2 = w * 50  # a much larger matrix would take all the pruning if one quantile were shared
    gram = x.T @ x  # float64: no rounding differences between the stacked and the lone matmul
    m = methods.get("sparsegpt")
    opts = m.options({"blocksize": 4})
    both = m.prune_group({"q": w, "k": w2}, gram, 0.5, masks.Pattern(), opts, None)
    alone = m.prune_group({"q": w}, gram, 0.5, masks.Pattern(), opts, None)
    assert torch.equal(both["q"][1], alone["q"][1])
    assert torch.allclose(both["q"][0], alone["q"][0], atol=1e-5)
    assert abs(float((~both["k"][1]).float().mean()) - 0.5) < 0.01


def test_sparsegpt_dead_inputs_are_zeroed():
    w, x = _problem(4, 8, 32)
    x[:, 2] = 0
    new, keep = methods.get("sparsegpt").prune_group({"q": w.float()}, (x.T @ x).float(), 0.25,
                                                      masks.Pattern(), methods.get("sparsegpt").options({}), None)["q"]
    assert (new[:, 2] == 0).all() and not keep[:, 2].any()


def test_method_options_are_checked():
    from pruning_core.core.errors import PrunescopeError

    with pytest.raises(PrunescopeError, match="no option"):
        methods.get("wanda").options({"scope": "global"})
    with pytest.raises(PrunescopeError, match="layer or global"):
        methods.get("magnitude").options({"scope": "planet"})
    with pytest.raises(PrunescopeError, match="unknown method"):
        methods.get("obs")


def test_sparsegpt_leaves_the_callers_gram_untouched():
    w, x = _problem(4, 8, 32)
    x[:, 1] = 0
    gram = (x.T @ x).float()
    before = gram.clone()
    m = methods.get("sparsegpt")
    m.prune_group({"q": w.float()}, gram, 0.5, masks.Pattern(), m.options({}), None)
    assert torch.equal(gram, before)  # the engine computes local error from this same matrix
