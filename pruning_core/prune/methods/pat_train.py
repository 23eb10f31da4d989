"""PAT's training: the mask schedule, the labelled training texts and the tuning loop (see
`pruning_core.prune.methods.pat` for the method and its schedule)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from pruning_core.core.errors import PrunescopeError
from pruning_core.prune.methods.pat_adapters import Adapters, layer_norms
from pruning_core.prune.records import StepRecord
from pruning_core.prune.structured.structure import Structure


class TrainOptions(Protocol):
    """The options the training reads (`PATOptions` has them)."""

    steps: int
    lr: float
    mask_lr: float
    batch_size: int
    train_size: int
    identity_weight: float
    prune_start: float
    decay: float
    prune_end: float


@dataclass(frozen=True)
class Schedule:
    """Step indices of the mask schedule (see the docstring of `pruning_core.prune.methods.pat`)."""

    start: int  # t0
    select_end: int  # t_s: k(t) reaches K at t_s - 1
    freeze: int  # t1: the mask is frozen after step t1 - 1
    decay: int  # D

    @classmethod
    def of(cls, opts: TrainOptions) -> "Schedule":
        t = opts.steps
        freeze = round(opts.prune_end * t)
        decay = max(1, round(opts.decay * t))
        start = min(round(opts.prune_start * t), freeze - decay - 1)
        if start < 0:
            raise PrunescopeError(f"{t} steps are too few for this mask schedule; raise steps or prune_end")
        return cls(start, freeze - decay, freeze, decay)

    def selected(self, step: int, total: int) -> int:
        """How many channels are selected after step `step` (of K = `total`)."""
        if step < self.start:
            return 0
        return min(total, math.ceil(total * (step - self.start + 1) / (self.select_end - self.start)))


# ---------------------------------------------------------------------------------------------- data

def training_data(ctx, opts: TrainOptions):
    """(token id lists, labels) of a seeded sample of the task's labelled training split."""
    from pruning_core.data import tasks as data
    from pruning_core.data.calibration import _source

    split = data.load(_source(ctx.task), "train")
    n = min(opts.train_size, len(split))
    idx = sorted(np.random.default_rng(ctx.seed).choice(len(split), size=n, replace=False))
    texts = [split.texts[i] for i in idx]
    limit = min(ctx.calib.seq_len, ctx.tokenizer.model_max_length)
    ids = ctx.tokenizer(texts, truncation=True, max_length=limit)["input_ids"]
    return ids, torch.tensor([split.labels[i] for i in idx])


def batch(tokenizer, ids, labels, rows, device):
    """(input_ids, attention_mask, labels) of training examples `rows`, right-padded to the longest."""
    width = max(len(ids[i]) for i in rows)
    x = torch.full((len(rows), width), tokenizer.pad_token_id or 0, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for r, i in enumerate(rows):
        x[r, :len(ids[i])] = torch.tensor(ids[i])
        mask[r, :len(ids[i])] = 1
    return x.to(device), mask.to(device), labels[rows].to(device)


@torch.no_grad()
def activation_importance(model, tokenizer, ids, device, limit: int = 512, batch_size: int = 32) -> torch.Tensor:
    """Mean |LayerNorm output| per hidden channel over real tokens, summed over every LayerNorm."""
    score = torch.zeros(model.config.hidden_size, dtype=torch.float64, device=device)
    state = {}

    def hook(_m, _i, out):
        keep = state["mask"].bool()
        score.add_(out[keep].abs().double().sum(0) / keep.sum())

    handles = [n.register_forward_hook(hook) for n in layer_norms(model)]
    try:
        rows = list(range(min(limit, len(ids))))
        for s in range(0, len(rows), batch_size):
            x, mask, _ = batch(tokenizer, ids, torch.zeros(len(ids), dtype=torch.long), rows[s:s + batch_size], device)
            state["mask"] = mask
            model(input_ids=x, attention_mask=mask)
    finally:
        for h in handles:
            h.remove()
    return score


# ------------------------------------------------------------------------------------------ training

def train(ctx, adapters: Adapters, ids, labels, opts: TrainOptions, n_remove: int, schedule: Schedule | None,
          log: list) -> None:
    """The tuning loop; with a `schedule`, the mask is annealed as `pruning_core.prune.methods.pat` says."""
    model, device = ctx.model, ctx.device
    d = len(adapters.mask)
    full = Structure.full(model.config)
    dense_flops = full.flops(ctx.seq_len)
    params = [p for n, p in adapters.named_parameters() if p.requires_grad and n != "mask"]
    groups = [{"params": params, "lr": opts.lr}]
    if adapters.mask.requires_grad:
        groups.append({"params": [adapters.mask], "lr": opts.mask_lr})
    opt = torch.optim.AdamW(groups, weight_decay=0.0)
    gen = torch.Generator().manual_seed(ctx.seed)
    order: list[int] = []
    selected = torch.zeros(d, dtype=torch.bool, device=device)
    sel_step = torch.zeros(d, dtype=torch.long, device=device)
    sel_value = torch.zeros(d, dtype=adapters.mask.dtype, device=device)
    every = max(1, opts.steps // 30)
    model.eval()
    for step in range(opts.steps):
        if len(order) < opts.batch_size:
            order += torch.randperm(len(ids), generator=gen).tolist()
        rows, order = order[:opts.batch_size], order[opts.batch_size:]
        x, mask, y = batch(ctx.tokenizer, ids, labels, rows, device)
        task = F.cross_entropy(model(input_ids=x, attention_mask=mask).logits, y)
        ident = adapters.identity_loss() if schedule is not None else task.new_zeros(())
        loss = task + opts.identity_weight * ident
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        label = "tuning"
        if schedule is not None and adapters.mask.requires_grad:
            with torch.no_grad():
                m = adapters.mask
                m.clamp_(min=0)
                want = schedule.selected(step, n_remove)
                if want > int(selected.sum()):
                    cand = torch.where(selected, torch.full_like(m, float("inf")), m)
                    new = torch.argsort(cand, stable=True)[:want - int(selected.sum())]
                    selected[new], sel_step[new], sel_value[new] = True, step, m[new]
                ceiling = sel_value * (1 - (step - sel_step + 1).to(m.dtype) / schedule.decay).clamp(min=0)
                m.copy_(torch.where(selected, torch.minimum(m, ceiling), m))
                if step == schedule.freeze - 1:
                    adapters.fold_mask(selected)
                    label = "mask frozen"
                else:
                    label = f"annealing: {int(selected.sum())} of {n_remove} channels selected"
        removed = int((adapters.mask.detach() == 0).sum())
        kept = full.replace(hidden=adapters.mask.detach() != 0).flops(ctx.seq_len) / dense_flops
        if step % every == 0 or step == opts.steps - 1 or label == "mask frozen":
            log.append({"step": step + 1, "loss": loss.item(), "task_loss": task.item(), "identity_loss": ident.item(),
                        "selected": int(selected.sum()) if schedule is not None else n_remove,
                        "channels_at_zero": removed})
            ctx.report(StepRecord(step + 1, opts.steps, f"{label}; {removed} of {d} channels at 0", kept,
                                  loss.item()))
