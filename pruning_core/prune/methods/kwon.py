"""Kwon et al.: retraining-free structured pruning of attention heads and FFN neurons.

Woosuk Kwon, Sehoon Kim, Michael W. Mahoney, Joseph Hassoun, Kurt Keutzer, Amir Gholami.
"A Fast Post-Training Pruning Framework for Transformers", NeurIPS 2022.

The pipeline reads as in their `main`: gradients -> search -> rearrange -> rescale.

1. Fisher information of the unit masks: per-example gradients g_n of the cross-entropy loss (with the
   calibration labels) w.r.t. all-ones head and neuron masks. Diagonal I_i = sum_n g_{n,i}^2 ranks the
   units; per layer the full blocks F_l = sum_n g_{n,l} g_{n,l}^T (heads H x H, neurons F x F) give
   the second-order loss increase z^T F_l z of pruning the units marked in z (z = 1 - mask).
2. Mask search (their Algorithm 1): for every number h of heads kept, keep the h heads of largest
   Fisher over the whole model, spend the FLOPs left on the f neurons of largest Fisher, and pick the
   (h, f) whose pruned units carry the least Fisher in total. The FLOPs budget is
   (1 - budget) * dense encoder FLOPs at the calibration set's average length, never exceeded.
3. Mask rearrangement: per layer and unit kind, the number of kept units fixed, swap one kept and one
   pruned unit while the swap lowers z^T F_l z (the best swap each time, its change in closed form:
   F_pp + F_kk - 2 F_pk - 2 (F z)_p + 2 (F z)_k for pruned p becoming kept and kept k becoming pruned).
4. Mask tuning: layer by layer, attention then FFN, real-valued scales s of the kept units minimise
   || x' + b + sum_u s_u c_u(x') - (x + sublayer_dense(x)) ||^2 over real calibration tokens, where x is
   the dense model's input to the sub-layer, x' the pruned-and-tuned model's, b the output bias and
   c_u the unit's contribution to the sub-layer output (head h: ctx_h W_o[:, h]^T, neuron j:
   a_j W_2[:, j]): the LayerNorm input of the pruned sub-layer matches the dense one. Scales are clamped
   to [-10, 10] as in the paper and folded into the columns of the output projection
   (the attention and FFN output projections). A scale vector that would raise the error is not applied.

Deviations from the paper and its code, on purpose:
- per-example gradients (one mask per example in a batched backward), where their code keeps one
  gradient per mini-batch;
- the search starts at h = 0 heads and skips head counts whose FLOPs alone exceed the budget (their
  loop may return a mask over budget); the neuron count is capped at the number of neurons;
- rearrangement by best-improving swaps of one kept and one pruned unit (at most `rearrange_steps`
  per layer and kind); their code does one greedy pass that inserts units in Fisher order and drops
  the unit whose removal leaves the smallest ||sum of pruned gradients||^2 -- the same objective;
- mask tuning solves the normal equations directly with a ridge towards s = 1 of
  `damping * mean(diag)` (their code runs LSMR on the normal equations with damp = 1 around s = 1);
  statistics in float64, pad tokens left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pruning_core.model.arch import arch_of
from pruning_core.core.errors import PrunescopeError
from pruning_core.prune.methods.base import StructuredMethod, knob
from pruning_core.prune.structured.structure import StepRecord, Structure, head_flops, neuron_flops
from pruning_core.prune.structured.units import UnitMasks, dense_targets, masked, sublayer_inputs

SCALE_RANGE = 10.0  # |scale| bound of the mask tuning, as in the paper


@dataclass(frozen=True)
class KwonOptions:
    rearrange: bool = knob(True, "Mask rearrangement",
                           "per layer, swap kept and pruned units while the swap lowers the second-order loss "
                           "estimate (full Fisher block of the layer)")
    rearrange_steps: int = knob(100, "Swaps per layer and unit kind (at most)", ge=0, ui_max=100_000,
                                shown_when={"rearrange": True})
    rescale: bool = knob(True, "Mask tuning (least-squares rescaling)",
                         "layer by layer, scales of the kept units fitted so each pruned sub-layer's LayerNorm "
                         "input matches the dense one; folded into the output projection")
    damping: float = knob(1e-2, "Tuning ridge (× mean diag)", "ridge of the rescaling towards scale 1",
                          ge=0, ui_max=100.0, format="%.3f", shown_when={"rescale": True})


# -- 1. Fisher information -------------------------------------------------------------------------

@dataclass
class Fisher:
    """Per-example gradients of the loss w.r.t. the unit masks."""

    heads: torch.Tensor  # [examples, layers, heads], float64
    neurons: torch.Tensor  # [examples, layers, neurons], float64

    def diagonal(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Importance I_i = sum_n g_{n,i}^2: [layers, heads], [layers, neurons]."""
        return self.heads.pow(2).sum(0), self.neurons.pow(2).sum(0)

    def block(self, kind: str, layer: int) -> torch.Tensor:
        """Empirical Fisher F_l = sum_n g_{n,l} g_{n,l}^T of one layer's heads or neurons."""
        g = (self.heads if kind == "heads" else self.neurons)[:, layer]
        return g.T @ g


def mask_gradients(model, batches, structure: Structure) -> Fisher:
    """Per-example gradients of the cross-entropy w.r.t. all-ones unit masks (one mask per example)."""
    heads, neurons = [], []
    for ids, mask, labels in batches:
        b = ids.shape[0]
        per = UnitMasks(structure.heads.float().to(ids.device).expand(b, *structure.heads.shape).clone(),
                        structure.neurons.float().to(ids.device).expand(b, *structure.neurons.shape).clone())
        per.heads.requires_grad_(True)
        per.neurons.requires_grad_(True)
        with masked(model, per):
            logits = model(input_ids=ids, attention_mask=mask).logits
        loss = F.cross_entropy(logits, labels, reduction="sum")  # sum: each example its own gradient
        gh, gn = torch.autograd.grad(loss, [per.heads, per.neurons])
        heads.append(gh.detach().double().cpu())
        neurons.append(gn.detach().double().cpu())
    return Fisher(torch.cat(heads), torch.cat(neurons))


# -- 2. mask search --------------------------------------------------------------------------------

def search(head_importance: torch.Tensor, neuron_importance: torch.Tensor, head_cost: float,
           neuron_cost: float, budget: float) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Their Algorithm 1: for h = 0..all heads, keep the top-h heads and the top-f neurons that the
    FLOPs left allow; return the keep-masks (shaped like the importances) whose pruned units carry the
    least importance, and that importance. Ties go to the pair that keeps more FLOPs."""
    hv, nv = head_importance.flatten().double(), neuron_importance.flatten().double()
    h_sorted, h_order = hv.sort(descending=True)
    n_sorted, n_order = nv.sort(descending=True)
    h_top = torch.cat([hv.new_zeros(1), h_sorted.cumsum(0)])  # h_top[k]: importance of the best k heads
    n_top = torch.cat([nv.new_zeros(1), n_sorted.cumsum(0)])
    total = float(hv.sum() + nv.sum())
    best = None
    for h in range(len(hv) + 1):
        if h * head_cost > budget:
            break
        f = min(len(nv), int((budget - h * head_cost) // neuron_cost))
        while f > 0 and h * head_cost + f * neuron_cost > budget:  # rounding of the floor division
            f -= 1
        pruned = total - float(h_top[h] + n_top[f])
        key = (pruned, -(h * head_cost + f * neuron_cost))
        if best is None or key < best[0]:
            best = (key, h, f)
    if best is None:
        raise PrunescopeError("kwon: the FLOPs budget is negative")
    (pruned, _), h, f = best
    heads = torch.zeros(len(hv), dtype=torch.bool)
    heads[h_order[:h]] = True
    neurons = torch.zeros(len(nv), dtype=torch.bool)
    neurons[n_order[:f]] = True
    return heads.view(head_importance.shape), neurons.view(neuron_importance.shape), pruned


# -- 3. mask rearrangement -------------------------------------------------------------------------

def pruned_loss(keep: torch.Tensor, fisher: torch.Tensor) -> float:
    """z^T F z for the pruned indicator z = 1 - keep."""
    z = (~keep).to(fisher.dtype)
    return float(z @ fisher @ z)


def rearrange(keep: torch.Tensor, fisher: torch.Tensor, steps: int = 100) -> tuple[torch.Tensor, int]:
    """Swap one kept and one pruned unit at a time, the swap that lowers z^T F z most, while one does
    (at most `steps` swaps). Returns the new keep-mask (same count) and the number of swaps.

    Making pruned p kept and kept k pruned changes z^T F z by F_pp + F_kk - 2 F_pk - 2 (F z)_p + 2 (F z)_k.
    `cost[p, k]` holds the first three terms for the valid pairs (inf elsewhere); one swap updates two
    rows and two columns of it."""
    keep = keep.clone()
    fisher = fisher.double()
    diag = fisher.diagonal()
    pair = diag[:, None] + diag[None, :] - 2 * fisher
    inf = torch.tensor(float("inf"), dtype=pair.dtype)
    cost = torch.where(~keep[:, None] & keep[None, :], pair, inf)
    fz = fisher @ (~keep).double()
    swaps = 0
    for _ in range(steps):
        if keep.all() or not keep.any():
            break
        row_best, row_k = (cost + 2 * fz[None, :]).min(1)  # best kept k for every pruned p
        gain = row_best - 2 * fz
        p = int(gain.argmin())
        k = int(row_k[p])
        objective = float((~keep).double() @ fz)
        if not float(gain[p]) < -1e-12 * max(abs(objective), 1e-300):
            break
        keep[p], keep[k] = True, False
        fz += fisher[:, k] - fisher[:, p]
        cost[p] = inf
        cost[:, k] = inf
        cost[k] = torch.where(keep, pair[k], inf)
        cost[:, p] = torch.where(~keep, pair[:, p], inf)
        swaps += 1
    return keep, swaps


# -- 4. mask tuning (least-squares rescaling) ------------------------------------------------------

class _Stop(Exception):
    """Raised by a hook once the inputs of the sub-layer being tuned are captured."""


class UnitLeastSquares:
    """Normal equations of min_s || sum_u s_u c_u - y ||^2 over the kept units u of one sub-layer,
    accumulated over tokens (float64): G = A^T A, c = A^T y, ||y||^2, where column u of A is the unit's
    contribution c_u to the output projection's output (head h: ctx_h W[:, h]^T, neuron j: a_j W[:, j])."""

    def __init__(self, kind: str, weight: torch.Tensor, kept: torch.Tensor, head_dim: int):
        self.kind, self.kept, self.head_dim = kind, kept, head_dim
        self.weight = weight.detach().double()
        self.acts = self.cross = None  # neurons: sum of a a^T (G = that * W^T W); heads: G itself
        self.yy = 0.0

    def add(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """x: the projection's (masked) input on real tokens [tokens, in]; y: the target [tokens, out]."""
        x, y, w = x.double(), y.double(), self.weight
        if self.kind == "heads":
            n_heads = w.shape[1] // self.head_dim
            parts = torch.einsum("nhk,dhk->nhd", x.view(len(x), n_heads, self.head_dim),
                                 w.view(len(w), n_heads, self.head_dim))[:, self.kept]  # [tokens, heads, out]
            acts, cross = torch.einsum("nhd,ngd->hg", parts, parts), torch.einsum("nhd,nd->h", parts, y)
        else:
            a = x[:, self.kept]
            acts, cross = a.T @ a, (a * (y @ w[:, self.kept])).sum(0)
        self.acts = acts if self.acts is None else self.acts + acts
        self.cross = cross if self.cross is None else self.cross + cross
        self.yy += float(y.pow(2).sum())

    def finish(self) -> None:
        """Form G (for neurons: (sum a a^T) * (W^T W) elementwise, W^T W computed once)."""
        if self.kind == "heads":
            self.gram = self.acts
        else:
            w = self.weight[:, self.kept]
            self.gram = self.acts * (w.T @ w)

    def error(self, s: torch.Tensor) -> float:
        s = s.to(self.gram)
        return float(s @ self.gram @ s - 2 * s @ self.cross) + self.yy

    def solve(self, damping: float) -> torch.Tensor:
        """Ridge towards s = 1: (G + lambda I)(s - 1) = c - G 1, lambda = damping * mean(diag G);
        clamped to [-10, 10]."""
        ones = torch.ones_like(self.cross)
        lam = damping * float(self.gram.diagonal().mean()) or 1e-12
        eye = torch.eye(len(ones), dtype=ones.dtype, device=ones.device)
        delta = torch.linalg.solve(self.gram + lam * eye, self.cross - self.gram @ ones)
        return (ones + delta).clamp(-SCALE_RANGE, SCALE_RANGE)


def first_layer_calls(model, batches) -> list[tuple[tuple, dict]]:
    """Per batch, the (args, kwargs) the encoder passes to its first layer (hidden states, attention
    mask in the form the attention implementation wants, ...), to run the layers one at a time."""
    calls = []

    def grab(_m, args, kwargs):
        calls.append((args, kwargs))
        raise _Stop

    arch = arch_of(model)
    handle = arch.blocks(model)[0].register_forward_pre_hook(grab, with_kwargs=True)
    try:
        with torch.no_grad():
            for ids, mask, _ in batches:
                try:
                    arch.base_model(model)(input_ids=ids, attention_mask=mask)
                except _Stop:
                    pass
    finally:
        handle.remove()
    return calls


def next_layer_calls(layer, calls) -> list[tuple[tuple, dict]]:
    """Run `layer` on every batch; the same calls with its output as the hidden states."""
    out = []
    with torch.no_grad():
        for args, kwargs in calls:
            h = layer(*args, **kwargs)
            h = h[0] if isinstance(h, tuple) else h
            out.append(((h,) + tuple(args[1:]), kwargs) if args else (args, {**kwargs, "hidden_states": h}))
    return out


def tune_sublayer(arch, layer, masks: UnitMasks, index: int, kind: str, calls, keeps, targets, damping: float) -> dict:
    """Least-squares scales of the kept units of one sub-layer of `layer` (block number `index` of a
    model of family `arch`, run under `masked(model, masks)`), written into `masks` (float masks: the
    same as scaling the output projection's columns). `calls` are the layer's inputs per batch, `keeps`
    the real-token masks. Returns the relative error (to the dense LayerNorm input's squared norm)
    before and after."""
    sub = arch.sublayer(layer, kind)
    proj = sub.proj
    row = masks.heads[index] if kind == "heads" else masks.neurons[index]
    kept = (row.detach() != 0).nonzero().flatten()
    if len(kept) == 0:
        return {}
    head_dim = proj.in_features // masks.heads.shape[-1]
    state = {}
    stats, target_norm = UnitLeastSquares(kind, proj.weight, kept, head_dim), 0.0
    with torch.no_grad(), sublayer_inputs(sub, state, stop=_Stop):
        for (args, kwargs), keep, target in zip(calls, keeps, targets[(index, kind)]):
            try:
                layer(*args, **kwargs)
            except _Stop:
                pass
            y = target - state["res"][keep] - proj.bias.detach()  # what the kept units should add up to
            stats.add(state["x"][keep], y)
            target_norm += float(target.double().pow(2).sum())
    stats.finish()
    current = row[kept].detach().double()
    before, scales = stats.error(current), stats.solve(damping)
    after = stats.error(scales)
    if after < before:
        with torch.no_grad():
            row[kept] = scales.to(row.dtype).to(row.device)
    else:
        scales, after = current, before
    return {"error_before": before / target_norm, "error_after": after / target_norm,
            "scale_min": float(scales.min()), "scale_max": float(scales.max())}


def tune_masks(model, structure: Structure, batches, damping: float, report) -> tuple[UnitMasks, list[dict]]:
    """Mask tuning, layer by layer and sub-layer by sub-layer, on the inputs of the pruned model tuned
    so far (the dense targets are recorded first). Returns the tuned float masks and per-layer logs."""
    targets = dense_targets(model, batches, kinds=("heads", "neurons"))
    keeps = [mask.bool() for _, mask, _ in batches]
    masks = UnitMasks.of(structure, next(model.parameters()).device, hidden=False)
    logs = []
    arch = arch_of(model)
    with masked(model, masks):
        calls = first_layer_calls(model, batches)
        for i, layer in enumerate(arch.blocks(model)):
            entry = {}
            for kind in ("heads", "neurons"):
                res = tune_sublayer(arch, layer, masks, i, kind, calls, keeps, targets, damping)
                entry |= {f"{kind}_ls_{k}": v for k, v in res.items()}
                report(i, kind)
            logs.append(entry)
            calls = next_layer_calls(layer, calls)
    return masks, logs


def fold_scales(model, masks: UnitMasks) -> None:
    """Multiply the output projections' columns of the kept units by their scales (pruned units are
    removed later and left as they are)."""
    arch = arch_of(model)
    head_dim = arch.head_dim(model)
    with torch.no_grad():
        for i, layer in enumerate(arch.blocks(model)):
            attn_out, ffn_out = arch.sublayer(layer, "heads").proj, arch.sublayer(layer, "neurons").proj
            h = masks.heads[i].detach()
            h = torch.where(h != 0, h, torch.ones_like(h)).repeat_interleave(head_dim)
            attn_out.weight.mul_(h.to(attn_out.weight.dtype))
            n = masks.neurons[i].detach()
            n = torch.where(n != 0, n, torch.ones_like(n))
            ffn_out.weight.mul_(n.to(ffn_out.weight.dtype))


# -- the method ------------------------------------------------------------------------------------

class Kwon(StructuredMethod):
    name = "kwon"
    paper = "Kwon et al., A Fast Post-Training Pruning Framework for Transformers (NeurIPS 2022)"
    Options = KwonOptions
    colour = "#BCBD22"

    def prune_structured(self, ctx):
        model, opts = ctx.model, ctx.options
        model.eval()
        full = Structure.full(model.config)
        n_layers = full.heads.shape[0]
        d, s = arch_of(model).hidden_size(model), ctx.seq_len
        dense_flops = full.flops(s)
        batches = list(ctx.batches())
        total = 3 + (2 * n_layers if opts.rescale else 0)
        log: list[dict] = []

        fisher = mask_gradients(model, batches, full)
        ctx.report(StepRecord(1, total, f"Fisher information of {len(fisher.heads)} examples", 1.0))

        head_imp, neuron_imp = fisher.diagonal()
        heads, neurons, objective = search(head_imp, neuron_imp, head_flops(d, full.head_dim, s), neuron_flops(d, s),
                                           (1 - ctx.budget) * dense_flops)
        structure = full.replace(heads=heads, neurons=neurons)
        kept = structure.flops(s) / dense_flops
        log.append({"stage": "search", "heads_kept": int(heads.sum()), "neurons_kept": int(neurons.sum()),
                    "pruned_fisher": objective, "flops_kept": kept})
        ctx.report(StepRecord(2, total, f"mask search: {int(heads.sum())} heads, {int(neurons.sum())} neurons kept",
                              kept))

        layers = [{"layer": i, "heads_kept": int(heads[i].sum()), "neurons_kept": int(neurons[i].sum())}
                  for i in range(n_layers)]
        if opts.rearrange:
            for i in range(n_layers):
                for kind, keep in (("heads", heads), ("neurons", neurons)):
                    block = fisher.block(kind, i)
                    before = pruned_loss(keep[i], block)
                    keep[i], swaps = rearrange(keep[i], block, opts.rearrange_steps)
                    layers[i] |= {f"{kind}_swaps": swaps, f"{kind}_fisher_before": before,
                                  f"{kind}_fisher_after": pruned_loss(keep[i], block)}
            structure = full.replace(heads=heads, neurons=neurons)
        ctx.report(StepRecord(3, total, "mask rearrangement", kept))

        if opts.rescale:
            def progress(layer, kind):
                step = 4 + 2 * layer + (kind == "neurons")
                name = "attention" if kind == "heads" else "FFN"
                ctx.report(StepRecord(step, total, f"layer {layer} {name}: mask tuning", kept))

            masks, tuned = tune_masks(model, structure, batches, opts.damping, progress)
            fold_scales(model, masks)
            for entry, extra in zip(layers, tuned):
                entry |= extra
        log.extend(layers)
        return structure, log
