"""The run environment recorded with every run: processor, threads, library versions, device and the machine's
load when the run started, so a prune time can be read against the machine that measured it."""

from __future__ import annotations

import os
import platform
import time
from functools import lru_cache


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The processor's name ('/proc/cpuinfo' on Linux, platform.processor() elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict[str, str]:
    """Versions of Python, torch, transformers and prunescope."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "prunescope"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "?"
    return out


def snapshot(device: str) -> dict:
    """{cpu, cores, threads, device, load_1m, load_per_core, torch, transformers, python, prunescope, started},
    read now (`started`: seconds since the epoch, the run's own time)."""
    import torch

    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):
        load = float("nan")
    cores = os.cpu_count() or 1
    dev = str(device)
    if dev.startswith("cuda") and torch.cuda.is_available():
        dev = f"{dev}: {torch.cuda.get_device_name(torch.device(dev))}"
    return {"cpu": cpu_model(), "cores": cores, "threads": torch.get_num_threads(), "device": dev,
            "load_1m": round(load, 2), "load_per_core": round(load / cores, 2), **versions(), "started": time.time()}


def describe(env: dict | None) -> str:
    """One line: 'Intel Xeon ... · 2 threads · torch 2.13.0 · transformers 4.57 · cpu · load 0.4/core'."""
    if not env:
        return "environment not recorded (a run from before it was kept)"
    return (f"{env.get('cpu', '?')} · {env.get('threads', '?')} threads of {env.get('cores', '?')} cores · "
            f"torch {env.get('torch', '?')} · transformers {env.get('transformers', '?')} · {env.get('device', '?')} · "
            f"load {env.get('load_per_core', float('nan')):.2f} per core at start")
