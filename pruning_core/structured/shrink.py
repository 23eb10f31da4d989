"""Physical removal: a BERT classifier and a `Structure` in, a smaller dense model out.

Heads go through the model's own `prune_heads`; FFN neurons and hidden channels are sliced out of
the weight matrices; the result is a `PrunedBertForSequenceClassification` whose config records the
per-layer widths, so it saves with `save_pretrained` and reloads with `from_pretrained`.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from pruning_core.errors import PrunescopeError
from pruning_core.structured.modeling_pruned_bert import (PrunedBertConfig,
                                                          PrunedBertForSequenceClassification)
from pruning_core.structured.structure import Structure


def check_supported(model: nn.Module) -> None:
    if getattr(model.config, "model_type", "") not in ("bert", PrunedBertConfig.model_type):
        raise PrunescopeError(f"structured pruning physically removes units of BERT models only (MiniLM is one); "
                              f"this model is '{model.config.model_type}'")
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


def remove(model: nn.Module, structure: Structure) -> PrunedBertForSequenceClassification:
    """A new, smaller model computing exactly what `model` computes with the removed units masked to
    zero (removed hidden channels: zero in the residual stream and at every LayerNorm input). The
    input model is left untouched."""
    check_supported(model)
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
    """Kept-unit counts of a (possibly pruned) model as a Structure (the first units of each layer kept)."""
    cfg = model.config
    full = Structure.full(cfg)
    heads = cfg.head_counts if getattr(cfg, "head_counts", None) else [cfg.num_attention_heads] * cfg.num_hidden_layers
    ffn = cfg.intermediate_sizes if getattr(cfg, "intermediate_sizes", None) else \
        [cfg.intermediate_size] * cfg.num_hidden_layers
    hid = getattr(cfg, "kept_hidden_size", None) or cfg.hidden_size
    return full.replace(heads=torch.arange(full.heads.shape[1])[None] < torch.tensor(heads)[:, None],
                        neurons=torch.arange(full.neurons.shape[1])[None] < torch.tensor(ffn)[:, None],
                        hidden=torch.arange(cfg.hidden_size) < hid)
