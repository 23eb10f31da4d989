"""Structured pruning: physical removal is exact, reloads, FLOPs match a counted forward pass,
K-prune's pieces match plain reference computations, and K-prune beats a random structure."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForSequenceClassification, BertConfig, BertForSequenceClassification

from conftest import TEXTS
from pruning_core.core.errors import PrunescopeError
from pruning_core.prune.methods import kprune
from pruning_core.prune.structured import Structure
from pruning_core.model.modeling_pruned_bert import FullWidthLayerNorm
from pruning_core.prune.structured.shrink import remove, structure_of
from pruning_core.prune.structured.units import UnitMasks, masked


def _bert(impl: str = "sdpa", layers: int = 3, seed: int = 0):
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=30522, hidden_size=128, num_hidden_layers=layers, num_attention_heads=4,
                     intermediate_size=256, attn_implementation=impl)
    return BertForSequenceClassification(cfg).eval()


def _random_structure(model, hidden: bool, seed: int = 1) -> Structure:
    g = torch.Generator().manual_seed(seed)
    s = Structure.full(model.config)
    heads = torch.rand(s.heads.shape, generator=g) > 0.5
    neurons = torch.rand(s.neurons.shape, generator=g) > 0.6
    heads[1], neurons[2] = False, False  # a layer without attention heads, one without FFN neurons
    return s.replace(heads=heads, neurons=neurons,
                     hidden=torch.rand(len(s.hidden), generator=g) > 0.3 if hidden else None)


def _inputs():
    ids = torch.randint(5, 1000, (3, 11), generator=torch.Generator().manual_seed(2))
    mask = torch.ones_like(ids)
    mask[0, 8:] = 0
    return {"input_ids": ids, "attention_mask": mask}


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
@pytest.mark.parametrize("hidden", [False, True])
def test_removal_equals_masked_model_and_reloads(impl, hidden, tmp_path):
    model = _bert(impl)
    st = _random_structure(model, hidden)
    with torch.no_grad(), masked(model, UnitMasks.of(st)):
        ref = model(**_inputs()).logits
    small = remove(model, st)
    with torch.no_grad():
        got = small(**_inputs()).logits
    assert torch.allclose(got, ref, atol=1e-5)
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in model.parameters())
    assert small.bert.encoder.layer[0].intermediate.dense.out_features == int(st.neurons[0].sum())
    assert small.bert.encoder.layer[0].attention.self.num_attention_heads == int(st.heads[0].sum())
    small.save_pretrained(tmp_path)
    back = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        assert torch.allclose(back(**_inputs()).logits, got, atol=1e-6)  # may reload with another attention kernel
    kept = structure_of(back)
    assert torch.equal(kept.heads.sum(1), st.heads.sum(1)) and torch.equal(kept.neurons.sum(1), st.neurons.sum(1))
    assert kept.kept_hidden == st.kept_hidden


def test_full_width_layernorm_equals_layernorm_of_zero_padded_input():
    torch.manual_seed(0)
    x = torch.randn(5, 7) * 3 + 1
    ln = torch.nn.LayerNorm(10, eps=1e-12)
    ln.weight.data, ln.bias.data = torch.randn(10), torch.randn(10)
    keep = torch.tensor([0, 2, 3, 5, 6, 8, 9])
    full = torch.zeros(5, 10)
    full[:, keep] = x
    narrow = FullWidthLayerNorm(7, 10, 1e-12)
    narrow.weight.data, narrow.bias.data = ln.weight.data[keep], ln.bias.data[keep]
    assert torch.allclose(narrow(x), ln(full)[:, keep], atol=1e-5)


@pytest.mark.parametrize("hidden", [False, True])
def test_flops_equal_a_counted_forward_pass(hidden):
    """The FLOPs formula against torch's FlopCounterMode on the physically pruned encoder (eager
    attention, whose matmuls the counter sees), one sequence without padding."""
    from torch.utils.flop_counter import FlopCounterMode

    model = _bert("eager")
    for st in (Structure.full(model.config), _random_structure(model, hidden)):
        small = remove(model, st)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            small(input_ids=torch.randint(5, 1000, (1, 17)))
        counted = sum(counter.get_flop_counts()[f"{type(small).__name__}.bert.encoder"].values())
        assert st.flops(17) == counted


def test_flops_equal_a_hand_count():
    """d = 8, 2 heads of 4, FFN 6, s = 3 tokens, counted by hand (2 FLOPs per multiply-add):
    a head's Q, K, V 3 x 2*3*8*4 = 576, scores 2*3*3*4 = 72, context 72, output share 2*3*4*8 = 192 -> 912;
    a neuron's input row 2*3*8 = 48 and output column 48 -> 96. Keeping 1 + 2 heads, 6 + 3 neurons:
    3 * 912 + 9 * 96 = 3600; with 6 of 8 hidden channels: heads 3 * (576 * 6/8 + 144 + 192 * 6/8) = 2160
    and neurons 9 * 72 = 648."""
    from types import SimpleNamespace

    cfg = SimpleNamespace(num_hidden_layers=2, num_attention_heads=2, intermediate_size=6, hidden_size=8)
    full = Structure.full(cfg)
    assert full.flops(3) == 2 * (2 * 912 + 6 * 96)
    st = full.replace(heads=torch.tensor([[True, False], [True, True]]),
                      neurons=torch.tensor([[True] * 6, [True] * 3 + [False] * 3]))
    assert st.flops(3) == 3600
    assert st.replace(hidden=torch.arange(8) < 6).flops(3) == 2160 + 648


def test_structured_pattern_is_checked():
    from pruning_core.experiments.config import ExperimentConfig

    assert ExperimentConfig.create(method="kprune", sparsity=0.4).pattern == "structured"
    with pytest.raises(PrunescopeError, match="structured methods"):
        ExperimentConfig.create(method="sparsegpt", pattern="structured")
    with pytest.raises(PrunescopeError, match="whole units"):
        ExperimentConfig.create(method="kprune", pattern="2:4", sparsity=0.5)
    with pytest.raises(PrunescopeError, match="FLOPs removed"):
        ExperimentConfig.create(method="kprune", sparsity=1.2)


# -- K-prune pieces against plain computations ------------------------------------------------------

def _batches(tokenizer, texts, labels_count=2):
    from pruning_core.data import calibration

    cal = calibration.build(tokenizer, texts, seq_len=16, batch_size=4)
    return [(ids, m.long(), torch.zeros(len(ids), dtype=torch.long)) for ids, m in cal.batches]


def test_predictive_knowledge_equals_per_example_loop(tokenizer):
    import torch.nn.functional as F

    model = _bert("eager", layers=2)
    batches = _batches(tokenizer, TEXTS[:8])
    full = Structure.full(model.config)
    masks = UnitMasks.of(full, hidden=False)
    masks.neurons[0, :50] = 0  # a partly pruned model
    torch.manual_seed(3)
    dense = [torch.randn(len(ids), 2) for ids, _, _ in batches]
    k_pred, k_rep = kprune.measure_knowledge(model, masks, batches, dense, 2.0)
    want_h, want_n, want_rep = torch.zeros_like(masks.heads), torch.zeros_like(masks.neurons), torch.zeros_like(masks.neurons)
    for (ids, mask, _), target in zip(batches, dense):
        for n in range(len(ids)):
            m = UnitMasks(masks.heads.clone().requires_grad_(True), masks.neurons.clone().requires_grad_(True))
            with masked(model, m):
                logits = model(input_ids=ids[n:n + 1], attention_mask=mask[n:n + 1]).logits
            kl = F.kl_div(F.log_softmax(logits / 2, -1), F.log_softmax(target[n:n + 1] / 2, -1), log_target=True,
                          reduction="sum")
            gh, gn = torch.autograd.grad(kl, [m.heads, m.neurons])
            want_h += 0.5 * gh ** 2
            want_n += 0.5 * gn ** 2
            # representational knowledge of neurons: each neuron's output energy through its weights
            acts = {}
            hooks = [layer.intermediate.register_forward_hook(lambda _m, _i, o, i=i: acts.__setitem__(i, o))
                     for i, layer in enumerate(model.bert.encoder.layer)]
            with torch.no_grad(), masked(model, masks):
                model(input_ids=ids[n:n + 1], attention_mask=mask[n:n + 1])
            for h in hooks:
                h.remove()
            for i, layer in enumerate(model.bert.encoder.layer):
                a = acts[i][0][mask[n].bool()] * masks.neurons[i]  # hooked before the masks: scale here
                w2 = layer.output.dense.weight
                want_rep[i] += 0.5 * torch.stack([(a[:, j:j + 1] * w2[:, j]).pow(2).sum() for j in range(a.shape[1])])
    assert torch.allclose(k_pred[0], want_h, rtol=1e-3, atol=1e-10)
    assert torch.allclose(k_pred[1], want_n, rtol=1e-3, atol=1e-10)
    assert torch.allclose(k_rep[1], want_rep, rtol=1e-3, atol=1e-6)


def test_select_keeps_best_units_within_budget():
    scores = [torch.tensor([[5.0, 1.0], [4.0, 0.5]]), torch.tensor([[3.0, 2.0, 0.1], [6.0, 0.2, 0.3]])]
    flops = [10.0, 3.0]
    undecided = [(0, 0), (1, 0), (0, 1), (1, 1)]
    # sorted: n(1,0)=6 f3, h(0,0)=5 f10, h(1,0)=4 f10, n(0,0)=3 f3, n(0,1)=2 f3, ... budget 29 keeps the
    # first four (26 FLOPs) and stops at the fifth (29 + ... = 29 fits exactly: 26 + 3 = 29)
    keep = kprune.select(scores, flops, undecided, [0, 1], 29.0)
    assert keep[0].tolist() == [True, False] and keep[1].tolist() == [True, True, False]
    assert kprune.select(scores, flops, undecided, [0], 5.0)[0].tolist() == [False, False]


def test_output_tuning_is_least_squares(tokenizer):
    """With no damping, the refit output projection reaches the least-squares optimum computed by
    torch.linalg.lstsq on the same features, and its error is below the untuned one."""
    model = _bert("eager", layers=2)
    batches = _batches(tokenizer, TEXTS[:12])
    targets = kprune.dense_targets(model, batches)
    masks = UnitMasks.of(Structure.full(model.config), hidden=False)
    masks.neurons[0, ::3] = 0
    masks.heads[1, 0] = 0
    masks.neurons[1, 40:] = 0  # fewer features than tokens: a unique least-squares solution
    feats, ys = [], []
    block = model.bert.encoder.layer[1].output
    keep_cols = masks.neurons[1].bool()
    grab = {}
    h = block.register_forward_pre_hook(lambda _m, a: grab.update(x=a[0], res=a[1]))
    with torch.no_grad(), masked(model, masks):
        for b, (ids, mask, _) in enumerate(batches):
            model(input_ids=ids, attention_mask=mask)
            k = mask.bool()
            feats.append(torch.cat([grab["x"][k][:, keep_cols], torch.ones(int(k.sum()), 1)], 1).double())
            ys.append((targets[(1, "ffn")][b] - grab["res"][k]).double())
    h.remove()
    phi, y = torch.cat(feats), torch.cat(ys)
    best = torch.linalg.lstsq(phi, y).solution
    before, after = kprune.tune_output(model, masks, 1, "ffn", batches, targets, damping=0.0)
    tnorm = sum(float(t.double().pow(2).sum()) for t in targets[(1, "ffn")])
    assert after == pytest.approx(float((phi @ best - y).pow(2).sum()) / tnorm, rel=1e-4)
    assert after < before
    w = model.bert.encoder.layer[1].output.dense.weight
    assert torch.allclose(w[:, keep_cols].double(), best[:-1].T, atol=1e-4)
    assert (w[:, ~keep_cols] == 0).all()


# -- end to end on the shipped model ------------------------------------------------------------------

def test_kprune_honours_budget_and_beats_a_random_structure(shipped):
    from pruning_core.experiments.config import ExperimentConfig
    from pruning_core.measure.evaluate import evaluate
    from pruning_core.experiments.experiment import eval_split, prune_copy

    net, tok = shipped
    cfg = ExperimentConfig.create(method="kprune", sparsity=0.5, calib_size=32, device="cpu")
    small, result = prune_copy(cfg, net, tok)
    info = result.structure
    assert info["flops"] <= 0.5 * info["flops_dense"] * (1 + 1e-9)
    assert info["flops_reduction"] < 0.5 + 0.01  # the budget is used, not overshot by whole layers
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in net.parameters())
    full = Structure.full(net.config)
    st = Structure.from_masks(result.masks, full.head_dim)
    assert st.flops(info["seq_len"]) == pytest.approx(info["flops"])
    # a random structure with the same number of heads and neurons kept per layer
    g = torch.Generator().manual_seed(0)
    rand = full.replace(heads=torch.stack([torch.randperm(12, generator=g) < int(k) for k in st.heads.sum(1)]),
                        neurons=torch.stack([torch.randperm(1536, generator=g) < int(k) for k in st.neurons.sum(1)]))
    baseline = remove(net, rand)
    split = eval_split("rotten_tomatoes", 300, 0)
    acc_k = evaluate(small, tok, split.texts, split.labels, 64)[0].accuracy
    acc_r = evaluate(baseline, tok, split.texts, split.labels, 64)[0].accuracy
    assert acc_k > acc_r + 0.05, (acc_k, acc_r)
    assert acc_k > 0.7
    assert result.blocks[-1].heldout_error is not None and result.cls_error > 0
