"""Issue 15's speed work keeps results: the dense activation cache gives a second run on the same calibration
the same masks and records with fewer block forwards; magnitude runs no statistics pass."""

from __future__ import annotations

import copy
from dataclasses import asdict

import pytest
import torch

from conftest import tiny_model
from pruning_core.data import calibration
from pruning_core.model.arch import arch_of
from pruning_core.prune import dense_cache, engine


@pytest.fixture(scope="module")
def dense():
    return tiny_model("bert", layers=3)


@pytest.fixture(scope="module")
def held(tokenizer):
    from conftest import TEXTS

    return calibration.build(tokenizer, [t[::-1] for t in TEXTS[:16]], seq_len=24, batch_size=8)


@pytest.fixture(autouse=True)
def empty_cache():
    dense_cache.clear()
    yield
    dense_cache.clear()


def counted_prune(dense, calib, held, method, pattern="unstructured", **kw):
    """(PruneResult, block forwards) of pruning a copy of `dense`; every block call is counted by a hook."""
    net = copy.deepcopy(dense)
    calls = [0]
    for block in arch_of(net).blocks(net):
        block.register_forward_hook(lambda *a: calls.__setitem__(0, calls[0] + 1))
    res = engine.run(engine.prune(net, calib, method, 0.5, pattern, heldout=held, **kw))
    return res, calls[0]


def same_result(a, b) -> None:
    assert a.masks.keys() == b.masks.keys()
    assert all(torch.equal(a.masks[k], b.masks[k]) for k in a.masks)
    drop = ("seconds",)
    assert [{k: v for k, v in asdict(r).items() if k not in drop} for r in a.layers] == \
        [{k: v for k, v in asdict(r).items() if k not in drop} for r in b.layers]
    assert [{k: v for k, v in asdict(r).items() if k not in drop} for r in a.blocks] == \
        [{k: v for k, v in asdict(r).items() if k not in drop} for r in b.blocks]
    assert (a.cls_error, a.logits_kl, a.achieved_sparsity) == (b.cls_error, b.logits_kl, b.achieved_sparsity)


@pytest.mark.parametrize("first,second", [("wanda", "wanda"), ("wanda", "sparsegpt"), ("magnitude", "sparsegpt"),
                                          ("sparsegpt", "akrp"), ("akrp", "magnitude")])
def test_second_run_on_the_same_calibration_pays_no_dense_passes(dense, calib, held, first, second):
    plain, plain_calls = counted_prune(dense, calib, held, second)  # no key: nothing cached
    assert dense_cache.size_mb() == 0
    counted_prune(dense, calib, held, first, dense_key="tiny")
    assert dense_cache.size_mb() > 0
    cached, cached_calls = counted_prune(dense, calib, held, second, dense_key="tiny")
    same_result(plain, cached)
    n_blocks = len(arch_of(dense).blocks(dense))
    dense_calls = n_blocks * (len(calib.batches) + len(held.batches))  # calibration and held-out dense shadow
    # the first block's dense Gram statistics are cached only by a method that collected them
    stats_pass = len(calib.batches) if first in ("magnitude", "akrp") and second in ("wanda", "sparsegpt") else 0
    assert cached_calls == plain_calls - dense_calls + stats_pass


def test_cache_keys_on_the_texts_and_the_model_key(dense, calib, held, tokenizer):
    counted_prune(dense, calib, held, "wanda", dense_key="tiny")
    other = calibration.build(tokenizer, [t + " indeed" for t in calib.texts], seq_len=24, batch_size=8)
    plain, plain_calls = counted_prune(dense, other, held, "wanda")
    res, calls = counted_prune(dense, other, held, "wanda", dense_key="tiny")
    assert calls == plain_calls  # other texts: nothing reused
    same_result(plain, res)
    _, calls = counted_prune(dense, calib, held, "wanda", dense_key="other model")
    assert calls == plain_calls


def test_cache_cap_from_the_environment(dense, calib, held, monkeypatch):
    monkeypatch.setenv("PRUNESCOPE_DENSE_CACHE_MB", "0")
    _, first = counted_prune(dense, calib, held, "wanda", dense_key="tiny")
    _, second = counted_prune(dense, calib, held, "wanda", dense_key="tiny")
    assert first == second and dense_cache.size_mb() == 0
    monkeypatch.setenv("PRUNESCOPE_DENSE_CACHE_MB", "1000")
    counted_prune(dense, calib, held, "wanda", dense_key="tiny")
    whole = dense_cache.size_mb()
    dense_cache.clear()
    monkeypatch.setenv("PRUNESCOPE_DENSE_CACHE_MB", str(whole * 0.7))  # room for some blocks only: oldest dropped
    _, calls = counted_prune(dense, calib, held, "wanda", dense_key="tiny")
    assert 0 < dense_cache.size_mb() <= whole * 0.7
    _, again = counted_prune(dense, calib, held, "wanda", dense_key="tiny")
    assert again < calls  # the blocks still kept were reused


def test_magnitude_runs_no_statistics_pass(dense, calib, held):
    _, wanda_calls = counted_prune(dense, calib, held, "wanda")
    res, mag_calls = counted_prune(dense, calib, held, "magnitude")
    n_blocks = len(arch_of(dense).blocks(dense))
    # wanda: the first block's statistics come with the dense pass, later blocks need their own
    assert mag_calls == wanda_calls - (n_blocks - 1) * len(calib.batches)
    assert all(0 < r.local_error < 1 for r in res.layers)


def test_magnitude_local_error_is_measured_on_the_pruned_pass(dense, calib):
    """Q/K/V read the block input: their local error equals tr(D G D^T) / tr(W G W^T) from the Gram of
    the block inputs of the pruned model."""
    from pruning_core.measure.metrics import local_error

    net = copy.deepcopy(dense)
    res = engine.run(engine.prune(net, calib, "magnitude", 0.5))
    arch = arch_of(net)
    hidden = [arch.embed(net, ids) for ids, _ in calib.batches]
    attn = [arch.block_mask(net, m.long(), torch.float32) for _, m in calib.batches]
    for i, (bd, bp) in enumerate(zip(arch.blocks(dense), arch.blocks(net))):
        gram = sum(h[m].T @ h[m] for h, (_, m) in zip(hidden, calib.batches))
        for kind in ("q", "k", "v"):
            want = local_error(arch.block_linears(bd)[kind].weight, arch.block_linears(bp)[kind].weight, gram)
            got = next(r.local_error for r in res.layers if r.block == i and r.kind == kind)
            assert got == pytest.approx(want, rel=1e-4)
        with torch.no_grad():
            hidden = [arch.run_block(bp, h, a) for h, a in zip(hidden, attn)]


@pytest.mark.parametrize("second", ["sparsegpt", "magnitude", "akrp"])
def test_warm_fills_the_dense_shadow_ahead_of_any_method(dense, calib, held, second):
    """`engine.fill_dense_cache` runs only the dense shadow (the model unchanged); a prune after it pays no
    dense pass and gives exactly what a prune without the cache gives."""
    plain, plain_calls = counted_prune(dense, calib, held, second)
    net = copy.deepcopy(dense)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    n_blocks = len(arch_of(dense).blocks(dense))
    assert engine.fill_dense_cache(net, calib, held, "tiny") == n_blocks
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert engine.fill_dense_cache(net, calib, held, None) == 0  # no key: nothing to keep it under
    cached, calls = counted_prune(dense, calib, held, second, dense_key="tiny")
    same_result(plain, cached)
    assert calls == plain_calls - n_blocks * (len(calib.batches) + len(held.batches))


def test_a_first_slice_of_the_evaluation_is_heard_first_and_changes_nothing(tokenizer):
    """`evaluate(first=...)`: the accuracy on a seeded random share of the batches arrives before the rest is
    evaluated, equals the accuracy of exactly those examples, and the final logits are bit-identical to a
    plain evaluation (only the batch order changes)."""
    from conftest import TEXTS
    from pruning_core.measure.evaluate import evaluate

    model = tiny_model("bert", layers=2)
    texts = [t + " " + "word " * (i % 7) for i, t in enumerate(TEXTS * 12)]
    labels = [i % 2 for i in range(len(texts))]
    plain, (logits, pooled) = evaluate(model, tokenizer, texts, labels, 64, batch_size=8)
    heard = []
    staged, (logits2, pooled2) = evaluate(model, tokenizer, texts, labels, 64, batch_size=8, first=(0.25, 3),
                                          on_first=lambda acc, n, total: heard.append((acc, n, total)))
    assert torch.equal(logits, logits2) and torch.equal(pooled, pooled2) and staged == plain
    [(acc, n, total)] = heard
    assert total == len(texts) and 0 < n < total and n % 8 == 0  # whole batches, about a quarter
    assert abs(n / total - 0.25) < 0.1
    from pruning_core.measure.evaluate import predict

    parts = []
    predict(model, tokenizer, texts, 64, batch_size=8, first=(0.25, 3), on_first=lambda pos, lg: parts.append((pos, lg)))
    [(pos, part)] = parts
    assert len(pos) == n and torch.equal(part, logits[pos])  # the heard logits are those examples' final logits
    assert acc == pytest.approx(float((logits[pos].argmax(-1) == torch.tensor(labels)[pos]).double().mean()))
    other = []
    predict(model, tokenizer, texts, 64, batch_size=8, first=(0.25, 4), on_first=lambda p, lg: other.append(p))
    assert other[0] != pos  # another seed, another slice
