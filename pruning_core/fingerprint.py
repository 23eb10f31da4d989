"""Content fingerprints of the files a result depends on, so a re-trained model or an edited CSV
gets a new run key instead of silently reusing stale stored results."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=256)
def _file_sha(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def file_sha(path: Path) -> str:
    """sha256 of a file's bytes (cached per path, size and modification time)."""
    st = path.stat()
    return _file_sha(str(path), st.st_size, st.st_mtime_ns)


def of_path(path: Path) -> str:
    """A folder: the hashes of its config and weight files; a file: its hash; else ''."""
    if path.is_file():
        return file_sha(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file()
                       and (p.name == "config.json" or p.suffix in (".safetensors", ".bin")))
        return hashlib.sha256("".join(f"{p.name}:{file_sha(p)};" for p in files).encode()).hexdigest()[:16]
    return ""
