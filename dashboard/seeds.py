"""The "Seeds" input of the Compare and Robustness pages: one seed or a comma-separated list of them."""

from __future__ import annotations

from pruning_core import PrunescopeError

MAX_SEEDS = 10


def parse_seeds(text: str) -> list[int]:
    """'0' -> [0]; '0, 1,2' -> [0, 1, 2] (order kept). Empty, negative, non-integer or repeated seeds, or more
    than MAX_SEEDS of them, raise PrunescopeError."""
    parts = [p.strip() for p in str(text).replace(";", ",").split(",")]
    if not any(parts):
        raise PrunescopeError("Seeds: give at least one seed, e.g. 0 or 0,1,2")
    seeds = []
    for p in parts:
        if not p.isdigit():
            raise PrunescopeError(f"Seeds: {p!r} is not a non-negative integer (write e.g. 0,1,2)")
        seeds.append(int(p))
    if len(set(seeds)) < len(seeds):
        raise PrunescopeError(f"Seeds: a seed is listed twice ({text})")
    if len(seeds) > MAX_SEEDS:
        raise PrunescopeError(f"Seeds: at most {MAX_SEEDS} seeds; got {len(seeds)}")
    return seeds
