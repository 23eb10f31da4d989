"""What pruning produces and reports as it goes: the records the engine and the structured runner yield
(`LayerRecord` per module, `BlockRecord` per block, `StepRecord` per step of a structured method) and
the `PruneResult` they return. Plain data, so callers (CLI, dashboard, store) and producers (engine,
structured methods) import it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class LayerRecord:
    """One pruned linear module."""

    name: str
    block: int
    kind: str
    shape: tuple[int, int]
    achieved_sparsity: float
    local_error: float  # ||WX - W'X||^2 / ||WX||^2, X = inputs reaching it in the pruned model
    cumulative_error: float  # module output, pruned model vs dense model, calibration inputs
    seconds: float  # time the method spent on this module's input group (shared by Q, K and V)


@dataclass(frozen=True)
class BlockRecord:
    """One encoder block after all its modules are pruned."""

    block: int
    achieved_sparsity: float
    cumulative_error: float  # block output, pruned vs dense
    seconds: float
    heldout_error: float | None = None  # the same on the held-out set (never used to choose or fit)
    refine_loss: tuple[float, ...] | None = None  # reconstruction: training loss per epoch (window's last block)


@dataclass
class PruneResult:
    method: str
    sparsity: float
    pattern: str
    layers: list[LayerRecord]
    blocks: list[BlockRecord]
    masks: dict[str, torch.Tensor]  # module name -> bool keep-mask (CPU)
    achieved_sparsity: float  # zeros / weights over the pruned modules
    encoder_sparsity: float  # zeros / parameters over all encoder blocks (biases, LayerNorm included)
    cls_error: float  # [CLS] (pooled) representation error on the calibration set
    logits_kl: float  # KL(dense || pruned) on the calibration set
    prune_seconds: float
    peak_memory_mb: float  # memory growth at the peak of pruning
    peak_total_mb: float  # whole process (CPU) / allocator (GPU) footprint at that peak
    device: str
    calib_examples: int
    calib_tokens: int
    timings: dict = field(default_factory=dict)
    structure: dict | None = None  # structured methods: kept units, FLOPs and parameters (structured.run)


@dataclass(frozen=True)
class StepRecord:
    """One step of a structured method (a sub-layer searched, a training step...)."""

    step: int
    total: int
    label: str
    flops_kept: float | None = None  # fraction of dense encoder FLOPs the model has after this step
    loss: float | None = None


class ErrorSum:
    """Accumulates ||dense - pruned||^2 and ||dense||^2 batch by batch."""

    def __init__(self):
        self.num = 0.0
        self.den = 0.0

    def add(self, dense: torch.Tensor, pruned: torch.Tensor) -> None:
        d = (dense - pruned).reshape(-1).float()
        x = dense.reshape(-1).float()
        self.num += float(torch.dot(d, d))  # one fused multiply-add pass, no squared copy
        self.den += float(torch.dot(x, x))

    @property
    def value(self) -> float:
        return self.num / self.den if self.den > 0 else 0.0
