"""Kwon et al.'s mask tuning, stage 4 of `pruning_core.prune.methods.kwon`: layer by layer, least-squares scales
of the kept units so each pruned sub-layer's LayerNorm input matches the dense one, then folded into the
output projections."""

from __future__ import annotations

import torch

from pruning_core.model.arch import arch_of
from pruning_core.prune.structured.structure import Structure
from pruning_core.prune.structured.units import UnitMasks, dense_targets, masked, sublayer_inputs

SCALE_RANGE = 10.0  # |scale| bound of the mask tuning, as in the paper


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
