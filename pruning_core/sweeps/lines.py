"""Where a sweep file says what: the line of every field (YAML from the parser's marks, TOML from a small
line scan: tomllib keeps no positions and no well-kept TOML library reports them), and the problems of a
file, each with its line and field (`sweep.yaml: line 11 (methods.sparsegpt.blocksize): ...`), pydantic's
validation errors among them."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Callable

from pruning_core.core.errors import PrunescopeError

Path_ = tuple  # a field's path: keys and list indices, e.g. ("methods", "sparsegpt", "blocksize")


class SweepFileError(PrunescopeError):
    """Everything wrong with a sweep file, each problem with its line and field."""

    def __init__(self, source: str, problems: list[str]):
        self.source, self.problems = source, problems
        head = f"{source}: " + (f"{len(problems)} problems: " if len(problems) > 1 else "")
        super().__init__(head + "; ".join(problems))


def field_name(path: Path_) -> str:
    """`methods.sparsegpt.blocksize`, `attacks[0].n`; `(top level)` for the empty path."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


class Problems:
    """Collects problems, each with the nearest line on record for its field."""

    def __init__(self, source: str = "<spec>", lines: dict | None = None):
        self.source, self.lines, self.items, self._messages = source, lines or {}, [], set()

    def add(self, path: Path_, message: str, once: bool = False) -> None:
        """Record `message` at `path`; with `once`, not if the same message is already recorded (at a finer
        field: an option's bad value, then the method's grid point that holds it)."""
        if once and message in self._messages:
            return
        self._messages.add(message)
        line = next((self.lines[path[:i]] for i in range(len(path), -1, -1) if path[:i] in self.lines), None)
        self.items.append((f"line {line} " if line else "") + f"({field_name(path)}): {message}")

    def ok(self, path: Path_, fn: Callable, *args) -> bool:
        """Whether fn(*args) passed; a PrunescopeError becomes a problem at `path`."""
        try:
            fn(*args)
            return True
        except PrunescopeError as exc:
            self.add(path, str(exc), once=True)
            return False

    def error(self, extra: list[str] | None = None) -> SweepFileError:
        name = Path(self.source).name if self.source != "<spec>" else self.source
        return SweepFileError(name, self.items + (extra or []))

    def raise_if_any(self) -> None:
        if self.items:
            raise self.error()


# ---------------------------------------------------------------------------- pydantic's errors


_KINDS = {"int_type": "int", "string_type": "str", "bool_type": "true/false", "float_type": "a number",
          "dict_type": "a mapping", "tuple_type": "a list", "list_type": "a list", "none_required": "null"}


def add_validation_errors(p: Problems, errors: list[dict], raw: Any, known: Callable[[Path_], tuple[str, ...]],
                          nullable: Callable[[Path_], bool], describe: Callable[[Path_], str]) -> None:
    """Record pydantic's `ValidationError.errors()` at the fields of the file they concern. `known(path)`:
    the keys of the mapping at `path`; `nullable(path)`: whether the field takes null; `describe(path)`:
    what the field holds (for a missing one)."""
    by_path: dict[Path_, list[dict]] = {}
    for err in sorted(errors, key=lambda e: e["type"] != "extra_forbidden"):  # unknown keys first
        by_path.setdefault(_file_path(err, raw), []).append(err)
    for path, errs in by_path.items():
        kinds = [_KINDS[e["type"]] for e in errs if e["type"] in _KINDS]
        if kinds and len(kinds) == len(errs):  # a type mismatch (of every member of a union)
            if nullable(path):
                kinds.append("null")
            p.add(path, f"must be {' or '.join(dict.fromkeys(kinds))}; got {errs[0]['input']!r}")
            continue
        for e in errs:
            p.add(path, _message(e, path, known, describe))


def _file_path(err: dict, raw: Any) -> Path_:
    """The error's place in the file: pydantic's loc without its union tags, and without the index of a
    one-value field read as a one-item list (`seed: 0` is read as `seed: [0]`)."""
    path, node = [], raw
    for part in err["loc"]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            continue
        path.append(part)
    if err["type"] in ("missing", "extra_forbidden") and err["loc"] and tuple(path) != err["loc"]:
        path.append(err["loc"][-1])
    return tuple(path)


def _message(err: dict, path: Path_, known: Callable, describe: Callable) -> str:
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    if kind == "extra_forbidden":
        return f"unknown key '{path[-1]}'; known keys: {', '.join(known(path[:-1]))}"
    if kind == "missing":
        return f"missing; give {describe(path)}"
    if kind == "greater_than_equal":
        return f"must be >= {ctx['ge']}; got {value}"
    if kind in ("too_short", "dict_too_short"):
        return "is empty"
    if kind == "value_error":
        return str(ctx["error"])
    if kind == "model_type":
        return f"must be a mapping of {', '.join(known(path))}; got {value!r}"
    if kind == "shape":
        return f"{err['msg']}; got {value!r}"
    return f"{err['msg']}; got {value!r}"


# ---------------------------------------------------------------------------- lines of the file


def read_yaml(text: str, name: str) -> tuple[Any, dict]:
    """The parsed YAML and the line of every field; a syntax error or a duplicate key raises SweepFileError."""
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
    lines: dict[Path_, int] = {}
    dupes: list[str] = []
    if node is not None:
        _yaml_lines(node, (), lines, dupes)
    if dupes:
        raise SweepFileError(name, dupes)
    return spec, lines


def _yaml_lines(node, path: Path_, lines: dict, dupes: list) -> None:
    """Line of every field (path of keys and list indices -> 1-based line); duplicate keys noted."""
    import yaml

    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for k, v in node.value:
            key = k.value
            if key in seen:
                dupes.append(f"line {k.start_mark.line + 1} ({field_name(path + (key,))}): duplicate key '{key}'")
            seen.add(key)
            _yaml_lines(v, path + (key,), lines, dupes)
            lines[path + (key,)] = k.start_mark.line + 1  # a field's line is its key's
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _yaml_lines(v, path + (i,), lines, dupes)


def read_toml(text: str, name: str) -> tuple[Any, dict]:
    """The parsed TOML and the lines of its keys and tables."""
    try:
        spec = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SweepFileError(name, [f"not valid TOML ({exc})"]) from None
    return spec, toml_lines(text)


def toml_lines(text: str) -> dict[Path_, int]:
    """The first line of each `key =`, `[table]` and `[[array.of.tables]]` (a line scan: enough for the
    short files a sweep is; a field without a line of its own gets its table's)."""
    lines: dict[Path_, int] = {}
    table: Path_ = ()
    counts: dict[Path_, int] = {}
    for no, raw in enumerate(text.splitlines(), 1):
        s = raw.split("#", 1)[0].strip()
        if m := re.fullmatch(r"\[(\[?)\s*([^\]]+?)\s*\]\]?", s):
            table = tuple(p.strip().strip('"') for p in m[2].split("."))
            if m[1]:  # [[attacks]]: the next entry of an array of tables
                lines.setdefault(table, no)
                counts[table] = counts.get(table, -1) + 1
                table += (counts[table],)
            for i in range(1, len(table) + 1):
                lines.setdefault(table[:i], no)
        elif m := re.match(r'("[^"]+"|[A-Za-z0-9_\-]+)\s*=', s):
            lines.setdefault(table + (m[1].strip('"'),), no)
    return lines
