"""Unit masks applied by hooks to a full BERT model: a head's context, an FFN neuron's activation,
a hidden channel at every LayerNorm input and output. Float masks, so gradients w.r.t. them are the
predictive importance that K-prune and Kwon et al. use; 0/1 masks reproduce the physically pruned
model (`shrink.remove`) exactly."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn

from pruning_core.structured.structure import Structure


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
    """Run `model` (a full BERT classifier) with the units scaled by `masks` inside this block."""
    bert = model.bert
    dh = model.config.hidden_size // model.config.num_attention_heads
    handles = []

    def unit(m: torch.Tensor, i: int, width: int, dtype) -> torch.Tensor:
        m = m[..., i, :].to(dtype).repeat_interleave(width, dim=-1)
        return m[:, None] if m.dim() == 2 else m  # per-example masks broadcast over positions

    def scale_heads(i):
        def hook(_mod, _inp, out):
            ctx = out[0]
            return (ctx * unit(masks.heads, i, dh, ctx.dtype),) + tuple(out[1:])
        return hook

    def scale_neurons(i):
        return lambda _mod, _inp, out: out * unit(masks.neurons, i, 1, out.dtype)

    for i, layer in enumerate(bert.encoder.layer):
        handles.append(layer.attention.self.register_forward_hook(scale_heads(i)))
        handles.append(layer.intermediate.register_forward_hook(scale_neurons(i)))
    if masks.hidden is not None:
        norms = [bert.embeddings.LayerNorm] + [n for layer in bert.encoder.layer
                                               for n in (layer.attention.output.LayerNorm, layer.output.LayerNorm)]
        for norm in norms:
            handles.append(norm.register_forward_pre_hook(lambda _m, args: (args[0] * masks.hidden,)))
            handles.append(norm.register_forward_hook(lambda _m, _i, out: out * masks.hidden))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def sublayer(layer, kind: str):
    """(module whose forward(hidden_states, input_tensor) adds the residual, its output projection) of
    the attention ('attn' or 'heads') or FFN ('ffn' or 'neurons') sub-layer of a BERT layer."""
    if kind in ("attn", "heads"):
        return layer.attention.output, layer.attention.output.dense
    return layer.output, layer.output.dense


def dense_targets(model: nn.Module, batches, kinds: tuple[str, str] = ("attn", "ffn")) -> dict:
    """The model's LayerNorm inputs (sub-layer output + residual) on real tokens, keyed (layer, kind)
    with `kinds` naming the attention and FFN sub-layers, one tensor per batch; and under "logits" its
    logits per batch. `batches` yields (input_ids, attention_mask, labels)."""
    out: dict = {"logits": []}
    state = {}
    handles = []
    for i, layer in enumerate(model.bert.encoder.layer):
        for kind in kinds:
            out[(i, kind)] = []
            norm = sublayer(layer, kind)[0].LayerNorm
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
