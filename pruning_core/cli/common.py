"""What the commands share: the one-line-error parser, argparse `type=` validators, the model/task flags,
`--option key=value` parsing, `--json` output, consoles and the one-line label of a run or attack."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

from pruning_core.core.errors import PrunescopeError
from pruning_core.core.paths import check_output_file, write_output


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of usage + error
        bad = re.fullmatch(r"argument (--[\w-]+): (must be .*)", message)
        if bad:  # a validator below refused a value: "--workers must be ...; got 0", as a hand check says it
            raise PrunescopeError(f"{bad[1]} {bad[2]}")
        raise PrunescopeError(f"{message} (see `{self.prog} --help`)")


def integer(low: int, high: int, allowed: str) -> Callable[[str], int]:
    """A `type=` for an integer flag in [low, high]; `allowed` completes "must be ...", e.g. "from 1 to 100".
    Text that is no integer gets argparse's own "invalid int value: 'abc'"."""
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {allowed}; got {value}")
        return value

    parse.__name__ = "int"  # argparse names the type in "invalid int value"
    return parse


def number(ok: Callable[[float], bool], allowed: str) -> Callable[[str], float]:
    """A `type=` for a float flag that `ok` accepts (NaN fails any comparison, so write `ok` as one)."""
    def parse(text: str) -> float:
        value = float(text)
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {allowed}; got {value}")
        return value

    parse.__name__ = "float"
    return parse


def add_model_args(sp: argparse.ArgumentParser) -> None:
    """The flags of every command that loads a model for a task: prune, eval, attack."""
    sp.add_argument("--model", default="default", help="default | local folder | hub id")
    sp.add_argument("--task", default="rotten_tomatoes", help="shipped task, datasets name, or CSV/TSV path")
    sp.add_argument("--eval-size", type=int, default=None, help="evaluate on a seeded subset of the test split")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    sp.add_argument("--fresh-head", action="store_true",
                    help="allow a model folder without a trained classification head: a seeded random head "
                         "(encoder errors are meaningful, accuracy is chance); refused without this flag")


def option_pairs(items: list[str]) -> dict:
    """--option key=value, values parsed as JSON where they can be (numbers, true/false)."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise PrunescopeError(f"--option takes key=value; got '{item}'")
        k, v = item.split("=", 1)
        if not k.strip():
            raise PrunescopeError(f"--option takes key=value with a non-empty key; got '{item[:40]}'")
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def check_json_path(path: Path | None) -> None:
    """Refuse a --json path that cannot be written, before any work."""
    if path is not None:
        check_output_file(path, "--json")


def write_json(path: Path | None, obj: dict) -> None:
    if path is not None:
        text = json.dumps(obj, indent=1)
        write_output(path, lambda tmp: tmp.write_text(text), "--json")


def wide_console(stderr: bool = False):
    """A rich console; wide when the output is not a terminal, so tables in logs stay readable."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else 200)


def changed_options(cfg) -> dict:
    """The method options of a run that differ from the method's defaults."""
    from dataclasses import asdict

    from pruning_core.prune import methods

    defaults = asdict(methods.get(cfg.method).options({}))
    return {k: v for k, v in cfg.options_dict().items() if defaults.get(k) != v}


def config_label(cfg) -> str:
    """task, model (if not default), method, pattern, sparsity and non-default options of a run or attack."""
    from pruning_core.robustness import AttackConfig

    if isinstance(cfg, AttackConfig):
        target = "the dense model" if cfg.dense else config_label(cfg.run)
        budget = (f", {cfg.query_budget} queries" if cfg.query_budget else "") + (
            ", visible words only" if cfg.visible_only else "")
        return f"attack {cfg.recipe} (n={cfg.n}, seed {cfg.seed}{budget}) on {target}"
    opts = changed_options(cfg)
    model = "" if cfg.model == "default" else f" [{cfg.model}]"
    return (f"{cfg.task}{model} {cfg.method} {cfg.pattern} {cfg.sparsity:g}"
            + (f" {json.dumps(opts)}" if opts else "") + (f" seed {cfg.seed}" if cfg.seed else ""))


def add_background_arg(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--background", action="store_true",
                    help="submit a job to this store's worker pool and return its id (follow it with "
                         "`prunescope jobs watch ID`)")


def submit_background(store, kind: str, spec: dict, recompute: bool = False) -> int:
    """Submit a job and say how it was taken: queued, attached to a running or queued job, or already stored."""
    from pruning_core.jobs import ahead, submit

    job, how = submit(store, kind, spec, recompute=recompute)
    if job is None:
        print(f"already stored in {store.path} (use --recompute to compute it again)")
    elif how == "attached":
        print(f"attached to job {job.id} ({job.state}): {job.label}")
    else:
        waiting = ahead(store, job.id)
        print(f"job {job.id}: queued ({waiting} ahead): {job.label}")
    if job is not None:
        print(f"follow it with: prunescope jobs watch {job.id}", file=sys.stderr)
    return 0
