"""Structured pruning beyond BERT: kwon and kprune on tiny random RoBERTa and DistilBERT classifiers,
reaching layers only through `Arch` (the backbone found through `base_model_prefix`)."""

from __future__ import annotations

import csv
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from conftest import TEXTS, tiny_model
from conftest import calib_logits as _logits
from pruning_core.prune import methods
from pruning_core.model.arch import arch_of
from pruning_core.core.errors import PrunescopeError
from pruning_core.prune.methods.pat import PAT
from pruning_core.prune.structured import run
from pruning_core.prune.structured.shrink import check_supported, remove, structure_of
from pruning_core.prune.structured.structure import Structure, head_flops
from pruning_core.prune.structured.units import UnitMasks

FAMILIES = ["bert", "roberta", "distilbert"]


def _random_structure(model, seed: int = 1) -> Structure:
    g = torch.Generator().manual_seed(seed)
    s = Structure.full(model.config)
    heads = torch.rand(s.heads.shape, generator=g) > 0.5
    neurons = torch.rand(s.neurons.shape, generator=g) > 0.6
    heads[1] = False  # a layer without attention heads
    return s.replace(heads=heads, neurons=neurons)


@pytest.mark.parametrize("family", FAMILIES)
def test_arch_finds_every_part_through_the_base_model_prefix(family):
    model = tiny_model(family, layers=2)
    arch = arch_of(model)
    assert arch.base_model(model) is getattr(model, model.base_model_prefix)
    assert len(arch.blocks(model)) == 2 and arch.head_dim(model) == 128 // 4
    norms = arch.layer_norms(model)
    assert len(norms) == 1 + 2 * 2 and all(isinstance(n, nn.LayerNorm) for n in norms)
    assert len({id(n) for n in norms}) == len(norms)
    for block in arch.blocks(model):
        attn, ffn = arch.sublayer(block, "heads"), arch.sublayer(block, "neurons")
        assert attn.proj.in_features == 128 and ffn.proj.in_features == 256  # units are the proj's input columns
        assert attn.residual_in is arch.block_linears(block)["q"] and ffn.residual_in.out_features == 256
    full = Structure.full(model.config)
    assert full.heads.shape == (2, 4) and full.neurons.shape == (2, 256) and full.hidden.shape == (128,)


@pytest.mark.parametrize("family", FAMILIES)
def test_removal_equals_the_masked_model(family, calib):
    """0/1 masks (hooks at the output projections' inputs) and removal compute the same logits; the
    kept units read back from the removed model are the structure's."""
    model = tiny_model(family, layers=2)
    st = _random_structure(model)
    ref = _logits(model, calib, UnitMasks.of(st))
    small = remove(model, st)
    assert torch.allclose(_logits(small, calib), ref, atol=1e-5)
    assert not torch.allclose(_logits(model, calib), ref, atol=1e-3)  # the masks did remove something
    kept = structure_of(small)
    if family == "bert":  # physically smaller: counts per layer
        assert torch.equal(kept.heads.sum(1), st.heads.sum(1)) and torch.equal(kept.neurons.sum(1), st.neurons.sum(1))
    else:  # zeroed in place: exactly the units
        assert torch.equal(kept.heads, st.heads) and torch.equal(kept.neurons, st.neurons)


@pytest.fixture(scope="module")
def task_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("task") / "tiny.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i, t in enumerate(TEXTS[:8]):
            w.writerow([t, 1 - i % 2])
    return str(path)


@pytest.mark.parametrize("method", ["kwon", "kprune"])
@pytest.mark.parametrize("family", ["roberta", "distilbert"])
def test_kwon_and_kprune_prune_roberta_and_distilbert(family, method, calib, task_file):
    budget = 0.3
    model = tiny_model(family, layers=2)
    cfg = SimpleNamespace(method=method, task=task_file, seed=0, sparsity=budget, options_dict=dict)
    steps = []
    small, result = run.prune(cfg, methods.get(cfg.method), model, None, calib, calib, on_record=steps.append)
    info = result.structure
    # the FLOPs budget is reached, not overshot by more than one head (each method's granularity)
    head = head_flops(128, 32, info["seq_len"])
    assert info["flops"] <= (1 - budget) * info["flops_dense"] * (1 + 1e-9)
    assert info["flops"] > (1 - budget) * info["flops_dense"] - head
    assert budget <= info["flops_reduction"] < budget + head / info["flops_dense"]
    # masks shaped for this family's config (DistilBERT: n_layers, n_heads, hidden_dim, dim)
    assert result.masks["structure.heads"].shape == (2, 4)
    assert result.masks["structure.neurons"].shape == (2, 256)
    assert result.masks["structure.hidden"].shape == (1, 128) and result.masks["structure.hidden"].all()
    st = Structure.from_masks(result.masks, 32)
    assert not st.heads.all() or not st.neurons.all()
    # the returned model is the method's (tuned) model with the removed units zero: masking those
    # units again changes nothing, and they read back as removed
    assert torch.allclose(_logits(small, calib, UnitMasks.of(st)), _logits(small, calib), atol=1e-6)
    kept = structure_of(small)
    assert not (kept.heads & ~st.heads).any() and not (kept.neurons & ~st.neurons).any()
    assert 0 < result.encoder_sparsity < 1 and result.achieved_sparsity > 0
    assert len(result.blocks) == 2 and all(b.cumulative_error >= 0 for b in result.blocks)
    assert result.logits_kl >= 0 and steps


def test_pat_refuses_other_families_before_any_work(calib, task_file):
    for family in ("roberta", "distilbert"):
        model = tiny_model(family, layers=1)
        with pytest.raises(PrunescopeError, match="pat prunes bert models only"):
            check_supported(model, PAT())
        cfg = SimpleNamespace(method="pat", task=task_file, seed=0, sparsity=0.25, options_dict=dict)
        with pytest.raises(PrunescopeError, match="bert models only"):
            run.prune(cfg, methods.get(cfg.method), model, None, calib, None)
    check_supported(tiny_model("bert", layers=1), PAT())  # BERT passes
