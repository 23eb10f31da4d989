"""Architecture adapter: where the encoder layers, Q/K/V, attention output, FFN and LayerNorms live.

Methods and the engine never hard-code attribute paths; they ask the adapter. Supported:
BERT (and MiniLM, which is a BERT), RoBERTa, DistilBERT sequence classifiers. The backbone is the
classifier's `base_model_prefix` attribute (`bert`, `roberta`, `distilbert`); paths below it are
per family.

Every family's encoder block is two residual sub-layers, each ending in an output projection whose
output plus the residual goes into a LayerNorm (post-LN):
- attention: Q, K, V read the residual; heads' contexts, concatenated, are the input of `attn_out`;
- FFN: `ffn_in` reads the residual; the activations (one per neuron) are the input of `ffn_out`.
So a head is a slice of `attn_out`'s input columns and a neuron one of `ffn_out`'s, in every family:
structured methods mask and measure units there (see `Sublayer`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

# Module kinds in the order they are computed inside an encoder block.
KINDS = ("q", "k", "v", "attn_out", "ffn_in", "ffn_out")
KIND_LABELS = {"q": "Q", "k": "K", "v": "V", "attn_out": "attention output",
               "ffn_in": "FFN in", "ffn_out": "FFN out"}
# Modules that read the same input tensor (and so share one Gram matrix X^T X).
INPUT_GROUPS = (("q", "k", "v"), ("attn_out",), ("ffn_in",), ("ffn_out",))


class Sublayer(NamedTuple):
    """One residual sub-layer of a block: `residual_in` is the linear whose input is the residual
    (Q for attention, FFN in for the FFN), `proj` the output projection (its input columns are the
    units: heads' contexts or FFN neurons), `norm` the LayerNorm that takes proj output + residual."""

    residual_in: nn.Linear
    proj: nn.Linear
    norm: nn.Module


SUBLAYERS = {"attn": "attn", "heads": "attn", "ffn": "ffn", "neurons": "ffn"}  # accepted names -> sub-layer


@dataclass(frozen=True)
class Arch:
    """Attribute paths of one model family."""

    family: str
    base: str  # the classifier's base_model_prefix: the attribute holding the backbone
    layers: str  # path from the base model to the ModuleList of blocks
    linears: dict  # kind -> path inside a block
    norms: dict  # "attn" / "ffn" -> path of the LayerNorm closing that sub-layer, inside a block

    # -- structure -----------------------------------------------------------------------
    def base_model(self, model: nn.Module) -> nn.Module:
        """The backbone (embeddings + encoder), found through the classifier's `base_model_prefix`."""
        return getattr(model, getattr(model, "base_model_prefix", None) or self.base)

    def encoder(self, model: nn.Module) -> nn.Module:
        """The module holding the blocks (its parameters are "the encoder's")."""
        return _get(self.base_model(model), self.layers.rsplit(".", 1)[0])

    def blocks(self, model: nn.Module) -> nn.ModuleList:
        return _get(self.base_model(model), self.layers)

    def sublayer(self, block: nn.Module, kind: str) -> Sublayer:
        """The attention ('attn' or 'heads') or FFN ('ffn' or 'neurons') sub-layer of `block`."""
        part = SUBLAYERS[kind]
        first, proj = ("q", "attn_out") if part == "attn" else ("ffn_in", "ffn_out")
        return Sublayer(_get(block, self.linears[first]), _get(block, self.linears[proj]),
                        _get(block, self.norms[part]))

    def embedding_norm(self, model: nn.Module) -> nn.Module:
        return self.base_model(model).embeddings.LayerNorm

    def layer_norms(self, model: nn.Module) -> list[nn.Module]:
        """Every LayerNorm on the residual stream: the embeddings', then per block attention's and FFN's."""
        return [self.embedding_norm(model)] + [_get(b, self.norms[p]) for b in self.blocks(model)
                                               for p in ("attn", "ffn")]

    def embedding_tables(self, model: nn.Module) -> list[nn.Embedding]:
        """Word, position and (where the family has them) token-type embedding tables."""
        emb = self.base_model(model).embeddings
        names = ("word_embeddings", "position_embeddings", "token_type_embeddings")
        return [getattr(emb, n) for n in names if getattr(emb, n, None) is not None]

    def pooler_dense(self, model: nn.Module) -> nn.Linear | None:
        """The pooler's linear ([CLS] -> pooled) where the family has one and the model kept it."""
        pooler = getattr(self.base_model(model), "pooler", None) if self.family == "bert" else None
        return pooler.dense if pooler is not None else None

    def hidden_size(self, model: nn.Module) -> int:
        return model.config.hidden_size

    def head_dim(self, model: nn.Module) -> int:
        return self.hidden_size(model) // self.num_heads(model)

    def block_linears(self, block: nn.Module) -> dict[str, nn.Linear]:
        """kind -> nn.Linear, in KINDS order."""
        return {k: _get(block, self.linears[k]) for k in KINDS}

    def linear_name(self, index: int, kind: str) -> str:
        return f"{self.base}.{self.layers}.{index}.{self.linears[kind]}"

    def num_heads(self, model: nn.Module) -> int:
        cfg = model.config
        return getattr(cfg, "num_attention_heads", None) or cfg.n_heads

    # -- computation ---------------------------------------------------------------------
    def embed(self, model: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
        emb = self.base_model(model).embeddings
        if self.family == "distilbert":
            return emb(input_ids)
        return emb(input_ids=input_ids, token_type_ids=torch.zeros_like(input_ids))

    def block_mask(self, model: nn.Module, attention_mask: torch.Tensor, dtype: torch.dtype):
        """The attention mask in the form this family's blocks take for the model's attention kernel."""
        impl = getattr(model.config, "_attn_implementation", "eager")
        if impl == "sdpa":
            from transformers.modeling_attn_mask_utils import _prepare_4d_attention_mask_for_sdpa

            return _prepare_4d_attention_mask_for_sdpa(attention_mask, dtype, tgt_len=attention_mask.shape[1])
        if self.family == "distilbert":
            return attention_mask
        return self.base_model(model).get_extended_attention_mask(attention_mask, attention_mask.shape, dtype=dtype)

    def run_block(self, block: nn.Module, hidden: torch.Tensor, mask) -> torch.Tensor:
        if self.family == "distilbert":
            out = block(hidden, attn_mask=mask)
        else:
            out = block(hidden, attention_mask=mask)
        return out[0] if isinstance(out, tuple) else out

    def pooled(self, model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
        """The sentence representation the classifier reads ([CLS], through the pooler where there is one)."""
        pooler = getattr(self.base_model(model), "pooler", None) if self.family == "bert" else None
        if pooler is not None:
            return pooler(hidden)
        return hidden[:, 0]

    def logits(self, model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
        """Classifier head on the last hidden states (eval mode: dropout is the identity)."""
        if self.family == "roberta":
            return model.classifier(hidden)
        pooled = self.pooled(model, hidden)
        if self.family == "distilbert":
            pooled = torch.relu(model.pre_classifier(pooled))
        return model.classifier(pooled)


def _get(obj, path: str):
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


_BERT_LINEARS = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
                 "attn_out": "attention.output.dense", "ffn_in": "intermediate.dense", "ffn_out": "output.dense"}

_BERT_NORMS = {"attn": "attention.output.LayerNorm", "ffn": "output.LayerNorm"}

FAMILIES = {
    "bert": Arch("bert", "bert", "encoder.layer", _BERT_LINEARS, _BERT_NORMS),
    "roberta": Arch("roberta", "roberta", "encoder.layer", _BERT_LINEARS, _BERT_NORMS),
    "distilbert": Arch("distilbert", "distilbert", "transformer.layer",
                       {"q": "attention.q_lin", "k": "attention.k_lin", "v": "attention.v_lin",
                        "attn_out": "attention.out_lin", "ffn_in": "ffn.lin1", "ffn_out": "ffn.lin2"},
                       {"attn": "sa_layer_norm", "ffn": "output_layer_norm"}),
}


def intermediate_size(config) -> int:
    """FFN width of a config of any supported family (DistilBERT calls it `hidden_dim`)."""
    return getattr(config, "intermediate_size", None) or config.hidden_dim


def arch_of(model: nn.Module) -> Arch:
    """The adapter for a loaded sequence classifier; clear error for unsupported families."""
    from pruning_core.core.errors import PrunescopeError

    family = getattr(model.config, "model_type", "")
    if family in ("xlm-roberta", "camembert"):
        family = "roberta"
    if family == "prunescope-pruned-bert":  # structurally pruned BERT (pruning_core.prune.structured)
        family = "bert"
    if family not in FAMILIES:
        raise PrunescopeError(
            f"model type '{family}' is not supported; prunescope handles {', '.join(FAMILIES)} encoders")
    return FAMILIES[family]
