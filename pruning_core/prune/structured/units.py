"""Unit masks applied by hooks to a full model of any supported family (through `arch`): a head's
context and an FFN neuron's activation where they enter the sub-layer's output projection, a hidden
channel at every LayerNorm input and output. Float masks, so gradients w.r.t. them are the predictive
importance that K-prune and Kwon et al. use; 0/1 masks reproduce the pruned model (`shrink.remove`)
exactly."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn

from pruning_core.model.arch import Sublayer, arch_of
from pruning_core.prune.structured.structure import Structure


@dataclass
class UnitMasks:
    """Float masks; `heads` and `neurons` may carry a leading batch dimension ([batch, layers, units]):
    one mask per example, so one backward pass gives per-example gradients."""

    heads: torch.Tensor  # float [layers, heads] or [batch, layers, heads]
    neurons: torch.Tensor  # float [layers, intermediate] or [batch, layers, intermediate]
    hidden: torch.Tensor | None = None  # float [hidden]; None = no hidden-channel masking

    @classmethod
    def of(cls, structure: Structure, device=None, grad: bool = False, hidden: bool = True) -> "UnitMasks":
        def f(t):
            return t.float().to(device).requires_grad_(grad)

        return cls(f(structure.heads), f(structure.neurons),
                   f(structure.hidden) if hidden and not structure.hidden.all() else None)


@contextmanager
def masked(model: nn.Module, masks: UnitMasks) -> Iterator[None]:
    """Run `model` (a full classifier) with the units scaled by `masks` inside this block.

    The scaling hooks run before any other forward pre-hook of the output projections, so hooks
    registered there (by the methods) see the masked contexts and activations."""
    arch = arch_of(model)
    dh = arch.head_dim(model)
    handles = []

    def unit(m: torch.Tensor, i: int, width: int, dtype) -> torch.Tensor:
        m = m[..., i, :].to(dtype).repeat_interleave(width, dim=-1)
        return m[:, None] if m.dim() == 2 else m  # per-example masks broadcast over positions

    def scale(units: torch.Tensor, i: int, width: int):
        def hook(_mod, args):
            x = args[0]
            return (x * unit(units, i, width, x.dtype),) + tuple(args[1:])
        return hook

    for i, block in enumerate(arch.blocks(model)):
        handles.append(arch.sublayer(block, "heads").proj.register_forward_pre_hook(
            scale(masks.heads, i, dh), prepend=True))
        handles.append(arch.sublayer(block, "neurons").proj.register_forward_pre_hook(
            scale(masks.neurons, i, 1), prepend=True))
    if masks.hidden is not None:
        for norm in arch.layer_norms(model):
            handles.append(norm.register_forward_pre_hook(lambda _m, args: (args[0] * masks.hidden,)))
            handles.append(norm.register_forward_hook(lambda _m, _i, out: out * masks.hidden))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@contextmanager
def sublayer_inputs(sub: Sublayer, state: dict, stop: type[Exception] | None = None) -> Iterator[None]:
    """While inside, each forward through the sub-layer stores its residual in `state["res"]` and the
    (masked) input of its output projection in `state["x"]`; with `stop`, raises it once both are
    captured (the rest of the forward pass is skipped)."""

    def grab_res(_m, args):
        state["res"] = args[0]

    def grab_x(_m, args):
        state["x"] = args[0]
        if stop is not None:
            raise stop

    handles = [sub.residual_in.register_forward_pre_hook(grab_res), sub.proj.register_forward_pre_hook(grab_x)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def dense_targets(model: nn.Module, batches, kinds: tuple[str, str] = ("attn", "ffn")) -> dict:
    """The model's LayerNorm inputs (sub-layer output + residual) on real tokens, keyed (layer, kind)
    with `kinds` naming the attention and FFN sub-layers, one tensor per batch; and under "logits" its
    logits per batch. `batches` yields (input_ids, attention_mask, labels)."""
    arch = arch_of(model)
    out: dict = {"logits": []}
    state = {}
    handles = []
    for i, block in enumerate(arch.blocks(model)):
        for kind in kinds:
            out[(i, kind)] = []
            norm = arch.sublayer(block, kind).norm
            handles.append(norm.register_forward_pre_hook(
                lambda _m, args, key=(i, kind): out[key].append(args[0][state["keep"]].detach())))
    try:
        with torch.no_grad():
            for ids, mask, _ in batches:
                state["keep"] = mask.bool()
                out["logits"].append(model(input_ids=ids, attention_mask=mask).logits.detach())
    finally:
        for h in handles:
            h.remove()
    return out
