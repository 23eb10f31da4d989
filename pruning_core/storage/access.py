"""Which local files a served page may read.

The dashboard can be served to a room: whoever opens it types model and task names into text fields, and
those fields also take local paths. A path the page reads must lie under an allowed root:
`PRUNESCOPE_DATA_ROOTS` (folders separated by `os.pathsep`) or, without it, the project's assets and the
user's data folder (where the results store lives by default). The folder the page saves uploaded CSVs in
is always allowed. Hub ids and shipped names are not paths and pass. The command line does not use this:
its user owns the machine.
"""

from __future__ import annotations

import os
from pathlib import Path

from pruning_core.core.errors import PrunescopeError
from pruning_core.core.paths import ASSETS_DIR

ROOTS_ENV = "PRUNESCOPE_DATA_ROOTS"


def user_data_dir() -> Path:
    """The user's prunescope data folder (the default home of the results store)."""
    from platformdirs import user_data_dir as data_dir

    return Path(data_dir("prunescope"))


def uploads_dir() -> Path:
    """Where the page saves uploaded CSV/TSV files: beside the results store (the user's data folder unless
    PRUNESCOPE_DB moves the store)."""
    from pruning_core.storage.store import default_path

    return default_path().expanduser().resolve().parent / "uploads"


def _resolve(path: Path) -> Path:
    return path.expanduser().resolve()  # symlinks followed, '..' removed; a missing tail is kept as written


def allowed_roots() -> list[Path]:
    """The folders the page may read under (resolved): PRUNESCOPE_DATA_ROOTS, else the project's assets and
    the user's data folder; the uploads folder always."""
    env = os.environ.get(ROOTS_ENV, "")
    listed = [Path(p.strip()) for p in env.split(os.pathsep) if p.strip()]
    roots = listed or [ASSETS_DIR, user_data_dir()]
    out: list[Path] = []
    for root in [*roots, uploads_dir()]:
        resolved = _resolve(root)
        if resolved not in out:
            out.append(resolved)
    return out


def _shipped_names() -> set[str]:
    from pruning_core.data import tasks as data

    return {"default", *data.SHIPPED, *data.HUB}


def names_local_path(text: str) -> bool:
    """True when `text` would be read as a local path: it exists, or it starts with '/', '.' or '~'.
    Shipped names (default, the shipped tasks, glue/sst2, ...) are names, never paths."""
    text = text.strip()
    if not text or text in _shipped_names():
        return False
    if text.startswith(("/", ".", "~")):
        return True
    try:
        return Path(text).expanduser().exists()
    except (OSError, ValueError):  # too long for a file name, or a NUL byte: not a path the loaders read
        return False


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def check_page_path(text: str) -> str:
    """`text` unchanged when the page may use it: a hub id, a shipped name, or a local path (symlinks
    resolved) under an allowed root. Anything else raises PrunescopeError, whether the path exists or not
    (so the page cannot be used to probe the server's files); the message never shows a file's contents."""
    if not names_local_path(text):
        if "\0" in text:
            raise PrunescopeError("a model or task name cannot contain a NUL character")
        return text
    try:
        resolved = _resolve(Path(text.strip()))
    except (OSError, RuntimeError, ValueError):  # a symlink loop, or a name the OS refuses
        resolved = None
    roots = allowed_roots()
    if resolved is not None and any(resolved == r or resolved.is_relative_to(r) for r in roots):
        return text
    raise PrunescopeError(
        f"'{_short(text.strip())}' is outside the folders this page may read ({', '.join(map(str, roots))}): "
        f"move it under one of them (a CSV can also be uploaded), or have whoever starts the server add its "
        f"folder to {ROOTS_ENV} (folders separated by '{os.pathsep}')")
