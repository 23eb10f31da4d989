"""Sweep files: a grid of experiments written as YAML or TOML, checked and expanded into the same
`ExperimentConfig` (and `AttackConfig`) objects the dashboard builds.

```yaml
name: paper-grid                  # optional label
models: [default]                 # default: [default]; or per task: {rotten_tomatoes: DIR, bbc_news: DIR2}
tasks: [rotten_tomatoes, bbc_news]
methods:                          # names, or name -> method options (a list = one run per value)
  magnitude: {}
  wanda:
  sparsegpt: {blocksize: [64, 128]}
  kprune: {}                      # structured methods run at pattern "structured" only
patterns: [unstructured, "2:4"]   # for the unstructured methods; N:M runs once, at its own sparsity
sparsities: [0.3, 0.5, 0.7]       # structured methods: the fraction of encoder FLOPs removed
calib_size: 32                    # common settings: calib_size, seq_len, eval_size, seed (int or list), device
seq_len: 64
eval_size: 200
seed: 0
attacks:                          # optional: run after their pruned runs are stored
  - {recipe: deepwordbug, n: 100, seed: 0, query_budget: 500}   # visible_only: true for long texts
  - {recipe: glove-word-swap, n: 50, methods: [wanda], sparsities: [0.5], dense: false}
```

Every problem is reported before any work, with the file's line and field (`sweep.yaml: line 11
(methods.sparsegpt.blocksize): ...`); unknown keys are errors. The fields are `spec.SweepSpec`'s
(checked one by one there); here: reading the file, the checks across fields, method options and model
folders, then `spec.expand`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pruning_core.experiments.config import ExperimentConfig
from pruning_core.core.errors import PrunescopeError
from pruning_core.sweeps.lines import Problems, SweepFileError, read_toml, read_yaml
from pruning_core.sweeps.spec import STRUCTURED, SweepSpec, add_errors, expand, expand_attacks, grid_size, option_points

__all__ = ["MAX_CONFIGS", "Sweep", "SweepFileError", "describe", "load", "parse"]

MAX_CONFIGS = 10_000  # runs in one sweep unless the user confirms more (--max-configs)


@dataclass(frozen=True)
class Sweep:
    """An expanded sweep: the runs in grid order (duplicates dropped), then the attacks."""

    source: str
    name: str
    runs: tuple[ExperimentConfig, ...]
    attacks: tuple = ()  # AttackConfig, in file order
    spec: dict = field(default_factory=dict, compare=False)  # the parsed file

    def __len__(self) -> int:
        return len(self.runs) + len(self.attacks)


def load(path: str | Path, max_configs: int = MAX_CONFIGS) -> Sweep:
    """Read, check and expand a `.yaml`/`.yml`/`.toml` sweep file (a `.json` one works too)."""
    path = Path(path)
    if not path.is_file():
        raise PrunescopeError(f"sweep file '{path}' does not exist or is not a regular file")
    if path.stat().st_size > 1 << 20:
        raise PrunescopeError(f"sweep file '{path}' is larger than 1 MB; a sweep file is a short grid description")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PrunescopeError(f"sweep file '{path}' is not UTF-8 text (byte {exc.start})") from None
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        spec, lines = read_yaml(text, path.name)
    elif suffix == ".toml":
        spec, lines = read_toml(text, path.name)
    elif suffix == ".json":
        try:
            spec, lines = json.loads(text), {}
        except json.JSONDecodeError as exc:
            raise SweepFileError(path.name, [f"line {exc.lineno}: not valid JSON ({exc.msg})"]) from None
    else:
        raise PrunescopeError(f"sweep file '{path}' must end in .yaml, .yml or .toml")
    return parse(spec, source=str(path), lines=lines, max_configs=max_configs)


def parse(spec: Any, source: str = "<spec>", lines: dict | None = None, max_configs: int = MAX_CONFIGS) -> Sweep:
    """Check a parsed sweep (a dict, as read from YAML/TOML) and expand it; raises SweepFileError
    listing every problem found. A grid of more than `max_configs` runs is refused before it is expanded.
    The fields are checked first (`SweepSpec`); if they are sound, the checks across them."""
    p = Problems(source, lines)
    if not isinstance(spec, dict):
        p.add((), f"a sweep file is a mapping of {', '.join(SweepSpec.model_fields)}; got {type(spec).__name__}")
        p.raise_if_any()
    try:
        checked = SweepSpec.model_validate(spec)
    except ValidationError as exc:
        add_errors(p, exc, spec)
        raise p.error() from None
    entries = _check_methods(p, checked, isinstance(spec["methods"], list), max_configs)
    _check_grid(p, checked, entries, given=set(spec))
    _check_models(p, checked, spec.get("models"))
    _check_attacks(p, checked)
    p.raise_if_any()  # the parts are sound; now their combinations

    size = grid_size(checked)
    if size > max_configs:
        raise p.error([f"the grid has {size:,} runs, more than the limit of {max_configs:,} (about "
                       f"{size * 5 / 3600:,.0f} CPU-hours even at 5 s a run): split it into smaller sweeps, or raise "
                       "the limit with --max-configs N to confirm"])
    runs = expand(checked, lambda at, message: p.add(at, message, once=True))
    attacks = expand_attacks(checked, runs, p.add)
    p.raise_if_any()
    name = checked.name if "name" in spec else Path(source).stem if source != "<spec>" else "sweep"
    return Sweep(source, name, runs, attacks, spec)


# ---------------------------------------------------------------------------- checks across fields


def _check_methods(p: Problems, spec: SweepSpec, listed: bool, max_configs: int) -> list[str]:
    """Known methods, listed once, their option values and grid points valid (each method's own
    `Method.options`); returns the names of the sound ones."""
    from pruning_core.prune import methods as registry

    out, seen = [], set()
    for name, opts, path in spec.method_entries(listed):
        if not p.ok(path, registry.get, name):
            continue
        method = registry.get(name)
        if name in seen:
            p.add(path, f"method '{name}' is listed twice; give its option values as lists in one entry")
        seen.add(name)
        values = {key: v if isinstance(v, list) else [v] for key, v in opts.items()}
        for key, vs in values.items():
            if not vs:
                p.add(path + (key,), "is an empty list")
        count = math.prod(map(len, values.values()))
        if max_configs and count > max_configs:
            p.add(path, f"{count:,} option combinations, more than the limit of {max_configs:,} runs; split the "
                        "sweep or raise the limit with --max-configs N")
            continue
        for key, vs in values.items():  # each value alone first: the problem then has its own line
            for v in vs:
                p.ok(path + (key,), method.options, {key: v})
        if all(p.ok(path, method.options, point) for point in option_points(opts)):
            out.append(name)
    return out


def _check_grid(p: Problems, spec: SweepSpec, methods: list[str], given: set[str]) -> None:
    """Patterns that some method uses; sparsities where a pattern or method needs them."""
    from pruning_core.prune import methods as registry
    from pruning_core.prune.masks import parse_pattern

    structured = [m for m in methods if registry.METHODS[m].structured]
    if methods and len(structured) == len(methods) and "patterns" in given and spec.patterns != ("unstructured",):
        p.add(("patterns",), f"{', '.join(structured)} run at pattern '{STRUCTURED}' only, so patterns "
                             f"{list(spec.patterns)} would never be used: leave patterns out, or add an unstructured "
                             "method")
    unstructured_grid = len(structured) < len(methods) and any(parse_pattern(x).sparsity is None
                                                               for x in spec.patterns)
    if (structured or unstructured_grid) and "sparsities" not in given:
        p.add(("sparsities",), "missing; unstructured patterns and structured methods need a list of sparsities")


def _check_models(p: Problems, spec: SweepSpec, raw: Any) -> None:
    """Per-task models name the sweep's tasks; every model is usable, has the task's classes and widths
    the N:M patterns divide. `raw`: the file's `models` (for the paths of its items)."""
    from pruning_core.model import models

    def at(path: tuple, listed: Any, i: int) -> tuple:
        return path + (i,) if isinstance(listed, list) else path

    if isinstance(spec.models, dict):
        for task in spec.models:
            if task not in spec.tasks:
                p.add(("models", task), f"'{task}' is not among the sweep's tasks")
        for task in spec.tasks:
            if task not in spec.models:
                p.add(("models",), f"models is a mapping task -> model(s), but task '{task}' has none")
        paths = [(at(("models", t), raw[t], i), m, t) for t in spec.tasks for i, m in enumerate(spec.models.get(t, ()))]
    else:
        paths = [(at(("models",), raw, i), m, t) for t in spec.tasks for i, m in enumerate(spec.models)]
    for path, model, task in paths:
        if p.ok(path, models.check, model, task) and p.ok(path, _check_labels, model, task):
            for pattern in spec.patterns:
                p.ok(path, _check_divisible, model, task, pattern)


def _check_attacks(p: Problems, spec: SweepSpec) -> None:
    """Attack entries name recipes that run here and select only methods, sparsities and tasks of the grid."""
    from pruning_core.robustness import recipes

    names = [name for name, _, _ in spec.method_entries()]
    for i, e in enumerate(spec.attacks):
        p.ok(("attacks", i, "recipe"), recipes.check, e.recipe)
        for key, allowed in (("methods", names), ("sparsities", spec.sparsities), ("tasks", spec.tasks)):
            for v in getattr(e, key) or ():
                if v not in allowed:
                    p.add(("attacks", i, key), f"{v!r} is not among the sweep's {key} ({', '.join(map(str, allowed))})")


def _check_divisible(model: str, task: str, pattern: str) -> None:
    """An N:M pattern needs the model's hidden and FFN widths divisible by M (read from config.json where
    the model is a local folder; other models are checked when they are pruned)."""
    from pruning_core.prune.masks import parse_pattern

    m = parse_pattern(pattern).m
    c = _read_config(model, task) or {}
    for name in ("hidden_size", "dim", "intermediate_size", "hidden_dim"):
        width = c.get(name)
        if m and isinstance(width, int) and width % m:
            raise PrunescopeError(f"pattern {pattern} needs widths divisible by {m}, but model '{model}' has "
                                  f"{name} {width}; use another pattern or model")


def _read_config(model: str, task: str) -> dict | None:
    """A local model's config.json (None for a hub id or an unreadable file: checked when loaded)."""
    from pruning_core.model import models

    try:
        return json.loads((Path(models.resolve(model, task)).expanduser() / "config.json").read_text())
    except (OSError, ValueError):
        return None


def _check_labels(model: str, task: str) -> None:
    """The model predicts as many classes as a shipped task has (other tasks are checked when run)."""
    from pruning_core.data import tasks as data
    from pruning_core.model.models import config_labels

    c, info = _read_config(model, task), data.task_info(task)
    labels = config_labels(c) if c else None
    if info is not None and isinstance(labels, int) and labels != len(info.label_names):
        raise PrunescopeError(f"model '{model}' predicts {labels} classes but task '{task}' has "
                              f"{len(info.label_names)}; give each task its own model (models: {{task: model}})")


def describe(sweep: Sweep) -> str:
    """One line: how many runs and attacks, over what."""
    runs = sweep.runs
    parts = [f"{len(runs)} runs"]
    if runs:
        parts.append(f"({len({r.model for r in runs})} models x {len({r.task for r in runs})} tasks x "
                     f"{len({r.method for r in runs})} methods; {len({(r.pattern, r.sparsity) for r in runs})} "
                     "pattern/sparsity points)")
    if sweep.attacks:
        parts.append(f"+ {len(sweep.attacks)} attacks")
    return " ".join(parts)
