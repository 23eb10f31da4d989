"""A BERT sequence classifier whose layers may each keep a different number of attention heads
and FFN neurons, and whose hidden width may be narrower than the model it came from.

Self-contained (imports only torch and transformers): prunescope copies this file into every
exported folder, so `AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True)`
loads a structurally pruned model anywhere, without prunescope.

Config fields beyond BertConfig (hidden_size, num_attention_heads and intermediate_size keep the
values of the model the pruned one came from):
- `head_counts[l]`: heads kept in layer l (0 = the attention sub-layer adds only its bias);
- `intermediate_sizes[l]`: FFN neurons kept in layer l (0 = the FFN adds only its bias);
- `kept_hidden_size`: hidden channels kept (None = all). Every LayerNorm then normalises the kept
  channels with the statistics of the full width, as if the removed channels were the zeros they
  were in the masked model, so slicing is exact.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import BertConfig, BertForSequenceClassification


class PrunedBertConfig(BertConfig):
    model_type = "prunescope-pruned-bert"

    def __init__(self, head_counts=None, intermediate_sizes=None, kept_hidden_size=None, **kwargs):
        super().__init__(**kwargs)
        self.head_counts = list(head_counts) if head_counts is not None else None
        self.intermediate_sizes = list(intermediate_sizes) if intermediate_sizes is not None else None
        self.kept_hidden_size = kept_hidden_size


class FullWidthLayerNorm(nn.Module):
    """LayerNorm of `kept` channels with the mean and variance the full `full`-wide LayerNorm computes
    when the other `full - kept` channels are zero."""

    def __init__(self, kept: int, full: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(kept))
        self.bias = nn.Parameter(torch.zeros(kept))
        self.full, self.eps = full, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.sum(-1, keepdim=True) / self.full
        missing = self.full - x.shape[-1]
        var = (((x - mean) ** 2).sum(-1, keepdim=True) + missing * mean ** 2) / self.full
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias


class NoHeads(nn.Module):
    """Self-attention with every head removed: an empty context (the output projection adds its bias)."""

    num_attention_heads = 0
    all_head_size = 0

    def forward(self, hidden_states, *args, **kwargs):
        return hidden_states.new_zeros(*hidden_states.shape[:-1], 0), None


class PrunedBertForSequenceClassification(BertForSequenceClassification):
    config_class = PrunedBertConfig

    def __init__(self, config: PrunedBertConfig):
        super().__init__(config)
        full = config.hidden_size
        kept = config.kept_hidden_size or full
        dh = full // config.num_attention_heads
        heads = config.head_counts or [config.num_attention_heads] * config.num_hidden_layers
        ffn = config.intermediate_sizes or [config.intermediate_size] * config.num_hidden_layers
        eps = config.layer_norm_eps

        def norm():
            return FullWidthLayerNorm(kept, full, eps) if kept < full else nn.LayerNorm(kept, eps=eps)

        bert = self.bert
        if kept < full:
            emb = bert.embeddings
            emb.word_embeddings = nn.Embedding(config.vocab_size, kept, padding_idx=config.pad_token_id)
            emb.position_embeddings = nn.Embedding(config.max_position_embeddings, kept)
            emb.token_type_embeddings = nn.Embedding(config.type_vocab_size, kept)
            emb.LayerNorm = norm()
            if bert.pooler is not None:
                bert.pooler.dense = nn.Linear(kept, full)
        for layer, h, f in zip(bert.encoder.layer, heads, ffn):
            att = layer.attention
            if h == 0:
                att.self = NoHeads()
            else:
                att.self.query, att.self.key, att.self.value = (nn.Linear(kept, h * dh) for _ in range(3))
                att.self.num_attention_heads, att.self.all_head_size = h, h * dh
            att.output.dense = nn.Linear(h * dh, kept)
            att.output.LayerNorm = norm()
            layer.intermediate.dense = nn.Linear(kept, f)
            layer.output.dense = nn.Linear(f, kept)
            layer.output.LayerNorm = norm()
