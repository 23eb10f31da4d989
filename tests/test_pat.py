"""PAT (pruning-aware tuning of hidden channels) and its prune-then-LoRA baseline."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from conftest import TEXTS, tiny_model
from conftest import calib_logits as logits
from pruning_core.prune.methods.pat import PAT
from pruning_core.prune.methods.pat_adapters import HSM, Adapters
from pruning_core.prune.methods.pat_train import Schedule
from pruning_core.prune.structured.run import StructuredContext
from pruning_core.prune.structured.shrink import remove
from pruning_core.prune.structured.structure import Structure
from pruning_core.prune.structured.units import UnitMasks

LABEL = dict(zip(TEXTS[:8], [1, 0, 1, 0, 1, 0, 1, 0]))  # TEXTS: positive, negative, ... (8 texts, 4 times)


def labels_of(calib):
    return torch.tensor([LABEL[t] for t in calib.texts])  # calibration order (length-sorted)


def hidden_masks(model, hidden):
    full = Structure.full(model.config)
    return UnitMasks(full.heads.float(), full.neurons.float(), hidden.float())


def random_adapters(model, remove_n, seed=0):
    """Adapters with every part non-trivial: random LoRA B, HSM B and scale, a 0/1 mask."""
    ad = Adapters(model, lora_rank=4, lora_alpha=8.0, hsm_rank=4, seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for lora in ad.lora.values():
            lora.B.copy_(torch.randn(lora.B.shape, generator=gen) * 0.05)
        for h in ad.hsm:
            h.B.copy_(torch.randn(h.B.shape, generator=gen) * 0.1)
            h.scale.copy_(1 + 0.2 * torch.randn(h.scale.shape, generator=gen))
        ad.mask[torch.randperm(len(ad.mask), generator=gen)[:remove_n]] = 0
    return ad


def test_merge_is_exact_and_slices_to_a_smaller_model(calib):
    model = tiny_model()
    dense = logits(model, calib)
    ad = random_adapters(model, 32)
    tuned = logits(model, calib)
    assert (tuned - dense).abs().max() > 1e-2  # the adapters really change the function
    mask = ad.mask.detach().clone()
    ad.merge()
    assert not model.bert.embeddings.LayerNorm._forward_hooks  # hooks gone
    merged = logits(model, calib, hidden_masks(model, mask))
    torch.testing.assert_close(merged, tuned, atol=1e-4, rtol=1e-4)
    structure = Structure.full(model.config).replace(hidden=mask != 0)
    small = remove(model, structure)
    assert small.bert.embeddings.word_embeddings.weight.shape[1] == 96
    assert small.bert.encoder.layer[0].attention.self.query.weight.shape == (128, 96)
    assert small.bert.encoder.layer[1].output.dense.weight.shape[0] == 96
    torch.testing.assert_close(logits(small, calib), tuned, atol=1e-4, rtol=1e-4)


def test_fold_keeps_the_function_and_makes_the_mask_binary(calib):
    model = tiny_model()
    ad = random_adapters(model, 16)
    with torch.no_grad():  # real-valued mask: removed channels exactly 0, kept ones anywhere in (0.5, 1.5)
        ad.mask.mul_(0.5 + torch.rand(len(ad.mask), generator=torch.Generator().manual_seed(3)))
    before = logits(model, calib)
    ad.fold_mask()
    assert set(ad.mask.tolist()) == {0.0, 1.0} and int((ad.mask == 0).sum()) == 16
    assert not ad.mask.requires_grad
    torch.testing.assert_close(logits(model, calib), before, atol=1e-5, rtol=1e-5)


def test_identity_loss_and_zero_init_b():
    h = HSM(64, 8, torch.Generator().manual_seed(0), torch.zeros(1))
    assert float(h.identity_loss().detach()) < 1e-10  # orthonormal rows at the start
    x = torch.randn(5, 64)
    mask = (torch.rand(64) > 0.3).float()
    torch.testing.assert_close(h(x, mask), mask * x)  # B = 0: identity times the mask
    with torch.no_grad():
        h.A.mul_(1.1)
    assert float(h.identity_loss().detach()) == pytest.approx(8 * (1.21 - 1) ** 2, rel=1e-4)
    loss = h.identity_loss()
    loss.backward()
    assert h.A.grad.abs().sum() > 0


def test_schedule_reaches_the_target_count():
    sched = Schedule.of(PAT().options({"steps": 100}))
    assert (sched.start, sched.select_end, sched.freeze, sched.decay) == (10, 60, 70, 10)
    counts = [sched.selected(t, 32) for t in range(100)]
    assert counts[:10] == [0] * 10 and counts[59] == 32 and counts[-1] == 32
    assert all(a <= b for a, b in zip(counts, counts[1:]))


@pytest.fixture
def task_file(tmp_path):
    path = tmp_path / "tiny.csv"
    import csv

    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for t, y in LABEL.items():
            w.writerow([t, y])
    return str(path)


def context(model, tokenizer, calib, task, budget, **options):
    opts = PAT().options({"steps": 20, "batch_size": 8, "lr": 3e-3, "lora_rank": 4, "hsm_rank": 4} | options)
    return StructuredContext(model, tokenizer, task, calib, labels_of(calib), budget, opts, 0, 20.0)


def task_loss(model, calib):
    return float(F.cross_entropy(logits(model, calib), labels_of(calib)))


@pytest.mark.parametrize("baseline", [False, True])
def test_pat_removes_exactly_the_budget_and_learns(calib, tokenizer, task_file, baseline):
    model = tiny_model()
    start = task_loss(model, calib)
    reports = []
    ctx = context(model, tokenizer, calib, task_file, 0.25, baseline=baseline)
    ctx.report = reports.append
    structure, log = PAT().prune_structured(ctx)
    assert structure.kept_hidden == 96 and len(structure.hidden) == 128
    small = remove(ctx.model, structure)
    end = task_loss(small, calib)
    assert end < 0.5 * start  # 8 texts memorised through LoRA (and HSMs) despite the removed channels
    steps = [e for e in log if "step" in e]
    if not baseline:
        sched = Schedule.of(ctx.options)
        assert steps[0]["channels_at_zero"] == 0
        frozen = [e for e in steps if e["step"] >= sched.freeze]
        assert frozen and all(e["channels_at_zero"] == 32 and e["selected"] == 32 for e in frozen)
    else:
        assert all(e["channels_at_zero"] == 32 for e in steps)
    assert log[-1]["removed_channels"] == 32
    assert reports and reports[-1].step == 20 and reports[-1].flops_kept < 1


def test_budget_zero_keeps_every_channel(calib, tokenizer, task_file):
    ctx = context(tiny_model(), tokenizer, calib, task_file, 0.0)
    structure, _ = PAT().prune_structured(ctx)
    assert structure.hidden.all()


def test_bad_schedule_is_rejected():
    from pruning_core.core.errors import PrunescopeError

    with pytest.raises(PrunescopeError):
        PAT().options({"prune_start": 0.6, "decay": 0.2, "prune_end": 0.7})
    with pytest.raises(PrunescopeError):
        PAT().options({"steps": 5})


@pytest.mark.slow
def test_pat_end_to_end_on_the_shipped_model():
    from pruning_core.experiments.config import ExperimentConfig
    from pruning_core.experiments.experiment import run_experiment

    cfg = ExperimentConfig.create(method="pat", sparsity=0.25, calib_size=32, eval_size=100, device="cpu",
                                  options={"steps": 30, "train_size": 200})
    res = run_experiment(cfg)
    assert res.prune.structure["hidden_kept"] == 288 and res.prune.structure["hidden_size"] == 384
    assert res.pruned.accuracy > 0.6
