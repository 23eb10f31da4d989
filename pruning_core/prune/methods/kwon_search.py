"""Kwon et al.'s mask search, stages 1-3 of `pruning_core.prune.methods.kwon`: Fisher information of the unit
masks, the FLOPs-constrained search over head and neuron counts, and the per-layer rearrangement by swaps."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pruning_core.core.errors import PrunescopeError
from pruning_core.prune.structured.structure import Structure
from pruning_core.prune.structured.units import UnitMasks, masked


# -- 1. Fisher information -------------------------------------------------------------------------

@dataclass
class Fisher:
    """Per-example gradients of the loss w.r.t. the unit masks."""

    heads: torch.Tensor  # [examples, layers, heads], float64
    neurons: torch.Tensor  # [examples, layers, neurons], float64

    def diagonal(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Importance I_i = sum_n g_{n,i}^2: [layers, heads], [layers, neurons]."""
        return self.heads.pow(2).sum(0), self.neurons.pow(2).sum(0)

    def block(self, kind: str, layer: int) -> torch.Tensor:
        """Empirical Fisher F_l = sum_n g_{n,l} g_{n,l}^T of one layer's heads or neurons."""
        g = (self.heads if kind == "heads" else self.neurons)[:, layer]
        return g.T @ g


def mask_gradients(model, batches, structure: Structure) -> Fisher:
    """Per-example gradients of the cross-entropy w.r.t. all-ones unit masks (one mask per example)."""
    heads, neurons = [], []
    for ids, mask, labels in batches:
        b = ids.shape[0]
        per = UnitMasks(structure.heads.float().to(ids.device).expand(b, *structure.heads.shape).clone(),
                        structure.neurons.float().to(ids.device).expand(b, *structure.neurons.shape).clone())
        per.heads.requires_grad_(True)
        per.neurons.requires_grad_(True)
        with masked(model, per):
            logits = model(input_ids=ids, attention_mask=mask).logits
        loss = F.cross_entropy(logits, labels, reduction="sum")  # sum: each example its own gradient
        gh, gn = torch.autograd.grad(loss, [per.heads, per.neurons])
        heads.append(gh.detach().double().cpu())
        neurons.append(gn.detach().double().cpu())
    return Fisher(torch.cat(heads), torch.cat(neurons))


# -- 2. mask search --------------------------------------------------------------------------------

def search(head_importance: torch.Tensor, neuron_importance: torch.Tensor, head_cost: float,
           neuron_cost: float, budget: float) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Their Algorithm 1: for h = 0..all heads, keep the top-h heads and the top-f neurons that the
    FLOPs left allow; return the keep-masks (shaped like the importances) whose pruned units carry the
    least importance, and that importance. Ties go to the pair that keeps more FLOPs."""
    hv, nv = head_importance.flatten().double(), neuron_importance.flatten().double()
    h_sorted, h_order = hv.sort(descending=True)
    n_sorted, n_order = nv.sort(descending=True)
    h_top = torch.cat([hv.new_zeros(1), h_sorted.cumsum(0)])  # h_top[k]: importance of the best k heads
    n_top = torch.cat([nv.new_zeros(1), n_sorted.cumsum(0)])
    total = float(hv.sum() + nv.sum())
    best = None
    for h in range(len(hv) + 1):
        if h * head_cost > budget:
            break
        f = min(len(nv), int((budget - h * head_cost) // neuron_cost))
        while f > 0 and h * head_cost + f * neuron_cost > budget:  # rounding of the floor division
            f -= 1
        pruned = total - float(h_top[h] + n_top[f])
        key = (pruned, -(h * head_cost + f * neuron_cost))
        if best is None or key < best[0]:
            best = (key, h, f)
    if best is None:
        raise PrunescopeError("kwon: the FLOPs budget is negative")
    (pruned, _), h, f = best
    heads = torch.zeros(len(hv), dtype=torch.bool)
    heads[h_order[:h]] = True
    neurons = torch.zeros(len(nv), dtype=torch.bool)
    neurons[n_order[:f]] = True
    return heads.view(head_importance.shape), neurons.view(neuron_importance.shape), pruned


# -- 3. mask rearrangement -------------------------------------------------------------------------

def pruned_loss(keep: torch.Tensor, fisher: torch.Tensor) -> float:
    """z^T F z for the pruned indicator z = 1 - keep."""
    z = (~keep).to(fisher.dtype)
    return float(z @ fisher @ z)


def rearrange(keep: torch.Tensor, fisher: torch.Tensor, steps: int = 100) -> tuple[torch.Tensor, int]:
    """Swap one kept and one pruned unit at a time, the swap that lowers z^T F z most, while one does
    (at most `steps` swaps). Returns the new keep-mask (same count) and the number of swaps.

    Making pruned p kept and kept k pruned changes z^T F z by F_pp + F_kk - 2 F_pk - 2 (F z)_p + 2 (F z)_k.
    `cost[p, k]` holds the first three terms for the valid pairs (inf elsewhere); one swap updates two
    rows and two columns of it."""
    keep = keep.clone()
    fisher = fisher.double()
    diag = fisher.diagonal()
    pair = diag[:, None] + diag[None, :] - 2 * fisher
    inf = torch.tensor(float("inf"), dtype=pair.dtype)
    cost = torch.where(~keep[:, None] & keep[None, :], pair, inf)
    fz = fisher @ (~keep).double()
    swaps = 0
    for _ in range(steps):
        if keep.all() or not keep.any():
            break
        row_best, row_k = (cost + 2 * fz[None, :]).min(1)  # best kept k for every pruned p
        gain = row_best - 2 * fz
        p = int(gain.argmin())
        k = int(row_k[p])
        objective = float((~keep).double() @ fz)
        if not float(gain[p]) < -1e-12 * max(abs(objective), 1e-300):
            break
        keep[p], keep[k] = True, False
        fz += fisher[:, k] - fisher[:, p]
        cost[p] = inf
        cost[:, k] = inf
        cost[k] = torch.where(keep, pair[k], inf)
        cost[:, p] = torch.where(~keep, pair[:, p], inf)
        swaps += 1
    return keep, swaps
