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
(methods.sparsegpt.blocksize): ...`); unknown keys are errors.
"""

from __future__ import annotations

import itertools
import math
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pruning_core.experiments.config import ExperimentConfig
from pruning_core.core.errors import PrunescopeError

MAX_CONFIGS = 10_000  # runs in one sweep unless the user confirms more (--max-configs)

TOP_KEYS = {
    "name": "a label for the sweep",
    "models": "model names (default | local folder | hub id), or a mapping task -> model(s)",
    "tasks": "task names",
    "methods": "method names, or a mapping name -> method options",
    "patterns": "unstructured and/or N:M patterns",
    "sparsities": "sparsities in [0, 1)",
    "calib_size": "calibration examples",
    "seq_len": "calibration tokens per example",
    "eval_size": "evaluation examples (a seeded subset of the test split)",
    "seed": "seed, or a list of seeds",
    "device": "auto | cpu | cuda | cuda:N",
    "attacks": "attack recipes run on the pruned (and dense) models",
}
ATTACK_KEYS = ("recipe", "n", "seed", "query_budget", "visible_only", "dense", "methods", "sparsities", "tasks")
STRUCTURED = "structured"


class SweepFileError(PrunescopeError):
    """Everything wrong with a sweep file, each problem with its line and field."""

    def __init__(self, source: str, problems: list[str]):
        self.source, self.problems = source, problems
        head = f"{source}: " + (f"{len(problems)} problems: " if len(problems) > 1 else "")
        super().__init__(head + "; ".join(problems))


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


# ---------------------------------------------------------------------------- reading the file


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
        spec, lines = _read_yaml(text, path.name)
    elif suffix == ".toml":
        spec, lines = _read_toml(text, path.name)
    elif suffix == ".json":
        try:
            spec, lines = json.loads(text), {}
        except json.JSONDecodeError as exc:
            raise SweepFileError(path.name, [f"line {exc.lineno}: not valid JSON ({exc.msg})"]) from None
    else:
        raise PrunescopeError(f"sweep file '{path}' must end in .yaml, .yml or .toml")
    return parse(spec, source=str(path), lines=lines, max_configs=max_configs)


def _read_yaml(text: str, name: str) -> tuple[Any, dict]:
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        spec = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}: " if mark else ""
        raise SweepFileError(name, [f"{where}not valid YAML ({exc.problem or exc.context})"]) from None
    except yaml.YAMLError as exc:
        raise SweepFileError(name, [f"not valid YAML ({exc})"]) from None
    lines: dict[tuple, int] = {}
    dupes: list[str] = []
    if node is not None:
        _yaml_lines(node, (), lines, dupes)
    if dupes:
        raise SweepFileError(name, dupes)
    return spec, lines


def _yaml_lines(node, path: tuple, lines: dict, dupes: list) -> None:
    """Line of every field (path of keys and list indices -> 1-based line); duplicate keys noted."""
    import yaml

    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for k, v in node.value:
            key = k.value
            if key in seen:
                dupes.append(f"line {k.start_mark.line + 1} ({_field(path + (key,))}): duplicate key '{key}'")
            seen.add(key)
            _yaml_lines(v, path + (key,), lines, dupes)
            lines[path + (key,)] = k.start_mark.line + 1  # a field's line is its key's
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _yaml_lines(v, path + (i,), lines, dupes)


def _read_toml(text: str, name: str) -> tuple[Any, dict]:
    try:
        spec = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SweepFileError(name, [f"not valid TOML ({exc})"]) from None
    return spec, _toml_lines(text)


def _toml_lines(text: str) -> dict[tuple, int]:
    """Lines of keys and tables (TOML parsers keep no positions: a scan of `key =` and `[a.b]` lines)."""
    lines: dict[tuple, int] = {}
    table: tuple = ()
    arrays: dict[tuple, int] = {}
    for no, raw in enumerate(text.splitlines(), 1):
        s = raw.split("#", 1)[0].strip()
        if m := re.fullmatch(r"\[\[\s*([^\]]+?)\s*\]\]", s):  # [[attacks]]: an array of tables
            base = tuple(p.strip().strip('"') for p in m[1].split("."))
            idx = arrays[base] = arrays.get(base, -1) + 1
            table = base + (idx,)
            lines.setdefault(base, no)
            lines[table] = no
        elif m := re.fullmatch(r"\[\s*([^\]]+?)\s*\]", s):
            table = tuple(p.strip().strip('"') for p in m[1].split("."))
            for i in range(1, len(table) + 1):
                lines.setdefault(table[:i], no)
        elif m := re.match(r'("[^"]+"|[A-Za-z0-9_\-]+)\s*=', s):
            lines.setdefault(table + (m[1].strip('"'),), no)
    return lines


# ---------------------------------------------------------------------------- checking and expanding


def _field(path: tuple) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


class _Problems:
    """Collects problems, each with the nearest line on record for its field."""

    def __init__(self, source: str, lines: dict):
        self.source, self.lines, self.items, self._messages = source, lines, [], set()

    def add(self, path: tuple, message: str, once: bool = False) -> None:
        """Record `message` at `path`; with `once`, not if the same message is already recorded (at a finer
        field: an option's bad value, then the method's grid point that holds it)."""
        if once and message in self._messages:
            return
        self._messages.add(message)
        line = next((self.lines[path[:i]] for i in range(len(path), -1, -1) if path[:i] in self.lines), None)
        self.items.append((f"line {line} " if line else "") + f"({_field(path)}): {message}")

    def ok(self, path: tuple, fn, *args) -> bool:
        """Whether fn(*args) passed; a PrunescopeError becomes a problem at `path`."""
        try:
            fn(*args)
            return True
        except PrunescopeError as exc:
            self.add(path, str(exc), once=True)
            return False

    def raise_if_any(self) -> None:
        if self.items:
            raise SweepFileError(Path(self.source).name if self.source != "<spec>" else self.source, self.items)


def _items(p: _Problems, spec: dict, key: str, kind: type | tuple, default=None, required: bool = False,
           at: tuple = ()) -> list[tuple[tuple, Any]]:
    """A field that is one value or a list of values of `kind`, as [(path, value)] (paths under `at`);
    problems recorded and bad items dropped."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if key not in spec:
        if required:
            p.add(at + (key,), f"missing; give {TOP_KEYS[key]}")
        return [(at + (key,), v) for v in (default or [])]
    value = spec[key]
    listed = isinstance(value, list)
    items = value if listed else [value]
    if not items:
        p.add(at + (key,), "is empty")
    out = []
    for i, v in enumerate(items):
        path = at + ((key, i) if listed else (key,))
        if not isinstance(v, kinds) or (isinstance(v, bool) and bool not in kinds):
            names = " or ".join(k.__name__ for k in kinds)
            p.add(path, f"must be {'a list of ' if listed else ''}{names}; got {v!r}")
        else:
            out.append((path, v))
    if listed and len(set(map(repr, items))) < len(items):
        p.add(at + (key,), f"lists a value twice: {items}")
    return out


def _scalar(p: _Problems, spec: dict, key: str, kind: type | tuple, default, minimum: int | None = None,
            at: tuple = ()):
    """One value of `kind` (at least `minimum`), or `default` when absent; problems recorded at `at` + key."""
    if key not in spec:
        return default
    v = spec[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if v is None and type(None) in kinds:
        return None
    if not isinstance(v, kinds) or (isinstance(v, bool) and bool not in kinds):
        names = " or ".join("null" if k is type(None) else "true/false" if k is bool else k.__name__ for k in kinds)
        p.add(at + (key,), f"must be {names}; got {v!r}")
        return default
    if minimum is not None and v < minimum:
        p.add(at + (key,), f"must be >= {minimum}; got {v}")
        return default
    return v


def _methods(p: _Problems, spec: dict, max_configs: int = 0) -> list[tuple[str, list[dict], tuple]]:
    """[(method name, [options dict per grid point], path of the entry)]."""
    from pruning_core.prune import methods as registry

    if "methods" not in spec:
        p.add(("methods",), f"missing; give {TOP_KEYS['methods']}")
        return []
    raw = spec["methods"]
    entries: list[tuple[str, Any, tuple]] = []
    if isinstance(raw, dict):
        entries = [(name, opts, ("methods", name)) for name, opts in raw.items()]
    elif isinstance(raw, (list, str)):
        for i, item in enumerate(raw if isinstance(raw, list) else [raw]):
            path = ("methods", i) if isinstance(raw, list) else ("methods",)
            if isinstance(item, str):
                entries.append((item, None, path))
            elif isinstance(item, dict) and len(item) == 1:
                (name, opts), = item.items()
                entries.append((name, opts, path + (name,)))
            else:
                p.add(path, f"must be a method name or a one-key mapping name: {{options}}; got {item!r}")
    else:
        p.add(("methods",), f"must be a list of method names or a mapping name -> options; got {raw!r}")
    if not entries and isinstance(raw, (list, dict)):
        p.add(("methods",), "is empty")
    out, seen = [], set()
    for name, opts, path in entries:
        if not p.ok(path, registry.get, name):
            continue
        method = registry.get(name)
        if opts is None:
            opts = {}
        if not isinstance(opts, dict):
            p.add(path, f"options of '{name}' must be a mapping option -> value or list of values; got {opts!r}")
            continue
        grid = []
        for key, values in opts.items():
            values = values if isinstance(values, list) else [values]
            if not values:
                p.add(path + (key,), "is an empty list")
            grid.append([(key, v) for v in values])
        if max_configs and math.prod(map(len, grid)) > max_configs:
            p.add(path, f"{math.prod(map(len, grid)):,} option combinations, more than the limit of "
                        f"{max_configs:,} runs; split the sweep or raise the limit with --max-configs N")
            continue
        points = [dict(combo) for combo in itertools.product(*grid)] if all(grid) else []
        for key, values in opts.items():  # each value alone first: the problem then has its own line
            for v in (values if isinstance(values, list) else [values]):
                p.ok(path + (key,), method.options, {key: v})
        good = [point for point in points if p.ok(path, method.options, point)]
        if name in seen:
            p.add(path, f"method '{name}' is listed twice; give its option values as lists in one entry")
        seen.add(name)
        out.append((name, good, path))
    return out


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


def _check_task(task: str) -> None:
    from pruning_core.data import tasks as data

    if task not in data.SHIPPED and task not in data.HUB:
        data.load(task)


def parse(spec: Any, source: str = "<spec>", lines: dict | None = None, max_configs: int = MAX_CONFIGS) -> Sweep:
    """Check a parsed sweep (a dict, as read from YAML/TOML) and expand it; raises SweepFileError
    listing every problem found. A grid of more than `max_configs` runs is refused before it is expanded."""
    from pruning_core.prune import methods as registry
    from pruning_core.model import models
    from pruning_core.prune.masks import parse_pattern

    p = _Problems(source, lines or {})
    if not isinstance(spec, dict):
        p.add((), f"a sweep file is a mapping of {', '.join(TOP_KEYS)}; got {type(spec).__name__}")
        p.raise_if_any()
    for key in spec:
        if key not in TOP_KEYS:
            p.add((key,), f"unknown key '{key}'; known keys: {', '.join(TOP_KEYS)}")
    name = _scalar(p, spec, "name", str, Path(source).stem if source != "<spec>" else "sweep")
    per_task = isinstance(spec.get("models"), dict)  # task -> its model(s)
    if per_task:
        models_at = {t: _items(p, spec["models"], t, str, at=("models",)) for t in spec["models"]}
    else:
        models_at = _items(p, spec, "models", str, default=["default"])
    tasks = []
    for path, task in _items(p, spec, "tasks", str, required=True):
        if p.ok(path, _check_task, task):
            tasks.append(task)
    methods = _methods(p, spec, max_configs)
    patterns = []
    for path, pat in _items(p, spec, "patterns", str, default=["unstructured"]):
        if pat == STRUCTURED:
            p.add(path, "structured methods always run at pattern 'structured' and the others cannot: "
                        "leave it out of patterns (list kprune, kwon or pat under methods)")
        elif p.ok(path, parse_pattern, pat):
            patterns.append(pat)
    sparsities = []
    for path, s in _items(p, spec, "sparsities", (int, float)):
        if not 0 <= s < 1:
            p.add(path, f"sparsity must be in [0, 1); got {s}")
        else:
            sparsities.append(float(s))
    structured = [m for m, _, _ in methods if registry.METHODS[m].structured]
    if methods and len(structured) == len(methods) and "patterns" in spec and patterns != ["unstructured"]:
        p.add(("patterns",), f"{', '.join(structured)} run at pattern 'structured' only, so patterns "
                             f"{patterns} would never be used: leave patterns out, or add an unstructured method")
    unstructured_grid = len(structured) < len(methods) and any(parse_pattern(x).sparsity is None for x in patterns)
    if (structured or unstructured_grid) and "sparsities" not in spec:
        p.add(("sparsities",), "missing; unstructured patterns and structured methods need a list of sparsities")
    common = {"calib_size": _scalar(p, spec, "calib_size", int, 128, 1),
              "seq_len": _scalar(p, spec, "seq_len", int, 64, 4),
              "eval_size": _scalar(p, spec, "eval_size", (int, type(None)), None, 1),
              "device": _scalar(p, spec, "device", str, "auto")}
    seeds = []
    for path, seed in _items(p, spec, "seed", int, default=[0]):
        if seed < 0:
            p.add(path, f"must be >= 0; got {seed}")
        seeds.append(seed)
    if common["device"] != "auto":
        p.ok(("device",), models.check_device_name, common["device"])  # workers may have it, this machine not
    if per_task:
        for task in models_at:
            if task not in spec.get("tasks", []):
                p.add(("models", task), f"'{task}' is not among the sweep's tasks")
        for task in tasks:
            if task not in models_at:
                p.add(("models",), f"models is a mapping task -> model(s), but task '{task}' has none")
        model_paths = {t: models_at.get(t, []) for t in tasks}
    else:
        model_paths = {t: models_at for t in tasks}
    for task in tasks:
        for path, model in model_paths[task]:
            if p.ok(path, models.check, model, task) and p.ok(path, _check_labels, model, task):
                for pat in patterns:
                    p.ok(path, _check_divisible, model, task, pat)
    attack_entries = _attack_entries(p, spec, tasks, [m for m, _, _ in methods], sparsities)
    p.raise_if_any()  # the parts are sound; now their combinations

    runs, keys = [], set()
    pairs = [(m, t) for t in tasks for _, m in model_paths[t]] if per_task else \
        [(m, t) for _, m in models_at for t in tasks]
    size = len(pairs) * len(seeds) * sum(
        len(points) * (len(sparsities) if registry.METHODS[m].structured else
                       sum(1 if parse_pattern(pat).sparsity is not None else len(sparsities) for pat in patterns))
        for m, points, _ in methods)
    if size > max_configs:
        raise SweepFileError(Path(source).name if source != "<spec>" else source, [
            f"the grid has {size:,} runs, more than the limit of {max_configs:,} (about "
            f"{size * 5 / 3600:,.0f} CPU-hours even at 5 s a run): split it into smaller sweeps, or raise the "
            "limit with --max-configs N to confirm"])
    for (model, task), (method, points, mpath), seed in itertools.product(pairs, methods, seeds):
        is_structured = registry.METHODS[method].structured
        for pattern in [STRUCTURED] if is_structured else patterns:
            nm = None if is_structured else parse_pattern(pattern).sparsity
            for s, opts in itertools.product([nm] if nm is not None else sparsities, points):
                kw = dict(model=model, task=task, method=method, pattern=pattern, sparsity=float(s), seed=seed,
                          options=opts, **common)
                try:
                    cfg = ExperimentConfig.create(**kw)
                except PrunescopeError as exc:
                    p.add(mpath, f"{method} with pattern {pattern}{' and ' + json.dumps(opts) if opts else ''}: "
                                 f"{exc}", once=True)
                    continue
                key = cfg.key()
                if key not in keys:
                    keys.add(key)
                    runs.append(cfg)
    attacks = _expand_attacks(p, attack_entries, runs)
    p.raise_if_any()
    return Sweep(source, name, tuple(runs), tuple(attacks), spec)


def _attack_entries(p: _Problems, spec: dict, tasks: list[str], method_names: list[str],
                    sparsities: list[float]) -> list[dict]:
    """The checked attack entries: {recipe, n, seed, query_budget, visible_only, dense, methods?, sparsities?,
    tasks?}."""
    from pruning_core.robustness import recipes

    raw = spec.get("attacks", [])
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list):
        p.add(("attacks",), f"must be a list of attack entries ({', '.join(ATTACK_KEYS)}); got {raw!r}")
        return []
    out = []
    for i, entry in enumerate(raw):
        path = ("attacks", i)
        if not isinstance(entry, dict):
            p.add(path, f"an attack entry is a mapping of {', '.join(ATTACK_KEYS)}; got {entry!r}")
            continue
        good = True
        for key in entry:
            if key not in ATTACK_KEYS:
                p.add(path + (key,), f"unknown key '{key}'; an attack entry has {', '.join(ATTACK_KEYS)}")
                good = False
        if not isinstance(entry.get("recipe"), str):
            p.add(path + ("recipe",), "missing; name an attack recipe (see `prunescope attack --list`)")
            continue
        good &= p.ok(path + ("recipe",), recipes.check, entry["recipe"])
        checked = {"recipe": entry["recipe"],
                   "n": _scalar(p, entry, "n", int, 100, 1, path),
                   "seed": _scalar(p, entry, "seed", int, 0, 0, path),
                   "query_budget": _scalar(p, entry, "query_budget", (int, type(None)), None, 1, path),
                   "visible_only": _scalar(p, entry, "visible_only", bool, False, None, path),
                   "dense": _scalar(p, entry, "dense", bool, True, None, path)}
        for key, allowed in (("methods", method_names), ("sparsities", sparsities), ("tasks", tasks)):
            if key not in entry:
                continue
            values = entry[key] if isinstance(entry[key], list) else [entry[key]]
            if key == "sparsities":
                values = [float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v for v in values]
            for v in values:
                if v not in allowed:
                    p.add(path + (key,), f"{v!r} is not among the sweep's {key} ({', '.join(map(str, allowed))})")
                    good = False
            checked[key] = set(values)
        if good:
            out.append(checked)
    return out


def _expand_attacks(p: _Problems, entries: list[dict], runs: list[ExperimentConfig]) -> list:
    """AttackConfigs for every entry x the runs it selects (and, unless `dense: false`, the dense model of
    every model x task among them), in file order, duplicates dropped."""
    from pruning_core.robustness import AttackConfig

    out, seen = [], set()
    for i, e in enumerate(entries):
        chosen = [r for r in runs if r.method in e.get("methods", {r.method})
                  and r.sparsity in e.get("sparsities", {r.sparsity}) and r.task in e.get("tasks", {r.task})]
        targets = []
        if e["dense"] and chosen:
            first = chosen[0]
            for model, task in dict.fromkeys((r.model, r.task) for r in chosen):
                targets.append(ExperimentConfig.create(model=model, task=task, method="magnitude", sparsity=0.0,
                                                       calib_size=first.calib_size, seq_len=first.seq_len,
                                                       device=first.device))
        targets += [r for r in chosen if r.sparsity > 0 or r.pattern != "unstructured"]
        for run in targets:
            try:
                cfg = AttackConfig(run, e["recipe"], e["n"], e["seed"], e["query_budget"],
                                   e["visible_only"]).validate()
            except PrunescopeError as exc:
                p.add(("attacks", i), str(exc))
                break
            key = cfg.key()
            if key not in seen:
                seen.add(key)
                out.append(cfg)
    return out


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
