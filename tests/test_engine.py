"""The layer-by-layer engine on tiny random encoders of every supported family."""

import copy

import pytest
import torch

from pruning_core.data import calibration
from pruning_core.prune import engine
from pruning_core.prune import masks
from pruning_core.model.arch import KINDS, arch_of
from pruning_core.prune.engine import BlockRecord, LayerRecord
from pruning_core.core.errors import PrunescopeError

from conftest import TEXTS, tiny_model

CASES = [(m, p, s) for m in ("magnitude", "wanda", "sparsegpt")
         for p, s in (("unstructured", 0.3), ("unstructured", 0.7), ("2:4", 0.5), ("4:8", 0.5))]


@pytest.mark.parametrize("method,pattern,sparsity", CASES)
def test_sparsity_and_pattern_reached(bert, calib, method, pattern, sparsity):
    records = []
    res = engine.run(engine.prune(bert, calib, method, sparsity, pattern), records.append)
    layers = [r for r in records if isinstance(r, LayerRecord)]
    assert len(layers) == 6 * 2 and len([r for r in records if isinstance(r, BlockRecord)]) == 2
    arch = arch_of(bert)
    for rec in layers:
        lin = arch.block_linears(arch.blocks(bert)[rec.block])[rec.kind]
        zeros = float((lin.weight == 0).float().mean())
        assert abs(zeros - sparsity) <= 0.005, (rec.name, zeros)
        assert rec.achieved_sparsity == pytest.approx(zeros)
        # the stored mask is exactly where the weights are zero
        assert torch.equal(res.masks[rec.name], lin.weight != 0)
        if pattern != "unstructured":
            assert masks.is_nm(lin.weight, masks.parse_pattern(pattern))
        assert rec.local_error > 0 and rec.cumulative_error > 0
    assert abs(res.achieved_sparsity - sparsity) <= 0.005
    params = [p for b in arch.blocks(bert) for p in b.parameters()]
    expected = sum(int((p == 0).sum()) for p in params) / sum(p.numel() for p in params)
    assert res.encoder_sparsity == pytest.approx(expected)


@pytest.mark.parametrize("method", ["magnitude", "wanda", "sparsegpt"])
def test_dense_model_has_zero_error(bert, calib, method):
    before = copy.deepcopy(bert.state_dict())
    res = engine.run(engine.prune(bert, calib, method, 0.0))
    assert all(r.cumulative_error == 0 and r.local_error == 0 for r in res.layers)
    assert all(b.cumulative_error == 0 for b in res.blocks)
    assert res.logits_kl == 0 and res.cls_error == 0
    for k, v in bert.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_errors_grow_with_sparsity(calib):
    errs = []
    for s in (0.2, 0.5, 0.8):
        res = engine.run(engine.prune(tiny_model("bert"), calib, "wanda", s))
        errs.append(res.blocks[-1].cumulative_error)
    assert errs[0] < errs[1] < errs[2]


def test_pad_tokens_are_left_out(tokenizer):
    """Batched with padding or one example at a time (no pads), the statistics and so the
    SparseGPT result are the same; including pads would change them."""
    padded = calibration.build(tokenizer, TEXTS[:8], seq_len=32, batch_size=8)
    single = calibration.build(tokenizer, TEXTS[:8], seq_len=32, batch_size=1)
    assert padded.real_tokens == single.real_tokens < sum(i.numel() for i, _ in padded.batches)
    a, b = tiny_model("bert"), tiny_model("bert")
    engine.run(engine.prune(a, padded, "sparsegpt", 0.5))
    engine.run(engine.prune(b, single, "sparsegpt", 0.5))
    arch = arch_of(a)
    for blk_a, blk_b in zip(arch.blocks(a), arch.blocks(b)):
        for (k, la), lb in zip(arch.block_linears(blk_a).items(), arch.block_linears(blk_b).values()):
            same = (la.weight != 0) == (lb.weight != 0)
            assert same.float().mean() > 0.998, k  # float rounding may flip a near-tie
            rows = same.all(1)  # a flipped weight changes the OBS update of its row only
            assert torch.allclose(la.weight[rows], lb.weight[rows], atol=1e-4), k


@pytest.mark.parametrize("family", ["bert", "roberta", "distilbert"])
def test_adapter_matches_the_model_forward(family, tokenizer, calib):
    """The engine's embed -> blocks -> head path gives the model's own logits."""
    model = tiny_model(family)
    arch = arch_of(model)
    ids, keep = calib.batches[-1]
    with torch.no_grad():
        h = arch.embed(model, ids)
        mask = arch.block_mask(model, keep.long(), h.dtype)
        for block in arch.blocks(model):
            h = arch.run_block(block, h, mask)
        ours = arch.logits(model, h)
        theirs = model(input_ids=ids, attention_mask=keep.long()).logits
    assert torch.allclose(ours, theirs, atol=1e-5)
    assert set(arch.block_linears(arch.blocks(model)[0])) == set(KINDS)


@pytest.mark.parametrize("family", ["roberta", "distilbert"])
def test_other_families_prune(family, calib):
    model = tiny_model(family)
    res = engine.run(engine.prune(model, calib, "sparsegpt", 0.5, "2:4"))
    assert abs(res.achieved_sparsity - 0.5) < 0.005
    assert len(res.layers) == 12


def test_bad_requests_fail_before_any_change(calib):
    model = tiny_model("bert", inter=130)
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(PrunescopeError, match="divisible by 4"):
        engine.prune(model, calib, "wanda", 0.5, "2:4")
    with pytest.raises(PrunescopeError, match="unknown method"):
        engine.prune(model, calib, "prune-it-all", 0.5)
    with pytest.raises(PrunescopeError, match=r"\[0, 1\)"):
        engine.prune(model, calib, "wanda", 1.0)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_global_magnitude_uses_one_threshold(bert, calib):
    arch = arch_of(bert)
    all_w = torch.cat([m.weight.detach().abs().flatten() for b in arch.blocks(bert)
                       for m in arch.block_linears(b).values()])
    res = engine.run(engine.prune(bert, calib, "magnitude", 0.6, options={"scope": "global"}))
    assert abs(res.achieved_sparsity - 0.6) < 0.005
    kept = torch.cat([m.weight.detach().abs().flatten() for b in arch.blocks(bert)
                      for m in arch.block_linears(b).values()])
    thr = all_w.kthvalue(int(all_w.numel() * 0.6)).values
    assert ((kept == 0) == (all_w <= thr)).all()


def test_generator_streams_records_before_the_end(bert, calib):
    gen = engine.prune(bert, calib, "wanda", 0.5)
    first = next(gen)
    assert isinstance(first, LayerRecord) and first.block == 0 and first.kind == "q"
    assert (arch_of(bert).blocks(bert)[1].attention.self.query.weight != 0).all()  # later blocks untouched yet
