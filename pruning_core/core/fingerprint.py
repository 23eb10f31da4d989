"""Content fingerprints of the files a result depends on, so a re-trained model or an edited CSV
gets a new run key instead of silently reusing stale stored results.

A fingerprint depends on the bytes of the files and their names inside the folder, never on where the
folder lies or when it was written: a fresh clone of the repository computes the keys the shipped demo
results were stored under (tests/test_demo_keys.py checks it). JSON files are hashed with CRLF line ends
read as LF, so a checkout that converts line ends (git's `core.autocrlf` on Windows) gets the same keys.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

MODEL_FILES = ("config.json",)
WEIGHT_SUFFIXES = (".safetensors", ".bin")
TEXT_SUFFIXES = (".json",)  # line ends normalised (model configs); weights and data hashed byte for byte


@lru_cache(maxsize=256)
def _file_sha(path: str, size: int, mtime_ns: int, text: bool) -> str:
    h = hashlib.sha256()
    carry = b""  # a CR at the end of one chunk may start a CRLF split across two
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            if text:
                chunk = carry + chunk
                carry = b"\r" if chunk.endswith(b"\r") else b""
                chunk = (chunk[:-1] if carry else chunk).replace(b"\r\n", b"\n")
            h.update(chunk)
    h.update(carry)
    return h.hexdigest()[:16]


def file_sha(path: Path) -> str:
    """sha256 of a file's bytes (JSON: with CRLF read as LF), cached per path, size and modification time."""
    st = path.stat()
    return _file_sha(str(path), st.st_size, st.st_mtime_ns, path.suffix.lower() in TEXT_SUFFIXES)


def _combine(named: list[tuple[str, Path]]) -> str:
    return hashlib.sha256("".join(f"{name}:{file_sha(p)};" for name, p in named).encode()).hexdigest()[:16]


def of_path(path: Path) -> str:
    """A model folder: the hashes of its config and weight files; any other folder (a saved dataset):
    the hashes of every file under it, by relative path; a file: its hash; else ''."""
    if path.is_file():
        return file_sha(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file()
                       and (p.name in MODEL_FILES or p.suffix in WEIGHT_SUFFIXES))
        if files:
            return _combine([(p.name, p) for p in files])
        return _combine(sorted((p.relative_to(path).as_posix(), p) for p in path.rglob("*") if p.is_file()))
    return ""
