"""Architecture adapter: where the encoder layers, Q/K/V, attention output and FFN live.

Methods and the engine never hard-code attribute paths; they ask the adapter. Supported:
BERT (and MiniLM, which is a BERT), RoBERTa, DistilBERT sequence classifiers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

# Module kinds in the order they are computed inside an encoder block.
KINDS = ("q", "k", "v", "attn_out", "ffn_in", "ffn_out")
KIND_LABELS = {"q": "Q", "k": "K", "v": "V", "attn_out": "attention output",
               "ffn_in": "FFN in", "ffn_out": "FFN out"}
# Modules that read the same input tensor (and so share one Gram matrix X^T X).
INPUT_GROUPS = (("q", "k", "v"), ("attn_out",), ("ffn_in",), ("ffn_out",))


@dataclass(frozen=True)
class Arch:
    """Attribute paths of one model family."""

    family: str
    base: str  # attribute of the classifier holding the base model
    layers: str  # path from the base model to the ModuleList of blocks
    linears: dict  # kind -> path inside a block

    # -- structure -----------------------------------------------------------------------
    def base_model(self, model: nn.Module) -> nn.Module:
        return getattr(model, self.base)

    def blocks(self, model: nn.Module) -> nn.ModuleList:
        return _get(self.base_model(model), self.layers)

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
        if self.family == "bert" and self.base_model(model).pooler is not None:
            return self.base_model(model).pooler(hidden)
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

FAMILIES = {
    "bert": Arch("bert", "bert", "encoder.layer", _BERT_LINEARS),
    "roberta": Arch("roberta", "roberta", "encoder.layer", _BERT_LINEARS),
    "distilbert": Arch("distilbert", "distilbert", "transformer.layer",
                       {"q": "attention.q_lin", "k": "attention.k_lin", "v": "attention.v_lin",
                        "attn_out": "attention.out_lin", "ffn_in": "ffn.lin1", "ffn_out": "ffn.lin2"}),
}


def arch_of(model: nn.Module) -> Arch:
    """The adapter for a loaded sequence classifier; clear error for unsupported families."""
    from pruning_core.errors import PrunescopeError

    family = getattr(model.config, "model_type", "")
    if family in ("xlm-roberta", "camembert"):
        family = "roberta"
    if family == "prunescope-pruned-bert":  # structurally pruned BERT (pruning_core.structured)
        family = "bert"
    if family not in FAMILIES:
        raise PrunescopeError(
            f"model type '{family}' is not supported; prunescope handles {', '.join(FAMILIES)} encoders")
    return FAMILIES[family]
