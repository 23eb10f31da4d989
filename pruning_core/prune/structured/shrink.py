"""Removal: a classifier and a `Structure` in, a model computing what the masked classifier computes out.

BERT (MiniLM is one): physical removal. Heads go through the model's own `prune_heads`; FFN neurons
and hidden channels are sliced out of the weight matrices; the result is a
`PrunedBertForSequenceClassification` whose config records the per-layer widths, so it saves with
`save_pretrained` and reloads with `from_pretrained`.

RoBERTa and DistilBERT: the removed heads and FFN neurons are zeroed in a copy of the same class (the
rows of Q, K, V and FFN in, the columns of the output projections that read them): the same function,
a standard checkpoint that loads anywhere, the FLOPs and parameter counts of `Structure` -- but no
speed-up at inference. Hidden channels (PAT) are removed from BERT models only.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from pruning_core.model.arch import arch_of
from pruning_core.core.errors import PrunescopeError
from pruning_core.model.modeling_pruned_bert import (PrunedBertConfig,
                                                          PrunedBertForSequenceClassification)
from pruning_core.prune.structured.structure import Structure


def physical(model: nn.Module) -> bool:
    """Whether `remove` makes `model` physically smaller (BERT) or zeroes the removed units (the others)."""
    return arch_of(model).family == "bert"


def check_supported(model: nn.Module, method=None) -> None:
    """Raise PrunescopeError, before any work, when structured `method` cannot prune `model`."""
    family = arch_of(model).family  # unsupported families end here
    families = getattr(method, "families", None)
    if families is not None and family not in families:
        raise PrunescopeError(f"{method.name} prunes {', '.join(families)} models only (MiniLM is a BERT); "
                              f"this model is a {family}")
    if getattr(model.config, "head_counts", None) or getattr(model.config, "pruned_heads", None):
        raise PrunescopeError("this model is already structurally pruned; prune the model it came from")


def _take(linear: nn.Linear, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None) -> dict:
    w, b = linear.weight.detach(), linear.bias.detach() if linear.bias is not None else None
    if rows is not None:
        w = w[rows]
        b = b[rows] if b is not None else None
    if cols is not None:
        w = w[:, cols]
    return {"weight": w.clone(), "bias": b.clone() if b is not None else None}


def remove(model: nn.Module, structure: Structure) -> nn.Module:
    """A new model computing exactly what `model` computes with the removed units masked to zero
    (removed hidden channels: zero in the residual stream and at every LayerNorm input): smaller for
    BERT, the same class with the removed units zeroed for the other families. The input model is left
    untouched."""
    check_supported(model)
    if not physical(model):
        return zero_removed(model, structure)
    return _remove_bert(model, structure)


def zero_removed(model: nn.Module, structure: Structure) -> nn.Module:
    """A copy of `model` whose removed heads and FFN neurons are zero: their rows of Q, K, V (weights
    and biases) and FFN in, and their columns of the attention and FFN output projections."""
    if not structure.hidden.all():
        raise PrunescopeError(f"hidden channels are removed from BERT models only; this model is a "
                              f"{arch_of(model).family}")
    out = copy.deepcopy(model)
    arch = arch_of(out)
    dh = arch.head_dim(out)
    with torch.no_grad():
        for i, block in enumerate(arch.blocks(out)):
            lin = arch.block_linears(block)
            heads = (~structure.heads[i]).repeat_interleave(dh).to(lin["q"].weight.device)
            neurons = (~structure.neurons[i]).to(lin["ffn_in"].weight.device)
            for kind, cut in (("q", heads), ("k", heads), ("v", heads), ("ffn_in", neurons)):
                lin[kind].weight[cut] = 0
                if lin[kind].bias is not None:
                    lin[kind].bias[cut] = 0
            lin["attn_out"].weight[:, heads] = 0
            lin["ffn_out"].weight[:, neurons] = 0
    return out.eval()


def _remove_bert(model: nn.Module, structure: Structure) -> PrunedBertForSequenceClassification:
    """Physical removal from a BERT classifier (the state-dict keys are those of `PrunedBert...`)."""
    src = copy.deepcopy(model)
    src.prune_heads({i: [h for h in range(structure.heads.shape[1]) if not structure.heads[i, h]]
                     for i in range(structure.heads.shape[0])})
    cfg = src.config.to_dict()
    cfg.pop("pruned_heads", None)
    for k in ("model_type", "architectures", "auto_map", "transformers_version"):
        cfg.pop(k, None)
    hid = structure.hidden.nonzero().flatten()
    full = len(structure.hidden)
    config = PrunedBertConfig(head_counts=structure.heads.sum(1).tolist(),
                              intermediate_sizes=structure.neurons.sum(1).tolist(),
                              kept_hidden_size=len(hid) if len(hid) < full else None, **cfg)
    config.architectures = [PrunedBertForSequenceClassification.__name__]
    config._attn_implementation = getattr(src.config, "_attn_implementation", None) or "sdpa"
    out = PrunedBertForSequenceClassification(config).to(next(model.parameters()).dtype)
    h = hid if len(hid) < full else None
    sd = {}

    def put(prefix: str, parts: dict) -> None:
        for k, v in parts.items():
            if v is not None:
                sd[f"{prefix}.{k}"] = v

    emb = src.bert.embeddings
    for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        w = getattr(emb, name).weight.detach()
        sd[f"bert.embeddings.{name}.weight"] = (w[:, h] if h is not None else w).clone()
    put("bert.embeddings.LayerNorm", _take_norm(emb.LayerNorm, h))
    for i, layer in enumerate(src.bert.encoder.layer):
        p = f"bert.encoder.layer.{i}"
        att = layer.attention
        if structure.heads[i].any():
            for name in ("query", "key", "value"):
                put(f"{p}.attention.self.{name}", _take(getattr(att.self, name), cols=h))
        put(f"{p}.attention.output.dense", _take(att.output.dense, rows=h))
        put(f"{p}.attention.output.LayerNorm", _take_norm(att.output.LayerNorm, h))
        keep = structure.neurons[i].nonzero().flatten()
        inter = _take(layer.intermediate.dense, rows=keep)
        if h is not None:
            inter["weight"] = inter["weight"][:, h]
        put(f"{p}.intermediate.dense", inter)
        put(f"{p}.output.dense", _take(layer.output.dense, rows=h, cols=keep))
        put(f"{p}.output.LayerNorm", _take_norm(layer.output.LayerNorm, h))
    for name, mod in src.named_modules():  # pooler and classifier: the pooler reads the kept channels
        if name.startswith(("bert.pooler", "classifier")) and isinstance(mod, nn.Linear):
            put(name, _take(mod, cols=h if name == "bert.pooler.dense" else None))
    missing, unexpected = out.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids") and "token_type_ids" not in k]
    if missing or unexpected:
        raise RuntimeError(f"structured removal left weights unset: {missing[:5]} / {unexpected[:5]}")
    out.eval()
    return out.to(next(model.parameters()).device)


def _take_norm(norm: nn.Module, hidden: torch.Tensor | None) -> dict:
    w, b = norm.weight.detach(), norm.bias.detach()
    if hidden is not None:
        w, b = w[hidden], b[hidden]
    return {"weight": w.clone(), "bias": b.clone()}


def structure_of(model: nn.Module) -> Structure:
    """Kept units of a (possibly pruned) model as a Structure: for a physically pruned BERT its counts
    (the first units of each layer kept); for the other families the units that are not zeroed."""
    cfg = model.config
    full = Structure.full(cfg)
    if not physical(model):  # zeroed removal: a unit is kept where its output-projection columns are not all zero
        arch = arch_of(model)
        dh = arch.head_dim(model)
        heads, neurons = [], []
        for block in arch.blocks(model):
            lin = arch.block_linears(block)
            heads.append(lin["attn_out"].weight.detach().ne(0).any(0).view(-1, dh).any(1).cpu())
            neurons.append(lin["ffn_out"].weight.detach().ne(0).any(0).cpu())
        return full.replace(heads=torch.stack(heads), neurons=torch.stack(neurons))
    heads = cfg.head_counts if getattr(cfg, "head_counts", None) else [cfg.num_attention_heads] * cfg.num_hidden_layers
    ffn = cfg.intermediate_sizes if getattr(cfg, "intermediate_sizes", None) else \
        [cfg.intermediate_size] * cfg.num_hidden_layers
    hid = getattr(cfg, "kept_hidden_size", None) or cfg.hidden_size
    return full.replace(heads=torch.arange(full.heads.shape[1])[None] < torch.tensor(heads)[:, None],
                        neurons=torch.arange(full.neurons.shape[1])[None] < torch.tensor(ffn)[:, None],
                        hidden=torch.arange(cfg.hidden_size) < hid)
