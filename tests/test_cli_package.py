"""The command line as a package: one module per command (`register` + `run`), the shared argparse
validators refuse a value with the same one line a hand check gave, and every module stays short."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

import pruning_core.cli as cli
from pruning_core.cli.common import Parser, integer, number
from pruning_core.core.errors import PrunescopeError

CLI_DIR = Path(cli.__file__).parent


def _subcommands(parser: argparse.ArgumentParser) -> set[str]:
    return set(next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices)


def test_every_command_is_a_module_with_register_and_run():
    assert _subcommands(cli.build_parser()) == {*cli.COMMANDS, "serve"}
    for name, module in cli.COMMANDS.items():
        assert callable(module.register) and callable(module.run), name
        sub = Parser(prog="x").add_subparsers(dest="command", parser_class=Parser)
        module.register(sub)
        assert set(sub.choices) == {name}, f"{module.__name__} registers {set(sub.choices)}, not {name}"


def test_each_module_stays_short():
    long = {p.name: n for p in CLI_DIR.glob("*.py") if (n := len(p.read_text().splitlines())) > 250}
    assert not long, long


def _parse(type_, text: str):
    p = Parser(prog="prunescope demo")
    p.add_argument("--workers", type=type_)
    return p.parse_args([f"--workers={text}"]).workers


@pytest.mark.parametrize("text,message", [
    ("0", "--workers must be an integer from 1 to 4096; got 0"),
    ("4097", "--workers must be an integer from 1 to 4096; got 4097"),
    ("-3", "--workers must be an integer from 1 to 4096; got -3"),
    ("abc", "argument --workers: invalid int value: 'abc' (see `prunescope demo --help`)"),
    ("2.5", "argument --workers: invalid int value: '2.5' (see `prunescope demo --help`)"),
])
def test_integer_refuses_with_the_hand_checks_line(text, message):
    with pytest.raises(PrunescopeError) as exc:
        _parse(integer(1, 4096, "an integer from 1 to 4096"), text)
    assert str(exc.value) == message


def test_integer_and_number_accept_their_range():
    assert _parse(integer(1, 4096, "x"), "4096") == 4096
    assert _parse(number(lambda v: 0 <= v <= 64, "x"), "0.5") == 0.5


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "65", "-0.1"])
def test_number_refuses_nan_infinity_and_out_of_range(text):
    with pytest.raises(PrunescopeError, match=r"^--workers must be a number from 0 to 64; got "):
        _parse(number(lambda v: 0 <= v <= 64, "a number from 0 to 64"), text)


def test_cli_calls_no_private_helper_of_another_module():
    """`from pruning_core.x import _name` or `module._name(...)` from the CLI: make the helper public."""
    import ast

    bad = []
    for path in CLI_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pruning_core"):
                bad += [f"{path.name}: {node.module}.{a.name}" for a in node.names
                        if a.name.startswith("_") and not node.module.startswith("pruning_core.cli")]
            elif (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                  and isinstance(node.value, ast.Name) and node.value.id in {"sweepfile", "executors", "store",
                                                                             "estimate", "results", "serve"}):
                bad.append(f"{path.name}: {node.value.id}.{node.attr}")
    assert not bad, bad
