"""Notes under a run's cards: the 95% interval of each accuracy card and the environment the run was made in."""

from __future__ import annotations

import streamlit as st

from pruning_core.core import environment
from pruning_core.storage.diff import interval


ERRORS_NOTE = ("Local error: how far each pruned module's output moved, ‖WX − W′X‖² / ‖WX‖² on its own inputs. "
               "Cumulative error: how far a block's output moved from the dense model's, ‖Y − Y′‖² / ‖Y‖², with "
               "every error before it included; it is a ratio to the dense output's size, not a fraction, so it can "
               "exceed 1 when the pruned output differs by more than the output itself.")


def delta(value: float, fmt: str = "+.3f", suffix: str = "") -> str | None:
    """A card's delta text, or None (no arrow) where it rounds to zero: never a red or green arrow on '+0.000'."""
    text = format(value, fmt)
    if float(text.replace("%", "")) == 0:
        return None
    return text + suffix


def ci_text(res: dict, which: str = "accuracy") -> str:
    """'95% CI 0.812–0.871 (Wilson, 500 examples)' for a run's `accuracy` or `dense_accuracy`: the stored
    interval, else computed from the accuracy and the number of examples; '' when neither is known."""
    ci = interval(res, which)
    if not ci:
        return ""
    n = res.get("eval_examples")
    return f"95% CI {ci[0]:.3f}–{ci[1]:.3f}" + (f" (Wilson, {n} examples)" if n else " (Wilson)")


def show(res: dict, dense_col, pruned_col) -> None:
    """The interval under the dense and the pruned accuracy card, and the run environment on a line below."""
    for col, which in ((dense_col, "dense_accuracy"), (pruned_col, "accuracy")):
        text = ci_text(res, which)
        if text:
            col.caption(text, help="95% Wilson score interval of the accuracy on this many test examples: "
                                   "differences well inside it are sampling noise")
    st.caption(f"Run environment: {environment.describe(res.get('environment'))}")
