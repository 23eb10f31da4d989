"""Values read from a stored run's record: structured or not, FLOPs removed, held-out error."""

from __future__ import annotations


def run_heldout_error(r: dict) -> float | None:
    """A run's held-out error at the last block (None for runs stored before it was measured)."""
    held = r.get("heldout_error")
    if held is None and r.get("blocks"):
        held = r["blocks"][-1].get("heldout_error")
    return held


FLOPS_HELP = ("FLOPs removed: 1 - FLOPs of the pruned encoder / FLOPs of the dense encoder, matrix multiplications "
              "at the calibration texts' average length")


def is_structured(res: dict) -> bool:
    """Whether a stored run removed whole units (it carries a `structure` record)."""
    return bool(res.get("structure"))


def flops_reduction(res: dict) -> float | None:
    """A structured run's achieved FLOPs reduction (the stored `flops_reduction`, else 1 - flops / flops_dense);
    None for unstructured runs."""
    s = res.get("structure")
    if not s:
        return None
    if s.get("flops_reduction") is not None:
        return float(s["flops_reduction"])
    return 1 - s["flops"] / s["flops_dense"]


def intermediate_size(structure: dict) -> int:
    """FFN width of the dense model, recovered from the stored dense parameter count (the structure record
    stores kept neurons per layer, not the width): params = L H (4 d d_h + 3 d_h) + L F (2 d + 1) + 2 L d."""
    layers, heads = len(structure["heads"]), len(structure["heads"][0])
    d, dh = structure["hidden_size"], structure["head_dim"]
    rest = structure["params_dense"] - 2 * layers * d - layers * heads * (4 * d * dh + 3 * dh)
    return round(rest / (layers * (2 * d + 1)))


def _flops_value(r: dict, measure: str) -> float:
    return r["blocks"][-1]["cumulative_error"] if measure == "final_cumulative_error" else r[measure]
