"""Is the Hugging Face hub reachable? Asked once per process, answered within about two seconds.

Without this, an offline machine spends about 46 s in transformers' retries before a hub id fails;
with it, prunescope reads the local cache only (`local_files_only`) and fails at once when the model
or dataset is not cached.
"""

from __future__ import annotations

import os
import socket
import threading
from contextlib import contextmanager
from functools import lru_cache
from urllib.parse import urlparse

PROBE_SECONDS = 2.0


def offline_requested() -> bool:
    """HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE / HF_DATASETS_OFFLINE set to a true value."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"))


@lru_cache(maxsize=1)
def _reachable(host: str, port: int) -> bool:
    ok = []

    def probe():  # name resolution has no timeout of its own: run it where we can stop waiting
        try:
            with socket.create_connection((host, port), timeout=PROBE_SECONDS):
                ok.append(True)
        except OSError:
            pass

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(PROBE_SECONDS)
    return bool(ok)


def online() -> bool:
    """True when the hub may be used: offline mode is not requested and its endpoint answers."""
    if offline_requested():
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    return _reachable(url.hostname or "", url.port or (443 if url.scheme == "https" else 80))


@contextmanager
def offline_unless_online():
    """Inside: `datasets` and huggingface_hub read their caches only when the hub is not reachable (they
    read their offline switches once, at import; this sets them for the duration)."""
    if online():
        yield
        return
    import datasets.config
    from huggingface_hub import constants

    saved = constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = datasets.config.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE = saved
