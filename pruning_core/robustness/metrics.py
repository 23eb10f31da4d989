"""Robustness measures from per-example attack records (the names of README's Measures section).

Each record has `result` in {successful, failed, skipped} (skipped: the model was already wrong on the
clean text, so there was nothing to attack), `queries`, `words` (words in the original text) and
`changed` (indices of perturbed words). With n examples:

- clean accuracy = (n - skipped) / n
- accuracy under attack = failed / n (examples still correct after the attack, over all examples)
- attack success rate = successful / (n - skipped)
- average perturbed-word percentage = mean over successful attacks of 100 * |changed| / words
- average queries = mean over attacked (not skipped) examples of model queries
As TextAttack's own summary table computes them.
"""

from __future__ import annotations

from typing import Iterable

RESULT_TYPES = ("successful", "failed", "skipped")


def summarize(records: Iterable[dict]) -> dict:
    """Counts and the five measures for a list of example records."""
    recs = list(records)
    n = len(recs)
    counts = {t: sum(r["result"] == t for r in recs) for t in RESULT_TYPES}
    unknown = n - sum(counts.values())
    if unknown:
        raise ValueError(f"{unknown} records have a result outside {RESULT_TYPES}")
    attacked = [r for r in recs if r["result"] != "skipped"]
    success = [r for r in recs if r["result"] == "successful"]
    clean_correct = n - counts["skipped"]
    return {
        "examples": n,
        **counts,
        "clean_accuracy": clean_correct / n if n else None,
        "accuracy_under_attack": counts["failed"] / n if n else None,
        "attack_success_rate": counts["successful"] / clean_correct if clean_correct else None,
        "avg_perturbed_word_pct": (sum(100.0 * len(r["changed"]) / max(r["words"], 1) for r in success)
                                   / len(success)) if success else None,
        "avg_queries": sum(r["queries"] for r in attacked) / len(attacked) if attacked else None,
        "attack_seconds": sum(r.get("seconds", 0.0) for r in recs),
    }
