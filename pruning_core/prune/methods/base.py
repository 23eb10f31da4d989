"""What every post-training pruning method provides to the engine, and how its options are declared.

A method's options are a frozen dataclass whose fields are declared with `knob(...)`: the default, and
the metadata that both the checks (`Method.options`, the one place options are validated) and the
dashboard's form (`dashboard/method_form.py`) read. So adding a method is its module plus one line in
`methods/__init__.py`; the CLI, sweep files and the Prune page take its knobs from there."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from pruning_core.core.errors import PrunescopeError
from pruning_core.prune.masks import Pattern


MAX_INT_OPTION = 1_000_000  # steps, epochs, sizes: anything larger is a typo, not an experiment
_KIND = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def knob(default, label: str, help: str = "", *, ge=None, gt=None, le=None, lt=None, choices=None,
         ui_min=None, ui_max=None, step=None, format: str | None = None, shown_when: dict | None = None,
         more: bool = False, widget: str | None = None):
    """A method option as a dataclass field: its `default` and its metadata.

    - `label`, `help`: what the form shows;
    - `ge`, `gt`, `le`, `lt`: the bounds `Method.options` checks (>=, >, <=, <);
    - `choices`: the allowed strings, a tuple, or a dict value -> label shown in the form;
    - `ui_min`, `ui_max`: the form's range where it differs from the bounds (an open bound like
      `gt=0` needs a smallest value to offer; a widget may also offer less than the checks allow);
    - `step`, `format`: the number input's step and printf format ("%.1e");
    - `shown_when`: {other option: allowed value(s)}: drawn only then; a hidden knob keeps its default,
      so equal runs share a key;
    - `more`: drawn in the form's "More ... knobs" expander;
    - `widget`: "slider", "checkbox", "selectbox" or "radio" instead of the form's choice by type."""
    if shown_when is not None:
        shown_when = {k: tuple(v) if isinstance(v, (tuple, list, set)) else (v,) for k, v in shown_when.items()}
    meta = dict(label=label, help=help, ge=ge, gt=gt, le=le, lt=lt, choices=choices, ui_min=ui_min, ui_max=ui_max,
                step=step, format=format, shown_when=shown_when, more=more, widget=widget)
    return dataclasses.field(default=default, metadata={k: v for k, v in meta.items() if v is not None})


def choice_values(meta) -> tuple:
    """The allowed values of a knob with `choices` (the keys when they come with labels)."""
    choices = meta.get("choices")
    return tuple(choices) if choices is not None else ()


def _either(values) -> str:
    """('a',) -> 'a'; ('a', 'b', 'c') -> 'a, b or c'."""
    values = [str(v) for v in values]
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " or " + values[-1]


def _number(x) -> str:
    return f"{x:g}"


def range_text(name: str, meta) -> str | None:
    """'blocksize >= 1', '0 < percdamp < 1', 'prune_end <= 1': a knob's bounds as the error message says them."""
    low = next(((k, meta[k]) for k in ("ge", "gt") if k in meta), None)
    high = next(((k, meta[k]) for k in ("le", "lt") if k in meta), None)
    if low and high:
        return (f"{_number(low[1])} {'<=' if low[0] == 'ge' else '<'} {name} "
                f"{'<=' if high[0] == 'le' else '<'} {_number(high[1])}")
    if low:
        return f"{name} {'>=' if low[0] == 'ge' else '>'} {_number(low[1])}"
    if high:
        return f"{name} {'<=' if high[0] == 'le' else '<'} {_number(high[1])}"
    return None


def in_range(meta, value) -> bool:
    """Whether a number lies within the knob's bounds (NaN never does)."""
    return all(key not in meta or test(value, meta[key]) for key, test in (
        ("ge", lambda v, b: v >= b), ("gt", lambda v, b: v > b),
        ("le", lambda v, b: v <= b), ("lt", lambda v, b: v < b)))


def shown(meta, values: dict) -> bool:
    """Whether a knob is drawn, given the values of the knobs its `shown_when` names."""
    return all(values.get(other) in allowed for other, allowed in (meta.get("shown_when") or {}).items())


@dataclass(frozen=True)
class NoOptions:
    """This method has no knobs."""


class Method:
    """A pruning method: given the weights of the modules that share one input, and the Gram
    matrix X^T X of that input over calibration tokens, return new weights and keep-masks.

    `prepare` runs once before the first block (e.g. a global threshold).

    Besides its solver, a method declares what the rest of the house needs: `Options` (fields from
    `knob`), `colour` (the same in every chart), `removes` (what it takes out of the model), `note`
    (a line on what the chosen options cost) and `extra_calibration_texts` (texts it asks the
    experiment to generate besides the task's calibration set)."""

    name: ClassVar[str]
    paper: ClassVar[str]
    Options: ClassVar[type] = NoOptions
    colour: ClassVar[str | None] = None  # None: the charts pick one from a spare palette
    removes: ClassVar[str] = "weights"
    # Statistics recollected group by group on the partly pruned block, with dense-output targets
    # (`targets` in prune_group: kind -> X^T (Y_dense - b)); see the engine.
    sequential: ClassVar[bool] = False
    # False: masks and weights come from the weights alone (`prune_group` gets gram=None), so the engine
    # collects no statistics for it and measures the local error on the pruned pass instead (see the engine).
    needs_statistics: ClassVar[bool] = True
    structured: ClassVar[bool] = False  # see StructuredMethod

    def options(self, values: dict[str, Any] | None = None):
        """Validate and freeze this method's knobs: unknown keys, types, NaN and infinity, the bounds and
        choices of each field's metadata, then the Options' own cross-field `check()` if it has one."""
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
            if want is float and not math.isfinite(value):  # NaN passes every < and > check
                raise PrunescopeError(f"option {name} of '{self.name}' must be a finite number; got {_show(value)}")
            if want is int and abs(value) > MAX_INT_OPTION:
                raise PrunescopeError(f"option {name} of '{self.name}' is out of range (at most "
                                      f"{MAX_INT_OPTION:,}); got {_show(value)}")
            if want is str and len(value) > 100:
                raise PrunescopeError(f"option {name} of '{self.name}' is too long ({len(value)} characters)")
            meta = fields[name].metadata
            allowed = choice_values(meta)
            if allowed and value not in allowed:
                raise PrunescopeError(f"{self.name} {name} must be {_either(allowed)}; got {_show(value)}")
            if want in (int, float) and not in_range(meta, value):
                raise PrunescopeError(f"{self.name} needs {range_text(name, meta)}; got {_show(value)}")
            values[name] = value
        opts = self.Options(**values)
        check = getattr(opts, "check", None)
        if check:
            check()
        return opts

    def note(self, options) -> str | None:
        """A line for the form under the knobs: what these options do or cost (None: nothing to add)."""
        return None

    def extra_calibration_texts(self, options) -> int:
        """How many texts the experiment should generate from the model itself and pass to the engine as
        `extra` calibration (the reconstruction paper's self-generated data); 0 for none."""
        return 0

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
    removes: ClassVar[str] = "heads and FFN neurons"
    budget_meaning: ClassVar[str] = "fraction of encoder FLOPs removed"

    def prune_structured(self, ctx) -> Any:
        raise NotImplementedError
