"""The import contracts in pyproject.toml ([tool.importlinter]) hold, and they would catch the cycles that
were broken: cli <-> executors <-> sweep, robustness modules importing through their package's __init__,
and an upward import of the dashboard from the library."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pruning_core", "dashboard")


def lint(cwd: Path) -> subprocess.CompletedProcess:
    """`lint-imports` on the packages under `cwd`, with the contracts of `cwd/pyproject.toml` (no cache)."""
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))"
    env = os.environ | {"PYTHONPATH": str(cwd), "COLUMNS": "400"}  # the copy under test, not an installed one
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def verdicts(out: str) -> dict[str, str]:
    """{contract name: 'KEPT' | 'BROKEN'} from lint-imports' report."""
    return {m[1].strip(): m[2] for m in re.finditer(r"^(\S.*?) (KEPT|BROKEN)\b", out, re.M)}


def contract_names() -> list[str]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return [c["name"] for c in tomllib.load(f)["tool"]["importlinter"]["contracts"]]


def test_import_contracts_hold():
    res = lint(ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    assert verdicts(res.stdout) == dict.fromkeys(contract_names(), "KEPT"), res.stdout


def test_contracts_catch_an_upward_import_a_cycle_and_an_import_through_a_package(tmp_path):
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)

    def append(module: str, text: str) -> None:
        path = tmp_path.joinpath(*module.split(".")).with_suffix(".py")
        path.write_text(path.read_text() + "\n\n" + text)

    # the cycle that was broken: executors importing the CLI (which imports executors)
    append("pruning_core.sweeps.executors", "def _mutant():\n    from pruning_core.cli import main\n")
    # a robustness module reaching a re-exported name through the package's __init__
    append("pruning_core.robustness.recipes", "def _mutant():\n    from pruning_core.robustness import AttackConfig\n")
    # the library importing the dashboard and streamlit
    append("pruning_core.core.errors", "def _mutant():\n    import streamlit\n    import dashboard\n")
    res = lint(tmp_path)
    assert res.returncode != 0, res.stdout
    found = verdicts(res.stdout)
    assert found == dict.fromkeys(contract_names(), "BROKEN"), res.stdout  # every contract catches a mutant


def _own_package_imports(path: Path) -> list[str]:
    """`from <an enclosing subpackage> import ...` statements in `path` (such a statement goes through the
    package's __init__, which imports its submodules: the import order then depends on who came first)."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    enclosing = {".".join(parts[:i]) for i in range(2, len(parts))}  # subpackages only, not the top package
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [f"{path.relative_to(ROOT)}:{node.lineno} from {node.module or '.'} import ..."
            for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
            and (node.level > 0 or node.module in enclosing)]


def test_no_module_imports_its_siblings_through_its_own_package():
    """`from pruning_core.robustness import recipes` inside robustness/attack.py was a cycle with the
    package's __init__ that grimp cannot see (it resolves the name to the submodule): modules name their
    siblings by full module path."""
    bad = [hit for pkg in PACKAGES for path in sorted((ROOT / pkg).rglob("*.py")) for hit in _own_package_imports(path)]
    assert not bad, "\n".join(bad)


def test_the_package_check_sees_the_old_spelling(tmp_path, monkeypatch):
    mod = tmp_path / "pruning_core" / "robustness" / "attack.py"
    mod.parent.mkdir(parents=True)
    mod.write_text("from pruning_core.robustness import recipes\nfrom pruning_core import data\n"
                   "import pruning_core.robustness.recipes as recipes\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert _own_package_imports(mod) == ["pruning_core/robustness/attack.py:1 from pruning_core.robustness import ..."]
