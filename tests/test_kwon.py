"""Kwon et al. 2022 (method `kwon`): Fisher mask search under a FLOPs budget, mask rearrangement,
least-squares mask tuning; end to end on the shipped rotten_tomatoes model."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch

from conftest import tiny_model
from pruning_core.core.errors import PrunescopeError
from pruning_core.prune.methods import METHODS
from pruning_core.prune.methods import kwon, kwon_search, kwon_tuning
from pruning_core.prune.structured.run import StructuredContext
from pruning_core.prune.structured.structure import StepRecord, Structure, average_length, head_flops
from pruning_core.prune.structured.units import UnitMasks, masked


def tiny_ctx(calib, budget: float, model=None, **options) -> StructuredContext:
    labels = torch.randint(0, 2, (calib.n_examples,), generator=torch.Generator().manual_seed(0))
    return StructuredContext(model if model is not None else tiny_model(), None, "rotten_tomatoes", calib, labels,
                             budget, kwon.Kwon().options(options), 0, average_length(calib.batches))


def test_registered_with_validated_options():
    assert METHODS["kwon"] is kwon.Kwon and kwon.Kwon.structured
    assert kwon.Kwon().options({"damping": 0}).damping == 0.0
    with pytest.raises(PrunescopeError):
        kwon.Kwon().options({"damping": -1.0})
    with pytest.raises(PrunescopeError):
        kwon.Kwon().options({"lr": 1.0})


@pytest.mark.parametrize("seed", range(4))
def test_search_is_optimal_over_every_subset_of_units(seed):
    """With equal costs within each kind, the best h heads are the top-h and the best neurons the top-f
    that fit, so Algorithm 1 over all h is the exact optimum: compare with all 2^10 unit subsets."""
    g = torch.Generator().manual_seed(seed)
    heads, neurons = torch.rand(2, 2, generator=g), torch.rand(2, 3, generator=g)
    head_cost, neuron_cost = 3.0 + float(torch.rand(1, generator=g)) * 4, 1.0
    total = 4 * head_cost + 6 * neuron_cost
    units = torch.cat([heads.flatten(), neurons.flatten()]).double()
    costs = [head_cost] * 4 + [neuron_cost] * 6
    for frac in (0.0, 0.15, 0.4, 0.55, 0.8, 1.0):
        budget = frac * total
        best = min(float(units.sum() - sum(units[i] for i in range(10) if keep[i]))
                   for keep in itertools.product([0, 1], repeat=10)
                   if sum(c for c, k in zip(costs, keep) if k) <= budget)
        h, n, pruned = kwon_search.search(heads, neurons, head_cost, neuron_cost, budget)
        assert h.shape == heads.shape and n.shape == neurons.shape
        assert int(h.sum()) * head_cost + int(n.sum()) * neuron_cost <= budget
        assert pruned == pytest.approx(best, abs=1e-12)
        assert pruned == pytest.approx(float(heads[~h].sum() + neurons[~n].sum()), abs=1e-6)


@pytest.mark.parametrize("budget", [0.3, 0.7])
def test_structure_honours_and_uses_the_flops_budget(calib, budget):
    ctx = tiny_ctx(calib, budget, rescale=budget == 0.3)
    steps = []
    ctx.report = steps.append
    structure, log = kwon.Kwon().prune_structured(ctx)
    cfg = ctx.model.config
    dense = Structure.full(cfg).flops(ctx.seq_len)
    allowed = (1 - budget) * dense
    assert structure.flops(ctx.seq_len) <= allowed
    assert structure.flops(ctx.seq_len) > allowed - head_flops(cfg.hidden_size, structure.head_dim, ctx.seq_len)
    assert all(isinstance(r, StepRecord) for r in steps)
    assert [r.step for r in steps] == list(range(1, steps[0].total + 1))
    assert log[0]["heads_kept"] == int(structure.heads.sum())
    assert [e["heads_kept"] for e in log[1:]] == structure.heads.sum(1).tolist()


def naive_best_swaps(keep, fisher, steps):
    """Plain best-improvement local search over single swaps, every candidate evaluated in full."""
    keep = keep.clone()
    for _ in range(steps):
        current = kwon_search.pruned_loss(keep, fisher)
        best = None
        for p in (~keep).nonzero().flatten().tolist():
            for k in keep.nonzero().flatten().tolist():
                trial = keep.clone()
                trial[p], trial[k] = True, False
                value = kwon_search.pruned_loss(trial, fisher)
                if best is None or value < best[0]:
                    best = (value, trial)
        if best is None or not best[0] < current - 1e-12 * abs(current):
            break
        keep = best[1]
    return keep


def test_rearrangement_lowers_the_quadratic_objective_and_keeps_counts(calib):
    g = torch.Generator().manual_seed(1)
    for n, kept in ((9, 4), (12, 7), (10, 1)):
        grads = torch.randn(6, n, generator=g, dtype=torch.float64)
        fisher = grads.T @ grads
        keep = torch.zeros(n, dtype=torch.bool)
        keep[torch.randperm(n, generator=g)[:kept]] = True
        new, swaps = kwon_search.rearrange(keep, fisher, 100)
        assert int(new.sum()) == kept
        assert kwon_search.pruned_loss(new, fisher) <= kwon_search.pruned_loss(keep, fisher)
        assert torch.equal(new, naive_best_swaps(keep, fisher, 100))  # same swaps as the plain search
        assert swaps >= int((new & ~keep).sum())
    # a real Fisher block (tiny model, per-example gradients), the step cap respected
    ctx = tiny_ctx(calib, 0.5)
    fisher = kwon_search.mask_gradients(ctx.model, list(ctx.batches()), Structure.full(ctx.model.config))
    assert fisher.heads.shape[0] == calib.n_examples
    block = fisher.block("neurons", 0)
    keep = fisher.neurons[:, 0].pow(2).sum(0) > fisher.neurons[:, 0].pow(2).sum(0).median()
    new, swaps = kwon_search.rearrange(keep, block, 3)
    assert swaps <= 3 and int(new.sum()) == int(keep.sum())
    assert kwon_search.pruned_loss(new, block) <= kwon_search.pruned_loss(keep, block)
    assert torch.allclose(block.diagonal(), fisher.diagonal()[1][0])


def layer0_capture(model, batches, masks):
    """Layer 0 of `model` under `masks`, on real tokens per batch: the LayerNorm inputs of attention and
    FFN, the attention output projection's input (the masked head contexts) and the residual."""
    out = {"heads": [], "neurons": [], "ctx": [], "res": []}
    layer = model.bert.encoder.layer[0]
    state = {}

    def grab(key, i=0):
        return lambda _m, args: out[key].append(args[i][state["keep"]])

    handles = [layer.attention.output.LayerNorm.register_forward_pre_hook(grab("heads")),
               layer.output.LayerNorm.register_forward_pre_hook(grab("neurons")),
               layer.attention.output.dense.register_forward_pre_hook(grab("ctx")),
               layer.attention.output.register_forward_pre_hook(grab("res", 1))]
    try:
        with torch.no_grad(), masked(model, masks):
            for ids, mask, _ in batches:
                state["keep"] = mask.bool()
                model.bert(input_ids=ids, attention_mask=mask)
    finally:
        for h in handles:
            h.remove()
    return {k: torch.cat(v).double() for k, v in out.items()}


def test_mask_tuning_lowers_the_sublayer_error_on_the_shipped_model(shipped, calib):
    model = copy.deepcopy(shipped[0])
    ctx = tiny_ctx(calib, 0.5, model=model)
    batches = list(ctx.batches())
    full = Structure.full(model.config)
    heads, neurons = full.heads.clone(), full.neurons.clone()
    heads[0, 1::2] = False
    neurons[0, torch.randperm(neurons.shape[1], generator=torch.Generator().manual_seed(0))[:900]] = False
    structure = full.replace(heads=heads, neurons=neurons)
    zero_one = UnitMasks.of(structure, hidden=False)
    dense = layer0_capture(model, batches, UnitMasks.of(full, hidden=False))
    pruned = layer0_capture(model, batches, zero_one)
    before = {k: float((pruned[k] - dense[k]).pow(2).sum()) for k in ("heads", "neurons")}
    norm = {k: float(dense[k].pow(2).sum()) for k in ("heads", "neurons")}

    damping = 1e-2
    masks, logs = kwon_tuning.tune_masks(model, structure, batches, damping, lambda *a: None)
    assert (masks.heads[0, 1::2] == 0).all() and masks.neurons.abs().max() <= kwon_tuning.SCALE_RANGE
    # layer 0's head scales solve the ridge problem built explicitly: column h = vec(ctx_h W_o,h^T)
    attn = model.bert.encoder.layer[0].attention.output.dense
    dh = full.head_dim
    w = attn.weight.detach().double()
    cols = torch.stack([(pruned["ctx"][:, h * dh:(h + 1) * dh] @ w[:, h * dh:(h + 1) * dh].T).flatten()
                        for h in range(0, 12, 2)], 1)
    y = (dense["heads"] - pruned["res"] - attn.bias.detach().double()).flatten()
    lam = damping * float(cols.pow(2).sum(0).mean())
    ridge = torch.linalg.lstsq(torch.cat([cols, lam ** 0.5 * torch.eye(6, dtype=cols.dtype)]),
                               torch.cat([y, lam ** 0.5 * torch.ones(6, dtype=y.dtype)])[:, None]).solution[:, 0]
    assert torch.allclose(masks.heads[0, ::2].double(), ridge, atol=1e-4)
    assert masks.heads[0, ::2].ne(1).any()

    with torch.no_grad(), masked(model, masks):
        tuned_logits = torch.cat([model(input_ids=i, attention_mask=m).logits for i, m, _ in batches])
    kwon_tuning.fold_scales(model, masks)
    with torch.no_grad(), masked(model, zero_one):
        folded_logits = torch.cat([model(input_ids=i, attention_mask=m).logits for i, m, _ in batches])
    assert torch.allclose(tuned_logits, folded_logits, atol=1e-4)  # folding = the float masks

    tuned = layer0_capture(model, batches, zero_one)
    after = {k: float((tuned[k] - dense[k]).pow(2).sum()) for k in ("heads", "neurons")}
    assert after["heads"] < 0.98 * before["heads"] and after["neurons"] < 0.98 * before["neurons"]
    # the logged errors are the measured ones (the normal equations agree with the model)
    assert logs[0]["heads_ls_error_before"] == pytest.approx(before["heads"] / norm["heads"], rel=1e-3)
    assert logs[0]["heads_ls_error_after"] == pytest.approx(after["heads"] / norm["heads"], rel=1e-3)
    assert logs[0]["neurons_ls_error_after"] == pytest.approx(after["neurons"] / norm["neurons"], rel=1e-3)
    assert all(e["heads_ls_error_after"] <= e["heads_ls_error_before"] for e in logs)
    assert all(e["neurons_ls_error_after"] <= e["neurons_ls_error_before"] for e in logs)


def test_end_to_end_on_rotten_tomatoes():
    from pruning_core.experiments.config import ExperimentConfig
    from pruning_core.experiments.experiment import run_experiment

    res = run_experiment(ExperimentConfig.create(method="kwon", sparsity=0.4, calib_size=32, eval_size=100,
                                                 device="cpu"))
    info = res.prune.structure
    assert 0.4 - 1e-9 <= info["flops_reduction"] <= 0.41
    assert info["params"] < info["params_dense"]
    assert info["log"][0]["stage"] == "search"
    # measured: dense 0.89, pruned 0.89 on these 100 examples (chance 0.5)
    assert res.pruned.accuracy >= 0.8 and res.pruned.accuracy >= res.dense.accuracy - 0.06
