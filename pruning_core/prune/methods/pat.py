"""PAT: pruning-aware tuning of hidden channels, adapted to post-LayerNorm BERT encoders.

Liu, Yang, Chen, Zhang, Wang, Du, Du. "PAT: Pruning-Aware Tuning for Large Language Models",
AAAI 2025 (arXiv 2408.14721).

The hidden width d of the model is pruned while the model is fine-tuned on the task:

- Hybrid Sparsification Modules (HSM) ``x -> scale * m * (x + B A x)`` (A: d -> r with orthonormal
  rows at the start, B: r -> d zero-initialised, ``scale`` a trainable per-channel vector starting at 1)
  on every sub-layer output that writes into the residual stream: the embedding sum (before its
  LayerNorm), the attention output projection and the FFN output projection of every layer;
- one trainable channel mask m (a real value per channel, starting at 1) shared by all HSMs and by
  every LayerNorm output (BERT is post-LayerNorm: the residual stream is the LayerNorm output, so the
  mask multiplies it too; at a 0/1 mask a removed channel is exactly zero at every LayerNorm input and
  output, which is what ``structured.units.masked`` computes and ``shrink.remove`` reproduces);
- LoRA (rank ``lora_rank``, scaling ``lora_alpha / lora_rank``, B zero-initialised) on Q, K, V, the
  attention output, FFN in and out of every layer and the pooler; every original weight is frozen;
- loss = cross-entropy on the task's labelled training split + ``identity_weight`` * the mean over
  HSMs of ||A A^T - I_r||_F^2 (the identity loss keeps A a rotation, leaving scaling to ``scale``/m).

Mask schedule (T = ``steps``, K = round(budget * d) channels to remove; t counts optimiser steps
from 0; the schedule runs after the optimiser step of step t; m is kept >= 0 after every step):
1. t < t0 = round(prune_start * T): m trains freely with the rest (its value is the channel's learned
   importance);
2. t0 <= t < t_s = t1 - D (t1 = round(prune_end * T), D = round(decay * T) >= 1): the number of selected
   channels grows linearly, k(t) = ceil(K (t - t0 + 1) / (t_s - t0)), reaching K at t = t_s - 1; the
   newly selected channels are the unselected ones with the lowest mask values (a selection is never
   undone);
3. a channel selected at step s with value v gets the ceiling v * max(0, 1 - (t - s + 1) / D) on its
   mask value at every step t >= s: it falls linearly to exactly 0 in D steps (gradients may lower it
   further, never raise it above the ceiling);
4. after step t1 - 1 the mask is frozen at exactly 0 (the K selected channels) and 1 (the others): the
   kept channels' values are first folded into every HSM scale and every LayerNorm's weight and bias,
   so the function does not change at the freeze; steps t1..T-1 tune LoRA and HSMs with the hard mask.
Defaults: prune_start 0.1, decay 0.1, prune_end 0.7 (select over 10-60% of training, frozen at 70%).

Finally LoRA is merged (W += B_l A_l alpha/r), then every HSM: after a linear W x + b it becomes
W' = diag(scale * m) (I + B A) W, b' = diag(scale * m) (I + B A) b; after the embeddings each table's rows
e become diag(scale * m) (I + B A) e. The model so obtained, under ``masked(model, hidden=m)``, computes
exactly what the tuned model computed; ``shrink.remove`` slices the kept channels out.

Baseline (``baseline=True``, prune-then-LoRA): the K channels with the lowest mean |LayerNorm output|
(summed over all LayerNorms, real tokens of up to 512 training texts) are removed once, before
training; the 0/1 mask is fixed; only LoRA trains (same steps, batch, lr; no HSM, no identity loss);
same merge and slicing.

Deviations from the paper: PAT targets pre-norm decoder LLMs and places HSMs between attention and FFN
(after the RMSNorm-ed residual); here they sit on the sub-layer outputs and the mask also multiplies
every LayerNorm output (post-LN encoder). The paper's HSM operator is a "Hybrid-Identity-Operator";
here it is I + B A with a trainable per-channel scale. The mask schedule above (linear selection by
lowest learned mask value, linear ceiling decay, freeze) is ours; the paper's exact decay constants
for LLM instruction tuning do not transfer to a small classifier. Training uses a seeded sample of
``train_size`` labelled training texts truncated to the calibration sequence length, AdamW with weight
decay 0, constant learning rates, dropout off (the model stays in eval mode); the classifier layer is
frozen (the dense model is already a fine-tuned classifier).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pruning_core.model.arch import arch_of
from pruning_core.core.errors import PrunescopeError
from pruning_core.prune.methods.base import StructuredMethod, knob
from pruning_core.prune.records import StepRecord
from pruning_core.prune.structured.structure import Structure


LEARNED_MASK = {"baseline": False}  # the baseline has no learned mask or sparsification modules


@dataclass(frozen=True)
class PATOptions:
    baseline: bool = knob(False, "Baseline: prune, then LoRA",  # fixed mask by activation magnitude, LoRA only
                          "instead of PAT: remove the channels with the lowest mean |LayerNorm output| once, before "
                          "training, then train LoRA only (no sparsification modules, no learned mask)")
    steps: int = knob(300, "Training steps",
                      "optimiser steps on the task's labelled training texts; the mask is annealed to 0/1 during "
                      "the first 70% and frozen for the rest", ge=10, ui_max=100_000)
    lr: float = knob(1e-3, "Learning rate", "AdamW learning rate of LoRA and the sparsification modules (weight "
                     "decay 0)", gt=0, lt=1, ui_min=1e-7, ui_max=0.99, step=1e-4, format="%.1e")
    lora_rank: int = knob(8, "LoRA rank", "rank of the low-rank update on Q, K, V, attention output, FFN in/out "
                          "and pooler", ge=1, ui_max=384)
    batch_size: int = knob(16, "Batch size", ge=1, ui_max=4096, more=True)
    train_size: int = knob(2000, "Training texts", "a seeded sample of the task's training split", ge=1, more=True)
    lora_alpha: float = knob(16.0, "LoRA α", "LoRA scaling α / rank", gt=0, ui_min=1e-3, ui_max=1e4, more=True)
    mask_lr: float = knob(1e-2, "Mask learning rate", gt=0, lt=1, ui_min=1e-7, ui_max=0.99, step=1e-3,
                          format="%.1e", more=True, shown_when=LEARNED_MASK)
    hsm_rank: int = knob(8, "Sparsification-module rank", "rank r of x → scale · m · (x + B A x)", ge=1,
                         ui_max=384, more=True, shown_when=LEARNED_MASK)
    identity_weight: float = knob(1.0, "Identity-loss weight", "weight of ||A Aᵀ − I||² in the loss", ge=0,
                                  ui_max=1e4, more=True, shown_when=LEARNED_MASK)
    prune_start: float = knob(0.1, "Selection starts at (fraction of steps)", "steps before channels are selected",
                              ge=0, ui_max=1.0, more=True, shown_when=LEARNED_MASK)
    decay: float = knob(0.1, "Mask decay (fraction of steps)",
                        "a selected channel's mask falls linearly to 0 in this long", gt=0, ui_min=0.001,
                        ui_max=1.0, more=True, shown_when=LEARNED_MASK)
    prune_end: float = knob(0.7, "Mask frozen at (fraction of steps)", "the mask is frozen at 0/1 after this",
                            gt=0, le=1, ui_min=0.01, more=True, shown_when=LEARNED_MASK)

    def check(self) -> None:
        """The schedule's order, which one field's bounds cannot say."""
        if not self.prune_start + self.decay < self.prune_end:
            raise PrunescopeError(f"pat needs prune_start + decay < prune_end; got {self.prune_start:g} + "
                                  f"{self.decay:g} >= {self.prune_end:g}")


@dataclass(frozen=True)
class Schedule:
    """Step indices of the mask schedule (see the module docstring)."""

    start: int  # t0
    select_end: int  # t_s: k(t) reaches K at t_s - 1
    freeze: int  # t1: the mask is frozen after step t1 - 1
    decay: int  # D

    @classmethod
    def of(cls, opts: PATOptions) -> "Schedule":
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


# ------------------------------------------------------------------------------------------- modules

class LoRA(nn.Module):
    """Low-rank update of one linear: adds (x A^T B^T) * alpha / r to its output."""

    def __init__(self, linear: nn.Linear, rank: int, alpha: float, gen: torch.Generator):
        super().__init__()
        w = linear.weight
        bound = 1 / math.sqrt(linear.in_features)
        self.A = nn.Parameter((torch.rand(rank, linear.in_features, generator=gen) * 2 - 1).mul(bound).to(w))
        self.B = nn.Parameter(torch.zeros(linear.out_features, rank, dtype=w.dtype, device=w.device))
        self.scaling = alpha / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x @ self.A.T) @ self.B.T * self.scaling

    def delta(self) -> torch.Tensor:
        return self.B @ self.A * self.scaling


class HSM(nn.Module):
    """x -> scale * m * (x + B A x), with m the shared channel mask (a tensor owned by `Adapters`)."""

    def __init__(self, d: int, rank: int, gen: torch.Generator, like: torch.Tensor, trainable: bool = True):
        super().__init__()
        q, _ = torch.linalg.qr(torch.randn(d, rank, generator=gen, dtype=torch.float64))
        self.A = nn.Parameter(q.T.contiguous().to(like), requires_grad=trainable)  # orthonormal rows
        self.B = nn.Parameter(like.new_zeros(d, rank), requires_grad=trainable)
        self.scale = nn.Parameter(like.new_ones(d), requires_grad=trainable)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.scale * mask * (x + (x @ self.A.T) @ self.B.T)

    def matrix(self, mask: torch.Tensor) -> torch.Tensor:
        """The d x d matrix diag(scale * m) (I + B A) this module multiplies by."""
        eye = torch.eye(self.B.shape[0], dtype=self.B.dtype, device=self.B.device)
        return (self.scale * mask)[:, None] * (eye + self.B @ self.A)

    def identity_loss(self) -> torch.Tensor:
        eye = torch.eye(self.A.shape[0], dtype=self.A.dtype, device=self.A.device)
        return (self.A @ self.A.T - eye).pow(2).sum()


_LORA_NAMES = {"q": "query", "k": "key", "v": "value", "attn_out": "attn_out", "ffn_in": "ffn_in", "ffn_out": "ffn_out"}


def lora_targets(model) -> dict[str, nn.Linear]:
    """The linears that get LoRA: Q, K, V, attention output, FFN in and out of every layer; the pooler."""
    arch = arch_of(model)
    out = {f"{i}.{_LORA_NAMES[kind]}": lin for i, block in enumerate(arch.blocks(model))
           for kind, lin in arch.block_linears(block).items()}
    pooler = arch.pooler_dense(model)
    if pooler is not None:
        out["pooler"] = pooler
    return out


def layer_norms(model) -> list[nn.Module]:
    return arch_of(model).layer_norms(model)


class Adapters(nn.Module):
    """The trainable additions, attached to a BERT classifier by hooks (its own weights untouched until
    `merge`): LoRA per target linear, one HSM per residual-stream write, the shared mask."""

    def __init__(self, model, lora_rank: int, lora_alpha: float, hsm_rank: int, seed: int, hsm: bool = True,
                 train_mask: bool = True, train_lora: bool = True):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        d = model.config.hidden_size
        like = next(model.parameters())
        self.model = [model]  # not a submodule: its weights are not ours
        self.mask = nn.Parameter(like.new_ones(d), requires_grad=train_mask)
        self.lora = nn.ModuleDict({k.replace(".", "_"): LoRA(lin, lora_rank, lora_alpha, gen)
                                   for k, lin in lora_targets(model).items()})
        for p in self.lora.parameters():
            p.requires_grad_(train_lora)
        rank = hsm_rank if hsm else 0
        n_hsm = 1 + 2 * model.config.num_hidden_layers
        self.hsm = nn.ModuleList(HSM(d, rank, gen, like, trainable=hsm) for _ in range(n_hsm))
        self.handles = []
        for p in model.parameters():
            p.requires_grad_(False)
        self._attach(model)

    def _attach(self, model) -> None:
        targets = lora_targets(model)
        writes = {f"{i}.attn_out": 1 + 2 * i for i in range(model.config.num_hidden_layers)} | \
                 {f"{i}.ffn_out": 2 + 2 * i for i in range(model.config.num_hidden_layers)}

        def linear_hook(key):
            lora, h = self.lora[key.replace(".", "_")], writes.get(key)

            def hook(_mod, args, out):
                out = out + lora(args[0])
                return self.hsm[h](out, self.mask) if h is not None else out
            return hook

        for key, lin in targets.items():
            self.handles.append(lin.register_forward_hook(linear_hook(key)))
        emb_norm = arch_of(model).embedding_norm(model)
        self.handles.append(emb_norm.register_forward_pre_hook(lambda _m, args: (self.hsm[0](args[0], self.mask),)))
        for norm in layer_norms(model):
            self.handles.append(norm.register_forward_hook(lambda _m, _i, out: out * self.mask))

    def detach(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []

    def identity_loss(self) -> torch.Tensor:
        return torch.stack([h.identity_loss() for h in self.hsm]).mean()

    @torch.no_grad()
    def fold_mask(self, removed: torch.Tensor | None = None) -> None:
        """Move the kept channels' mask values into every HSM scale and LayerNorm weight and bias, then
        set the mask to exactly 0 on `removed` (default: the channels at 0) and 1 elsewhere: the function
        does not change except for removed channels whose value was not yet exactly 0."""
        m = self.mask.detach()
        kept = m > 0 if removed is None else ~removed
        factor = torch.where(kept, m, torch.ones_like(m))
        for h in self.hsm:
            h.scale.mul_(factor)
        for norm in layer_norms(self.model[0]):
            norm.weight.mul_(factor)
            norm.bias.mul_(factor)
        self.mask.copy_(kept.to(m.dtype))
        self.mask.requires_grad_(False)

    @torch.no_grad()
    def merge(self) -> None:
        """Write LoRA and HSMs into the model's weights and remove the hooks: afterwards
        `masked(model, hidden=mask)` computes what the model with adapters computed."""
        model = self.model[0]
        self.detach()
        targets = lora_targets(model)
        for key, lin in targets.items():
            lin.weight.add_(self.lora[key.replace(".", "_")].delta().to(lin.weight))
        arch = arch_of(model)
        for i, layer in enumerate(arch.blocks(model)):
            for lin, h in ((arch.sublayer(layer, "attn").proj, 1 + 2 * i), (arch.sublayer(layer, "ffn").proj, 2 + 2 * i)):
                mat = self.hsm[h].matrix(self.mask).to(torch.float64)
                lin.weight.copy_((mat @ lin.weight.double()).to(lin.weight))
                if lin.bias is not None:
                    lin.bias.copy_((mat @ lin.bias.double()).to(lin.bias))
        mat = self.hsm[0].matrix(self.mask).to(torch.float64)
        for table in arch.embedding_tables(model):
            table.weight.copy_((table.weight.double() @ mat.T).to(table.weight))


# ---------------------------------------------------------------------------------------------- data

def training_data(ctx, opts: PATOptions):
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

def train(ctx, adapters: Adapters, ids, labels, opts: PATOptions, n_remove: int, schedule: Schedule | None,
          log: list) -> None:
    """The tuning loop; with a `schedule`, the mask is annealed as the module docstring says."""
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


class PAT(StructuredMethod):
    name = "pat"
    paper = "Liu et al., PAT: Pruning-Aware Tuning for Large Language Models (AAAI 2025)"
    Options = PATOptions
    colour = "#843C39"
    removes = "hidden channels"

    def note(self, options) -> str:
        return (("Prune-then-LoRA baseline" if options.baseline else "PAT") + f": {options.steps} training steps "
                f"of batch {options.batch_size}, a forward and backward pass each: much slower than the one-shot "
                "methods (kwon takes seconds; 300 steps take minutes on a CPU).")
    budget_meaning = "fraction of hidden channels removed"
    # Hidden channels are sliced out physically into a PrunedBertForSequenceClassification: BERT only.
    families = ("bert",)

    def prune_structured(self, ctx):
        model, opts = ctx.model, ctx.options
        d = model.config.hidden_size
        n_remove = round(ctx.budget * d)
        if n_remove >= d:
            raise PrunescopeError(f"pat cannot remove all {d} hidden channels; lower the sparsity")
        ids, labels = training_data(ctx, opts)
        t0 = time.perf_counter()
        log: list[dict] = []
        if opts.baseline:
            score = activation_importance(model, ctx.tokenizer, ids, ctx.device)
            adapters = Adapters(model, opts.lora_rank, opts.lora_alpha, opts.hsm_rank, ctx.seed, hsm=False,
                                train_mask=False)
            with torch.no_grad():
                adapters.mask[torch.argsort(score, stable=True)[:n_remove]] = 0
            schedule = None
        else:
            adapters = Adapters(model, opts.lora_rank, opts.lora_alpha, opts.hsm_rank, ctx.seed)
            schedule = Schedule.of(opts)
        try:
            train(ctx, adapters, ids, labels, opts, n_remove, schedule, log)
        except BaseException:
            adapters.detach()
            raise
        adapters.merge()
        hidden = adapters.mask.detach() != 0
        if int((~hidden).sum()) != n_remove or not ((adapters.mask == 0) | (adapters.mask == 1)).all():
            raise RuntimeError(f"pat ended with {int((~hidden).sum())} channels removed, not {n_remove}")
        log.append({"train_seconds": time.perf_counter() - t0, "train_examples": len(ids),
                    "removed_channels": n_remove, "baseline": opts.baseline})
        return Structure.full(model.config).replace(hidden=hidden), log
