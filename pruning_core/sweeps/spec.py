"""A sweep, specified: the fields of a sweep file as a pydantic model (`SweepSpec`, its `AttackEntry`s),
and the one grid expander that turns a spec into `ExperimentConfig`s (`expand`) and `AttackConfig`s
(`expand_attacks`). Sweep files, `prunescope sweep`, the Compare page and the Robustness page all build a
spec and expand it, so equal grids get equal keys wherever they are asked for.

The model checks each field alone (types, bounds, known tasks, recipes, patterns, the device name);
`sweepfile` adds what needs several fields, the method options (each method's `Method.options`) and the
model folders, with the file's lines.
"""

from __future__ import annotations

import itertools
import json
import math
from typing import TYPE_CHECKING, Annotated, Any, Callable, Iterable, Union, get_args

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag,
                      ValidationError)

from pruning_core.experiments.config import ExperimentConfig
from pruning_core.core.errors import PrunescopeError

if TYPE_CHECKING:
    from pruning_core.robustness import AttackConfig

STRUCTURED = "structured"
SPARSITIES = tuple(round(0.1 * i, 1) for i in range(1, 10))  # the Compare page's grid
ROBUSTNESS_SPARSITIES = (0.0, 0.3, 0.5, 0.7, 0.9)  # the Robustness page's grid; 0 is the dense model


def _as_tuple(value: Any) -> Any:
    """One value or a list of values, as a tuple (`seed: 0` is `seed: [0]`)."""
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def _distinct(values: tuple) -> tuple:
    if len(set(map(repr, values))) < len(values):
        raise ValueError(f"lists a value twice: {list(values)}")
    return values


def _known_task(task: str) -> str:
    from pruning_core.data import tasks as data

    if task not in data.SHIPPED and task not in data.HUB:
        data.load(task)  # a local file or folder: raises PrunescopeError (a ValueError) if unusable
    return task


def _pattern(pattern: str) -> str:
    from pruning_core.prune.masks import parse_pattern

    if pattern == STRUCTURED:
        raise ValueError("structured methods always run at pattern 'structured' and the others cannot: "
                         "leave it out of patterns (list kprune, kwon or pat under methods)")
    parse_pattern(pattern)
    return pattern


def _sparsity(s: float) -> float:
    if not 0 <= s < 1:
        raise ValueError(f"sparsity must be in [0, 1); got {s}")
    return float(s)


def _device(name: str) -> str:
    from pruning_core.model import models

    if name != "auto":
        models.check_device_name(name)  # the name only: workers may have the device, this machine not
    return name


def _recipe(name: str) -> str:
    from pruning_core.robustness import recipes

    recipes.get(name)  # known; whether it can run on this machine is the sweep file's check
    return name


def _listed(item: Any) -> Any:
    """One value or a list of distinct values of `item` (not empty), held as a tuple."""
    return Annotated[tuple[item, ...], BeforeValidator(_as_tuple), Field(min_length=1), AfterValidator(_distinct)]


def _shapes(pick: Callable[[Any], str | None], message: str, **members: Any) -> Any:
    """A field of several shapes, told apart by `pick(value)` (a tag of `members`; None: no shape fits)."""
    return Annotated[Union[tuple(Annotated[t, Tag(tag)] for tag, t in members.items())],
                     Discriminator(pick, custom_error_type="shape", custom_error_message=message)]


Task = Annotated[str, AfterValidator(_known_task)]
Pattern = Annotated[str, AfterValidator(_pattern)]
Sparsity = Annotated[float, AfterValidator(_sparsity)]
Options = Union[dict[str, Any], None]  # option -> value or list of values; checked by the method's own options()
MethodItem = _shapes(lambda v: "name" if isinstance(v, str) else "entry" if isinstance(v, dict) else None,
                     "must be a method name or a one-key mapping name: {options}",
                     name=str, entry=Annotated[dict[str, Options], Field(min_length=1, max_length=1)])
Methods = _shapes(lambda v: "mapping" if isinstance(v, dict) else "list" if isinstance(v, (str, list, tuple)) else None,
                  "must be a list of method names or a mapping name -> options",
                  mapping=Annotated[dict[str, Options], Field(min_length=1)], list=_listed(MethodItem))
Models = _shapes(lambda v: "per_task" if isinstance(v, dict) else "all", "",
                 per_task=dict[str, _listed(str)], all=_listed(str))


class AttackEntry(BaseModel):
    """One `attacks:` entry: a recipe run on the grid's pruned models (those it selects) and the dense ones."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    recipe: Annotated[str, AfterValidator(_recipe)] = Field(
        description="an attack recipe (see `prunescope attack --list`)")
    n: int = Field(100, ge=1, description="examples to attack (a seeded sample of the test split)")
    seed: int = Field(0, ge=0, description="the seed of that sample")
    query_budget: int | None = Field(None, ge=1, description="model queries per example (null: no limit)")
    visible_only: bool = Field(False, description="attack only the words the model reads (long texts)")
    dense: bool = Field(True, description="attack the dense model of every model x task too")
    methods: _listed(str) | None = Field(None, description="only the runs of these methods of the grid")
    sparsities: _listed(Sparsity) | None = Field(None, description="only the runs at these sparsities of the grid")
    tasks: _listed(str) | None = Field(None, description="only the runs of these tasks of the grid")


class SweepSpec(BaseModel):
    """A grid of experiments: every model x task x method (x option values) x pattern x sparsity x seed,
    then the attacks on its runs."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    name: str = Field("sweep", description="a label for the sweep")
    models: Models = Field(("default",), description="model names (default | local folder | hub id), or a "
                                                     "mapping task -> model(s)")
    tasks: _listed(Task) = Field(description="task names")
    methods: Methods = Field(description="method names, or a mapping name -> method options")
    patterns: _listed(Pattern) = Field(("unstructured",), description="unstructured and/or N:M patterns")
    sparsities: _listed(Sparsity) = Field((), description="sparsities in [0, 1)")
    calib_size: int = Field(128, ge=1, description="calibration examples")
    seq_len: int = Field(64, ge=4, description="calibration tokens per example")
    eval_size: int | None = Field(None, ge=1, description="evaluation examples (a seeded subset of the test "
                                                          "split; null: all of it)")
    seed: _listed(Annotated[int, Field(ge=0)]) = Field((0,), description="seed, or a list of seeds")
    device: Annotated[str, AfterValidator(_device)] = Field("auto", description="auto | cpu | cuda | cuda:N")
    attacks: Annotated[tuple[AttackEntry, ...], BeforeValidator(_as_tuple)] = Field(
        (), description="attack recipes run on the pruned (and dense) models")

    @classmethod
    def of(cls, **fields) -> "SweepSpec":
        """A spec from keyword fields (the dashboard's grids); a bad field raises SweepFileError."""
        from pruning_core.sweeps.lines import Problems

        try:
            return cls.model_validate(fields)
        except ValidationError as exc:
            p = Problems()
            add_errors(p, exc, fields)
            raise p.error() from None

    def method_entries(self, listed: bool = True) -> list[tuple[str, dict, tuple]]:
        """[(method name, {option: value or list of values}, path of the entry in the file)]; `listed`:
        the file gives its methods as a list (not one name)."""
        if isinstance(self.methods, dict):
            return [(name, opts or {}, ("methods", name)) for name, opts in self.methods.items()]
        out = []
        for i, item in enumerate(self.methods):
            at = ("methods", i) if listed else ("methods",)
            if isinstance(item, str):
                out.append((item, {}, at))
            else:
                (name, opts), = item.items()
                out.append((name, opts or {}, at + (name,)))
        return out

    def model_pairs(self) -> list[tuple[str, str]]:
        """(model, task) in grid order: per task its models, or every model x every task."""
        if isinstance(self.models, dict):
            return [(m, t) for t in self.tasks for m in self.models.get(t, ())]
        return [(m, t) for m in self.models for t in self.tasks]

    def common(self) -> dict[str, Any]:
        """The settings every run shares."""
        return {"calib_size": self.calib_size, "seq_len": self.seq_len, "eval_size": self.eval_size,
                "device": self.device}

    def to_file(self) -> dict:
        """The spec as a sweep file holds it (the fields given, as JSON values)."""
        return self.model_dump(mode="json", exclude_unset=True)


def add_errors(p, exc: ValidationError, raw: Any) -> None:
    """Record a spec's validation errors in `p` (lines.Problems) at the fields of `raw`."""
    from pruning_core.sweeps.lines import add_validation_errors

    def known(path: tuple) -> tuple[str, ...]:  # the keys of the mapping at `path`
        return tuple((AttackEntry if path[:1] == ("attacks",) else SweepSpec).model_fields)

    def field_of(path: tuple):  # the model field a path is in
        if path[:1] == ("attacks",) and len(path) > 2:
            return AttackEntry.model_fields.get(path[2])
        return SweepSpec.model_fields.get(path[0]) if path and isinstance(path[0], str) else None

    add_validation_errors(
        p, exc.errors(), raw, known,
        nullable=lambda path: (f := field_of(path)) is not None and type(None) in get_args(f.annotation),
        describe=lambda path: (f := field_of(path)) is not None and f.description or "a value")


# ---------------------------------------------------------------------------- the grid expander


def option_points(options: dict) -> list[dict]:
    """Every combination of the option values ({blocksize: [64, 128]} -> two points)."""
    grid = [[(key, v) for v in (values if isinstance(values, list) else [values])] for key, values in options.items()]
    return [dict(combo) for combo in itertools.product(*grid)]


def grid_size(spec: SweepSpec) -> int:
    """How many runs `expand` makes (before duplicates are dropped), without making them."""
    from pruning_core.prune import methods as registry
    from pruning_core.prune.masks import parse_pattern

    per_point = lambda m: len(spec.sparsities) if registry.get(m).structured else sum(  # noqa: E731
        1 if parse_pattern(pat).sparsity is not None else len(spec.sparsities) for pat in spec.patterns)
    points = lambda opts: math.prod(len(v) if isinstance(v, list) else 1 for v in opts.values())  # noqa: E731
    return len(spec.model_pairs()) * len(spec.seed) * sum(
        points(opts) * per_point(m) for m, opts, _ in spec.method_entries())


def expand(spec: SweepSpec, problem: Callable[[tuple, str], None] | None = None) -> tuple[ExperimentConfig, ...]:
    """The runs of a spec in grid order (model x task, method, seed, pattern, sparsity, options), duplicates
    dropped. Structured methods run at pattern 'structured' only, an N:M pattern once at its own sparsity.
    A config that cannot be made is reported to `problem(path of its method, message)`, or raised."""
    from pruning_core.prune import methods as registry
    from pruning_core.prune.masks import parse_pattern

    runs, keys = [], set()
    for (model, task), (method, opts, at), seed in itertools.product(
            spec.model_pairs(), spec.method_entries(), spec.seed):
        structured = registry.get(method).structured
        for pattern in [STRUCTURED] if structured else spec.patterns:
            nm = None if structured else parse_pattern(pattern).sparsity
            for s, point in itertools.product([nm] if nm is not None else spec.sparsities, option_points(opts)):
                try:
                    cfg = ExperimentConfig.create(model=model, task=task, method=method, pattern=pattern,
                                                  sparsity=float(s), seed=seed, options=point, **spec.common())
                except PrunescopeError as exc:
                    message = f"{method} with pattern {pattern}{' and ' + json.dumps(point) if point else ''}: {exc}"
                    if problem is None:
                        raise PrunescopeError(message) from None
                    problem(at, message)
                    continue
                if (key := cfg.key()) not in keys:
                    keys.add(key)
                    runs.append(cfg)
    return tuple(runs)


def expand_attacks(spec: SweepSpec, runs: Iterable[ExperimentConfig] | None = None,
                   problem: Callable[[tuple, str], None] | None = None) -> tuple["AttackConfig", ...]:
    """The attacks of a spec: every entry x the runs (of `expand(spec)`) it selects, and unless `dense:
    false` the dense model of every model x task among them (first), in file order, duplicates dropped."""
    from pruning_core.robustness import AttackConfig

    runs = list(expand(spec) if runs is None else runs)
    out, seen = [], set()
    for i, e in enumerate(spec.attacks):
        chosen = [r for r in runs if r.method in (e.methods or {r.method}) and r.task in (e.tasks or {r.task})
                  and r.sparsity in (e.sparsities or {r.sparsity})]
        targets = []
        if e.dense and chosen:
            first = chosen[0]
            for model, task in dict.fromkeys((r.model, r.task) for r in chosen):
                targets.append(ExperimentConfig.create(model=model, task=task, method="magnitude", sparsity=0.0,
                                                       calib_size=first.calib_size, seq_len=first.seq_len,
                                                       device=first.device))
        targets += [r for r in chosen if r.sparsity > 0 or r.pattern != "unstructured"]
        for run in targets:
            try:
                cfg = AttackConfig(run, e.recipe, e.n, e.seed, e.query_budget, e.visible_only).validate()
            except PrunescopeError as exc:
                if problem is None:
                    raise
                problem(("attacks", i), str(exc))
                break
            if (key := cfg.key()) not in seen:
                seen.add(key)
                out.append(cfg)
    return tuple(out)


# ---------------------------------------------------------------------------- the dashboard's grids


def _model_fields(common: dict) -> dict:
    """ExperimentConfig-style settings (model=..., seed=...) as spec fields."""
    fields = dict(common)
    if "model" in fields:
        fields["models"] = (fields.pop("model"),)
    return fields


def grid(task: str, methods: Iterable[str], patterns: Iterable[str] = ("unstructured",),
         sparsities: Iterable[float] = SPARSITIES, **common) -> list[ExperimentConfig]:
    """The runs of one task's grid (`expand` of its spec): methods x patterns x sparsities; structured
    methods at pattern 'structured' and every sparsity. `common`: model, seed, calib_size, seq_len, ..."""
    return list(expand(SweepSpec.of(tasks=(task,), methods=tuple(methods), patterns=tuple(patterns),
                                    sparsities=tuple(float(s) for s in sparsities), **_model_fields(common))))


def attack_grid(task: str, methods: Iterable[str], sparsities: Iterable[float] = ROBUSTNESS_SPARSITIES,
                recipes: Iterable[str] = ("deepwordbug",), n: int = 100, seed: int = 0,
                query_budget: int | None = None, pattern: str = "unstructured", visible_only: bool = False,
                **common) -> list["AttackConfig"]:
    """The attacks of one task's grid (`expand_attacks` of its spec): every recipe x method x sparsity;
    sparsity 0 is the dense model, attacked once per recipe (every method shares it)."""
    sparsities = tuple(float(s) for s in sparsities)
    attacks = tuple(dict(recipe=r, n=n, seed=seed, query_budget=query_budget, visible_only=visible_only,
                         dense=0.0 in sparsities) for r in recipes)
    spec = SweepSpec.of(tasks=(task,), methods=tuple(methods), patterns=(pattern,), sparsities=sparsities,
                        attacks=attacks, **_model_fields(common))
    return list(expand_attacks(spec))
