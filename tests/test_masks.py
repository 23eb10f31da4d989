import pytest
import torch

from pruning_core.prune import masks
from pruning_core.core.errors import PrunescopeError


def test_parse_patterns():
    assert not masks.parse_pattern("unstructured").is_nm
    p = masks.parse_pattern("2:4")
    assert (p.n, p.m, p.sparsity) == (2, 4, 0.5)
    assert masks.parse_pattern("4:8").sparsity == 0.5
    for bad in ("4:2", "2:2", "x", "0:4", "2-4"):
        with pytest.raises(PrunescopeError):
            masks.parse_pattern(bad)


@pytest.mark.parametrize("s", [-0.1, 1.0, 1.5])
def test_sparsity_out_of_range(s):
    with pytest.raises(PrunescopeError, match=r"\[0, 1\)"):
        masks.check_sparsity(s, masks.Pattern())


def test_nm_needs_its_own_sparsity():
    with pytest.raises(PrunescopeError, match="gives sparsity 0.5"):
        masks.check_sparsity(0.7, masks.parse_pattern("2:4"))


def test_counts_are_exact():
    torch.manual_seed(0)
    s = torch.rand(32, 48)
    assert int((~masks.unstructured_mask(s, 0.3)).sum()) == round(32 * 48 * 0.3)
    row = masks.row_mask(s, 0.25)
    assert ((~row).sum(1) == 12).all()
    # the pruned entries of each row are its lowest scores
    for r in range(32):
        assert s[r][~row[r]].max() <= s[r][row[r]].min()


@pytest.mark.parametrize("pat", ["2:4", "4:8", "1:4"])
def test_nm_mask_structure(pat):
    p = masks.parse_pattern(pat)
    torch.manual_seed(1)
    s = torch.rand(16, 64)
    keep = masks.nm_mask(s, p)
    groups = keep.reshape(16, 64 // p.m, p.m)
    assert (groups.sum(-1) == p.n).all()
    assert masks.is_nm(s * keep, p)
    assert not masks.is_nm(s, p)


def test_nm_divisibility():
    with pytest.raises(PrunescopeError, match="divisible by 4"):
        masks.check_divisible((8, 10), masks.parse_pattern("2:4"), "layer")
