"""AKRP and reconstruction (LR/BR/GP/CR), held-out error, self-generated calibration."""

from __future__ import annotations

import copy

import pytest
import torch

from conftest import TEXTS, tiny_model
from pruning_core.data import calibration
from pruning_core.prune import engine
from pruning_core.data import selfgen
from pruning_core.model.arch import arch_of
from pruning_core.core.errors import PrunescopeError
from pruning_core.prune.methods.akrp import choose_lambda, rectify
from pruning_core.prune.methods.reconstruction import train_blocks


def _weights(model):
    arch = arch_of(model)
    return {arch.linear_name(i, k): lin.weight.detach().clone()
            for i, b in enumerate(arch.blocks(model)) for k, lin in arch.block_linears(b).items()}


def _prune(model, calib, method, sparsity, pattern="unstructured", heldout=None, **options):
    return engine.run(engine.prune(model, calib, method, sparsity, pattern, options, heldout=heldout))


# ---------------------------------------------------------------------------------- AKRP

def test_rectify_solves_least_squares_exactly():
    torch.manual_seed(0)
    x = torch.randn(300, 16, dtype=torch.float64)
    w = torch.randn(8, 16, dtype=torch.float64)
    b = torch.randn(8, dtype=torch.float64)
    y = x @ w.T + b
    sol, lam = rectify(x.T @ x, x.T @ (y - b), lambda0=1e-12)
    assert lam == 1e-12 and torch.allclose(sol, w, atol=1e-8)
    # a noisy target: the ridge solution equals the closed form with the same lambda
    y2 = y + 0.1 * torch.randn_like(y)
    g, c = x.T @ x, x.T @ (y2 - b)
    sol2, lam2 = rectify(g, c, 1e-2)
    ref = torch.linalg.solve(g + lam2 * g.diagonal().mean() * torch.eye(16, dtype=g.dtype), c).T
    assert torch.allclose(sol2, ref, atol=1e-10)


def test_rectify_raises_lambda_until_positive_definite():
    gram = torch.diag(torch.tensor([1.0, 1.0, -0.5], dtype=torch.float64))  # indefinite: mean diag 0.5
    sol, lam = rectify(gram, torch.ones(3, 2, dtype=torch.float64), lambda0=1e-4)
    # 1e-4 .. 1 leave an eigenvalue <= 0; the first tenfold step past 1 gives a positive definite system
    assert lam == pytest.approx(10.0) and torch.isfinite(sol).all()


def _folds(x, y):
    a, b = x[0::2], x[1::2]
    ya, yb = y[0::2], y[1::2]
    return (a.T @ a, a.T @ ya), (b.T @ b, b.T @ yb)


def test_lambda_is_raised_only_while_it_helps_on_the_other_half():
    torch.manual_seed(0)
    w = torch.randn(4, 40, dtype=torch.float64)
    exact = torch.randn(2000, 40, dtype=torch.float64)
    assert choose_lambda(_folds(exact, exact @ w.T), 1e-6) == 1e-6  # exact targets: no ridge helps
    # few, noisy samples of many features: the unregularised fit memorises noise; validation raises lambda
    x = torch.randn(60, 40, dtype=torch.float64)
    y = x @ w.T + 3.0 * torch.randn(60, 4, dtype=torch.float64)
    lam = choose_lambda(_folds(x, y), 1e-6)
    assert lam >= 1e-2
    # and the chosen lambda predicts fresh data better than lambda0 does
    fresh = torch.randn(5000, 40, dtype=torch.float64)
    target = fresh @ w.T
    g, c = x.T @ x, x.T @ y

    def test_err(la):
        return float(((fresh @ rectify(g, c, la)[0].T - target) ** 2).mean())

    assert test_err(lam) < test_err(1e-6)


def test_akrp_at_sparsity_zero_returns_the_dense_weights(tokenizer):
    """At sparsity 0 every module's rectification solves an exact least-squares problem whose answer is
    the dense weight. LayerNorm centres its outputs, so X^T X is singular along one direction and
    ridge returns the minimum-norm solution: the weights agree on every input the model can see, which
    the local error (||(W - W*) X||^2 / ||W X||^2) measures, and the outputs agree exactly."""
    rich = calibration.from_task(tokenizer, "rotten_tomatoes", 128, 32, 0)
    dense = tiny_model("bert", layers=2)
    before = _weights(dense)
    model = copy.deepcopy(dense)
    res = _prune(model, rich, "akrp", 0.0, lambda0=1e-9)
    assert max(r.local_error for r in res.layers) < 1e-7
    assert res.blocks[-1].cumulative_error < 1e-7 and res.logits_kl < 1e-9
    after = _weights(model)
    ffn_out = [n for n in before if n.endswith("output.dense") and "attention" not in n]
    for name in ffn_out:  # its input (GELU activations) is not centred: the solution is unique
        assert torch.allclose(after[name], before[name], atol=1e-4), name


def test_akrp_corrects_accumulated_error_better_than_sparsegpt(calib):
    dense = tiny_model("bert", layers=4, seed=1)
    errs = {}
    for method in ("sparsegpt", "akrp"):
        res = _prune(copy.deepcopy(dense), calib, method, 0.6)
        errs[method] = (res.blocks[-1].cumulative_error, res.cls_error)
        assert res.achieved_sparsity == pytest.approx(0.6, abs=0.01)
    assert errs["akrp"][0] < errs["sparsegpt"][0]
    assert errs["akrp"][1] < errs["sparsegpt"][1]


@pytest.mark.parametrize("method,options", [("akrp", {}), ("reconstruction", {"mode": "gp", "epochs": 2}),
                                            ("reconstruction", {"mode": "cr", "base": "wanda", "epochs": 2})])
def test_nm_pattern_preserved(calib, method, options):
    model = tiny_model("bert")
    res = _prune(model, calib, method, 0.5, "2:4", **options)
    for name, w in _weights(model).items():
        groups = (w != 0).reshape(w.shape[0], -1, 4).sum(-1)
        assert int(groups.max()) <= 2, name
        assert torch.equal(w != 0, res.masks[name] & (w != 0))  # non-zeros only where the mask keeps


# ---------------------------------------------------------------------------------- reconstruction

def test_training_keeps_the_mask_fixed(calib):
    model = tiny_model("bert")
    _prune(model, calib, "magnitude", 0.7)
    arch = arch_of(model)
    block = arch.blocks(model)[0]
    lins = arch.block_linears(block)
    masks = {k: lin.weight != 0 for k, lin in lins.items()}
    cal = calib
    stream = engine._Stream(model, arch, cal, torch.device("cpu"), torch.float32)
    targets = [h + 0.1 for h in stream.dense]  # any target: what matters is where weights may move
    before = {k: lin.weight.detach().clone() for k, lin in lins.items()}
    with torch.enable_grad():
        losses = train_blocks(arch, [block], [{k: (lins[k], masks[k]) for k in lins}], stream.dense, targets,
                              stream.attn, stream.keeps, epochs=3, lr=1e-3)
    assert len(losses) == 3 and losses[-1] < losses[0]
    for k, lin in lins.items():
        assert torch.equal(lin.weight != 0, masks[k])  # pruned weights stay exactly zero
        assert not torch.equal(lin.weight, before[k])  # kept weights did train
        assert lin.weight.grad is None


@pytest.fixture(scope="module")
def real_runs(shipped):
    """The shipped MiniLM pruned at 60% by SparseGPT (LR) and refined by BR, GP and CR (16 texts)."""
    net, tok = shipped
    cal = calibration.from_task(tok, "rotten_tomatoes", 16, 48, 0)
    held = calibration.heldout(tok, "rotten_tomatoes", 16, 48, 0, exclude=cal.texts)
    out = {}
    for mode in ("lr", "br", "gp", "cr"):
        model = copy.deepcopy(net)
        out[mode] = (_prune(model, cal, "reconstruction", 0.6, heldout=held, mode=mode, epochs=4), model)
    return out


@pytest.mark.slow  # four refinements of the shipped model: minutes
def test_reconstruction_lowers_calibration_error_on_a_real_model(real_runs):
    lr = real_runs["lr"][0]
    # block 0 sees identical inputs in LR and BR: block-wise training must lower its error
    assert real_runs["br"][0].blocks[0].cumulative_error < lr.blocks[0].cumulative_error
    for mode in ("br", "gp", "cr"):
        assert real_runs[mode][0].blocks[-1].cumulative_error < lr.blocks[-1].cumulative_error, mode
        assert real_runs[mode][0].blocks[-1].refine_loss is not None
    assert lr.blocks[-1].refine_loss is None
    assert all(b.heldout_error is not None and b.heldout_error > 0 for b in lr.blocks)


@pytest.mark.slow  # shares the four refinements above
def test_reconstruction_leaves_masks_and_sparsity_alone(real_runs):
    lr, br = real_runs["lr"][0], real_runs["br"][0]
    first = [n for n in lr.masks if ".layer.0." in n]
    for name in first:  # block 0: same inputs, same base method -> the same masks, training or not
        assert torch.equal(lr.masks[name], br.masks[name])
    for mode, (res, model) in real_runs.items():
        for name, w in _weights(model).items():
            assert torch.equal(w != 0, res.masks[name]), (mode, name)
        assert res.achieved_sparsity == pytest.approx(0.6, abs=0.005)


def test_heldout_equals_calibration_error_on_the_same_texts(calib):
    res = _prune(tiny_model("bert"), calib, "wanda", 0.5, heldout=calib)
    for b in res.blocks:
        assert b.heldout_error == pytest.approx(b.cumulative_error, rel=1e-5)


def test_bad_reconstruction_options():
    from pruning_core.prune import methods

    for bad in ({"base": "akrp"}, {"mode": "xx"}, {"epochs": 0}, {"lr": 0.0}, {"self_generated": -1}):
        with pytest.raises(PrunescopeError):
            methods.get("reconstruction").options(bad)
    with pytest.raises(PrunescopeError):
        methods.get("akrp").options({"lambda0": 0.0})


# ---------------------------------------------------------------------------------- self-generated

def test_self_generated_fallback_uses_the_models_own_embeddings(shipped):
    net, tok = shipped
    seeds = list(TEXTS[:4])
    a = selfgen.generate(net, tok, seeds, 6, 48, seed=0)
    assert a == selfgen.generate(net, tok, seeds, 6, 48, seed=0)  # deterministic
    assert a != selfgen.generate(net, tok, seeds, 6, 48, seed=1)
    same = selfgen.generate(net, tok, seeds, 6, 48, seed=0, sweeps=0)  # the seeds as the tokenizer decodes them
    assert len(a) == 6 and sum(x != s for x, s in zip(a, same)) >= 5
    assert selfgen.masked_lm(None) is None


def test_self_generated_with_a_masked_lm_head(tmp_path, tokenizer):
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    mlm = BertForMaskedLM(BertConfig(vocab_size=30522, hidden_size=64, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=128))
    mlm.save_pretrained(tmp_path)
    assert selfgen.masked_lm(tmp_path) is not None
    texts = selfgen.generate(mlm.bert, tokenizer, list(TEXTS[:3]), 3, 32, seed=0, model_path=tmp_path, rate=0.5)
    same = selfgen.generate(mlm.bert, tokenizer, list(TEXTS[:3]), 3, 32, seed=0, model_path=tmp_path, sweeps=0)
    assert len(texts) == 3 and all(t != s for t, s in zip(texts, same))


@pytest.mark.slow  # a self-generated calibration set and a full experiment: about half a minute
def test_experiment_records_heldout_and_self_generated(tmp_path):
    from pruning_core.experiments.config import ExperimentConfig
    from pruning_core.experiments.experiment import run_experiment

    cfg = ExperimentConfig.create(method="reconstruction", sparsity=0.5, calib_size=16, seq_len=32, eval_size=32,
                                  options={"base": "wanda", "mode": "br", "epochs": 1, "self_generated": 8})
    out = run_experiment(cfg).to_json()
    assert out["heldout_error"] is not None and all(b["heldout_error"] is not None for b in out["blocks"])
    assert all(b["refine_loss"] for b in out["blocks"])


def test_heldout_falls_back_to_test_split_and_csv_without_validation_prunes(tmp_path, tokenizer):
    import pandas as pd

    from pruning_core.experiments.config import ExperimentConfig
    from pruning_core.experiments.experiment import run_experiment

    csv = tmp_path / "t.csv"
    texts = [f"{t} {i}" for i, t in enumerate(TEXTS)]
    pd.DataFrame({"text": texts, "label": [i % 2 for i in range(32)],
                  "split": ["train"] * 24 + ["test"] * 8}).to_csv(csv, index=False)
    held = calibration.heldout(tokenizer, str(csv), 8, 16, 0)
    assert held is not None and set(held.texts) <= set(texts[24:])
    model = tmp_path / "m"
    tiny_model("bert").save_pretrained(model)
    tokenizer.save_pretrained(model)
    cfg = ExperimentConfig.create(model=str(model), task=str(csv), method="wanda", sparsity=0.5, calib_size=8,
                                  seq_len=16)
    out = run_experiment(cfg).to_json()
    assert out["heldout_error"] is not None and out["achieved_sparsity"] == pytest.approx(0.5, abs=0.01)
