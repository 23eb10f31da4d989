"""Uncertainty of accuracies: Wilson score intervals for one sample, the spread across seeds, and how many
examples a difference between two accuracies needs before it can be told from noise.

Wilson (1927), "Probable inference, the law of succession, and statistical inference", JASA 22(158).
The sample-size rule is the usual normal approximation for two independent proportions (Fleiss, Levin & Paik,
"Statistical Methods for Rates and Proportions", 3rd ed., eq. 4.14, without the continuity correction).
"""

from __future__ import annotations

import math
from statistics import NormalDist, mean, stdev
from typing import Sequence

Z95 = NormalDist().inv_cdf(0.975)  # 1.959963...


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval (lo, hi) for a proportion of `successes` in `n` trials (95% by default).
    Unlike the normal (Wald) interval it stays inside [0, 1] and is not empty at 0 or n successes."""
    if n <= 0:
        return (float("nan"), float("nan"))
    if not 0 <= successes <= n:
        raise ValueError(f"successes must lie in [0, {n}], got {successes}")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if successes == 0 else max(0.0, centre - half)  # exact at the ends (no 1e-17 rounding)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return (lo, hi)


def accuracy_interval(accuracy: float | None, n: int | None) -> tuple[float, float] | None:
    """The Wilson interval of an accuracy measured on `n` examples (None where either is missing)."""
    if accuracy is None or not n or math.isnan(accuracy):
        return None
    return wilson(round(accuracy * n), int(n))


def seed_spread(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, lo, hi): the mean of one measure over seeds and a 95% interval for it from their spread
    (Student's t with n - 1 degrees of freedom; lo = hi = the value for a single seed)."""
    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not vals:
        return (float("nan"), float("nan"), float("nan"))
    m = mean(vals)
    if len(vals) == 1:
        return (m, m, m)
    half = _t975(len(vals) - 1) * stdev(vals) / math.sqrt(len(vals))
    return (m, m - half, m + half)


def _t975(df: int) -> float:
    """The 97.5% quantile of Student's t (table for small df, the normal beyond 30)."""
    table = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
             12: 2.179, 15: 2.131, 20: 2.086, 25: 2.060, 30: 2.042}
    if df in table:
        return table[df]
    if df > 30:
        return Z95
    below = max(k for k in table if k < df)
    above = min(k for k in table if k > df)
    return table[below] + (table[above] - table[below]) * (df - below) / (above - below)


def examples_needed(p1: float, p2: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Examples per model to tell accuracies `p1` and `p2` apart (two-sided test at `alpha`, with `power`),
    when the two models are scored on independent samples. Scoring both on the same examples (as prunescope
    does) needs fewer, so this is an upper bound."""
    if p1 == p2:
        raise ValueError("the two accuracies are equal: no sample size tells them apart")
    za = NormalDist().inv_cdf(1 - alpha / 2)
    zb = NormalDist().inv_cdf(power)
    pbar = (p1 + p2) / 2
    num = za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil((num / (p1 - p2)) ** 2)
