"""What every post-training pruning method provides to the engine."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from pruning_core.errors import PrunescopeError
from pruning_core.masks import Pattern


MAX_INT_OPTION = 1_000_000  # steps, epochs, sizes: anything larger is a typo, not an experiment
_KIND = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."



@dataclass(frozen=True)
class NoOptions:
    """This method has no knobs."""


class Method:
    """A pruning method: given the weights of the modules that share one input, and the Gram
    matrix X^T X of that input over calibration tokens, return new weights and keep-masks.

    `prepare` runs once before the first block (e.g. a global threshold)."""

    name: ClassVar[str]
    paper: ClassVar[str]
    Options: ClassVar[type] = NoOptions
    # Statistics recollected group by group on the partly pruned block, with dense-output targets
    # (`targets` in prune_group: kind -> X^T (Y_dense - b)); see the engine.
    sequential: ClassVar[bool] = False
    structured: ClassVar[bool] = False  # see StructuredMethod

    def options(self, values: dict[str, Any] | None = None):
        """Validate and freeze this method's knobs (unknown keys are an error)."""
        values = dict(values or {})
        fields = {f.name: f for f in dataclasses.fields(self.Options)}
        unknown = set(values) - set(fields)
        if unknown:
            known = ", ".join(fields) or "none"
            raise PrunescopeError(f"method '{self.name}' has no option(s) {', '.join(sorted(unknown))}; "
                                  f"its options: {known}")
        for name, value in values.items():
            want = type(fields[name].default)
            ok = isinstance(value, want) and not isinstance(value, bool) if want is not bool else isinstance(value, bool)
            if want is float and isinstance(value, int) and not isinstance(value, bool):
                value, ok = float(value), True
            if not ok:
                raise PrunescopeError(f"option {name} of '{self.name}' must be {_KIND.get(want, want.__name__)}; got {_show(value)}")
            if want is float and not math.isfinite(value):  # NaN passes every < and > check below
                raise PrunescopeError(f"option {name} of '{self.name}' must be a finite number; got {_show(value)}")
            if want is int and abs(value) > MAX_INT_OPTION:
                raise PrunescopeError(f"option {name} of '{self.name}' is out of range (at most "
                                      f"{MAX_INT_OPTION:,}); got {_show(value)}")
            if want is str and len(value) > 100:
                raise PrunescopeError(f"option {name} of '{self.name}' is too long ({len(value)} characters)")
            values[name] = value
        opts = self.Options(**values)
        check = getattr(opts, "check", None)
        if check:
            check()
        return opts

    def check_pattern(self, pattern: Pattern, options) -> None:
        """Raise PrunescopeError when these options cannot produce `pattern` (checked before any work)."""

    def prepare(self, weights: list[torch.Tensor], sparsity: float, pattern: Pattern, options) -> Any:
        return None

    def prune_group(self, weights: dict[str, torch.Tensor], gram: torch.Tensor, sparsity: float,
                    pattern: Pattern, options, context: Any, targets: dict[str, torch.Tensor] | None = None
                    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        raise NotImplementedError

    # -- reconstruction (a refine stage after the masks of a window of blocks are chosen) -----------
    def window(self, options) -> int:
        """How many consecutive blocks are chosen, then refined together."""
        return 1

    def refine_target(self, options) -> str | None:
        """None (no refine stage), 'block' (the dense block on the pruned inputs) or 'global' (the
        dense model's output at the window's end)."""
        return None

    def refine(self, arch, blocks, linears_and_masks, inputs, targets, attn, keeps, options) -> list[float]:
        """Train the window's unmasked weights towards `targets`; returns the loss per epoch."""
        raise NotImplementedError


class StructuredMethod(Method):
    """A method that removes whole units (heads, FFN neurons, hidden channels) instead of single
    weights. It works on the whole model at once, not through the layer-by-layer engine:
    `prune_structured(ctx)` returns the unit keep-masks and leaves the (full-size) model with any
    updated weights; `structured.run` then removes the units physically and measures the result.
    The experiment's `sparsity` is the method's budget (see `budget_meaning`)."""

    structured: ClassVar[bool] = True
    budget_meaning: ClassVar[str] = "fraction of encoder FLOPs removed"

    def prune_structured(self, ctx) -> Any:
        raise NotImplementedError
