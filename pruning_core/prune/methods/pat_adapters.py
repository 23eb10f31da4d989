"""PAT's trainable additions to a BERT classifier: LoRA on its linears, the Hybrid Sparsification Modules
(HSM) on every residual-stream write and the channel mask they share (see `pruning_core.prune.methods.pat`).

`Adapters` attaches them by hooks, leaving the model's own weights untouched until `merge` writes them in.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pruning_core.model.arch import arch_of


class LoRA(nn.Module):
    """Low-rank update of one linear: adds (x A^T B^T) * alpha / r to its output."""

    def __init__(self, linear: nn.Linear, rank: int, alpha: float, gen: torch.Generator):
        super().__init__()
        w = linear.weight
        bound = 1 / math.sqrt(linear.in_features)
        self.A = nn.Parameter((torch.rand(rank, linear.in_features, generator=gen) * 2 - 1).mul(bound).to(w))
        self.B = nn.Parameter(torch.zeros(linear.out_features, rank, dtype=w.dtype, device=w.device))
        self.scaling = alpha / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x @ self.A.T) @ self.B.T * self.scaling

    def delta(self) -> torch.Tensor:
        return self.B @ self.A * self.scaling


class HSM(nn.Module):
    """x -> scale * m * (x + B A x), with m the shared channel mask (a tensor owned by `Adapters`)."""

    def __init__(self, d: int, rank: int, gen: torch.Generator, like: torch.Tensor, trainable: bool = True):
        super().__init__()
        q, _ = torch.linalg.qr(torch.randn(d, rank, generator=gen, dtype=torch.float64))
        self.A = nn.Parameter(q.T.contiguous().to(like), requires_grad=trainable)  # orthonormal rows
        self.B = nn.Parameter(like.new_zeros(d, rank), requires_grad=trainable)
        self.scale = nn.Parameter(like.new_ones(d), requires_grad=trainable)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.scale * mask * (x + (x @ self.A.T) @ self.B.T)

    def matrix(self, mask: torch.Tensor) -> torch.Tensor:
        """The d x d matrix diag(scale * m) (I + B A) this module multiplies by."""
        eye = torch.eye(self.B.shape[0], dtype=self.B.dtype, device=self.B.device)
        return (self.scale * mask)[:, None] * (eye + self.B @ self.A)

    def identity_loss(self) -> torch.Tensor:
        eye = torch.eye(self.A.shape[0], dtype=self.A.dtype, device=self.A.device)
        return (self.A @ self.A.T - eye).pow(2).sum()


_LORA_NAMES = {"q": "query", "k": "key", "v": "value", "attn_out": "attn_out", "ffn_in": "ffn_in", "ffn_out": "ffn_out"}


def lora_targets(model) -> dict[str, nn.Linear]:
    """The linears that get LoRA: Q, K, V, attention output, FFN in and out of every layer; the pooler."""
    arch = arch_of(model)
    out = {f"{i}.{_LORA_NAMES[kind]}": lin for i, block in enumerate(arch.blocks(model))
           for kind, lin in arch.block_linears(block).items()}
    pooler = arch.pooler_dense(model)
    if pooler is not None:
        out["pooler"] = pooler
    return out


def layer_norms(model) -> list[nn.Module]:
    return arch_of(model).layer_norms(model)


class Adapters(nn.Module):
    """The trainable additions, attached to a BERT classifier by hooks (its own weights untouched until
    `merge`): LoRA per target linear, one HSM per residual-stream write, the shared mask."""

    def __init__(self, model, lora_rank: int, lora_alpha: float, hsm_rank: int, seed: int, hsm: bool = True,
                 train_mask: bool = True, train_lora: bool = True):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        d = model.config.hidden_size
        like = next(model.parameters())
        self.model = [model]  # not a submodule: its weights are not ours
        self.mask = nn.Parameter(like.new_ones(d), requires_grad=train_mask)
        self.lora = nn.ModuleDict({k.replace(".", "_"): LoRA(lin, lora_rank, lora_alpha, gen)
                                   for k, lin in lora_targets(model).items()})
        for p in self.lora.parameters():
            p.requires_grad_(train_lora)
        rank = hsm_rank if hsm else 0
        n_hsm = 1 + 2 * model.config.num_hidden_layers
        self.hsm = nn.ModuleList(HSM(d, rank, gen, like, trainable=hsm) for _ in range(n_hsm))
        self.handles = []
        for p in model.parameters():
            p.requires_grad_(False)
        self._attach(model)

    def _attach(self, model) -> None:
        targets = lora_targets(model)
        writes = {f"{i}.attn_out": 1 + 2 * i for i in range(model.config.num_hidden_layers)} | \
                 {f"{i}.ffn_out": 2 + 2 * i for i in range(model.config.num_hidden_layers)}

        def linear_hook(key):
            lora, h = self.lora[key.replace(".", "_")], writes.get(key)

            def hook(_mod, args, out):
                out = out + lora(args[0])
                return self.hsm[h](out, self.mask) if h is not None else out
            return hook

        for key, lin in targets.items():
            self.handles.append(lin.register_forward_hook(linear_hook(key)))
        emb_norm = arch_of(model).embedding_norm(model)
        self.handles.append(emb_norm.register_forward_pre_hook(lambda _m, args: (self.hsm[0](args[0], self.mask),)))
        for norm in layer_norms(model):
            self.handles.append(norm.register_forward_hook(lambda _m, _i, out: out * self.mask))

    def detach(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []

    def identity_loss(self) -> torch.Tensor:
        return torch.stack([h.identity_loss() for h in self.hsm]).mean()

    @torch.no_grad()
    def fold_mask(self, removed: torch.Tensor | None = None) -> None:
        """Move the kept channels' mask values into every HSM scale and LayerNorm weight and bias, then
        set the mask to exactly 0 on `removed` (default: the channels at 0) and 1 elsewhere: the function
        does not change except for removed channels whose value was not yet exactly 0."""
        m = self.mask.detach()
        kept = m > 0 if removed is None else ~removed
        factor = torch.where(kept, m, torch.ones_like(m))
        for h in self.hsm:
            h.scale.mul_(factor)
        for norm in layer_norms(self.model[0]):
            norm.weight.mul_(factor)
            norm.bias.mul_(factor)
        self.mask.copy_(kept.to(m.dtype))
        self.mask.requires_grad_(False)

    @torch.no_grad()
    def merge(self) -> None:
        """Write LoRA and HSMs into the model's weights and remove the hooks: afterwards
        `masked(model, hidden=mask)` computes what the model with adapters computed."""
        model = self.model[0]
        self.detach()
        targets = lora_targets(model)
        for key, lin in targets.items():
            lin.weight.add_(self.lora[key.replace(".", "_")].delta().to(lin.weight))
        arch = arch_of(model)
        for i, layer in enumerate(arch.blocks(model)):
            for lin, h in ((arch.sublayer(layer, "attn").proj, 1 + 2 * i), (arch.sublayer(layer, "ffn").proj, 2 + 2 * i)):
                mat = self.hsm[h].matrix(self.mask).to(torch.float64)
                lin.weight.copy_((mat @ lin.weight.double()).to(lin.weight))
                if lin.bias is not None:
                    lin.bias.copy_((mat @ lin.bias.double()).to(lin.bias))
        mat = self.hsm[0].matrix(self.mask).to(torch.float64)
        for table in arch.embedding_tables(model):
            table.weight.copy_((table.weight.double() @ mat.T).to(table.weight))
