"""What a structured pruning result keeps, and what it costs in FLOPs.

A `Structure` holds keep-masks over units: attention heads [layers, heads], FFN neurons
[layers, neurons] and (for PAT) hidden channels [hidden]. FLOPs are counted as in K-prune
(Park et al., ICLR 2024) and Kwon et al. (NeurIPS 2022): the matrix multiplications of the encoder
at the task's average sequence length s, 2 FLOPs per multiply-add; embeddings, LayerNorm, softmax,
biases and the classifier are not counted (they are a few percent and no method removes them).

Per layer, with hidden width d and head size d_h:
- one attention head: Q, K, V projections 3 * 2 s d d_h, scores Q K^T 2 s^2 d_h, context 2 s^2 d_h,
  its share of the output projection 2 s d_h d  =>  8 s d d_h + 4 s^2 d_h;
- one FFN neuron: its row of the input projection and column of the output projection  =>  4 s d.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pruning_core.model.arch import intermediate_size
from pruning_core.core.errors import PrunescopeError
from pruning_core.prune.records import StepRecord  # noqa: F401 (re-exported: structured methods report steps)


def head_flops(hidden: int, head_dim: int, seq_len: float) -> float:
    return 8 * seq_len * hidden * head_dim + 4 * seq_len ** 2 * head_dim


def neuron_flops(hidden: int, seq_len: float) -> float:
    return 4 * seq_len * hidden


@dataclass(frozen=True)
class Structure:
    """Keep-masks (True = kept) of a BERT-style encoder's prunable units."""

    heads: torch.Tensor  # bool [layers, heads]
    neurons: torch.Tensor  # bool [layers, intermediate]
    head_dim: int
    hidden: torch.Tensor  # bool [hidden]

    @classmethod
    def full(cls, config) -> "Structure":
        """Everything kept, shaped by a BERT-style config (hidden_size, num_attention_heads, ...)."""
        layers, heads = config.num_hidden_layers, config.num_attention_heads
        return cls(torch.ones(layers, heads, dtype=torch.bool),
                   torch.ones(layers, intermediate_size(config), dtype=torch.bool),
                   config.hidden_size // heads, torch.ones(config.hidden_size, dtype=torch.bool))

    def replace(self, heads=None, neurons=None, hidden=None) -> "Structure":
        return Structure(self.heads if heads is None else heads.bool().cpu(),
                         self.neurons if neurons is None else neurons.bool().cpu(), self.head_dim,
                         self.hidden if hidden is None else hidden.bool().cpu())

    @property
    def kept_hidden(self) -> int:
        return int(self.hidden.sum())

    def flops(self, seq_len: float) -> float:
        """Encoder FLOPs of one sequence of `seq_len` tokens with only the kept units."""
        d = self.kept_hidden
        return float(self.heads.sum()) * head_flops(d, self.head_dim, seq_len) + \
            float(self.neurons.sum()) * neuron_flops(d, seq_len)

    def params(self) -> int:
        """Weights and biases of the encoder's linear layers that remain (Q/K/V/output per head,
        FFN in/out per neuron, output-projection biases)."""
        d, dh = self.kept_hidden, self.head_dim
        layers = self.heads.shape[0]
        return int(self.heads.sum()) * (4 * d * dh + 3 * dh) + int(self.neurons.sum()) * (2 * d + 1) \
            + 2 * layers * d

    def to_json(self) -> dict:
        return {"heads": self.heads.int().tolist(), "neurons_kept": self.neurons.sum(1).tolist(),
                "head_dim": self.head_dim, "hidden_kept": self.kept_hidden, "hidden_size": len(self.hidden)}

    def masks(self) -> dict[str, torch.Tensor]:
        """2-D bool masks for the results store."""
        return {"structure.heads": self.heads, "structure.neurons": self.neurons,
                "structure.hidden": self.hidden[None]}

    @classmethod
    def from_masks(cls, masks: dict[str, torch.Tensor], head_dim: int) -> "Structure":
        return cls(masks["structure.heads"].bool(), masks["structure.neurons"].bool(), head_dim,
                   masks["structure.hidden"][0].bool())


def check_budget(budget: float) -> None:
    if not isinstance(budget, (int, float)) or not 0 <= budget < 1:
        raise PrunescopeError(f"the FLOPs reduction must be in [0, 1); got {budget}")


def average_length(batches) -> float:
    """Average number of real tokens per sequence over (input_ids, attention_mask) batches: the s of
    the FLOPs count, as K-prune computes it from the task's data."""
    tokens = sum(int(m.sum()) for _, m in batches)
    return tokens / max(1, sum(ids.shape[0] for ids, _ in batches))
