"""Peak memory of a piece of work: CUDA allocator peak on a GPU, sampled process RSS on a CPU."""

from __future__ import annotations

import os
import threading
import time

import psutil
import torch

_PROCESS: dict[int, psutil.Process] = {}  # by pid: a forked worker measures itself, not its parent


def rss_bytes() -> int:
    """This process's resident set size in bytes."""
    pid = os.getpid()
    proc = _PROCESS.get(pid)
    if proc is None:
        proc = _PROCESS[pid] = psutil.Process(pid)
    return proc.memory_info().rss


class PeakMemory:
    """Context manager. `.peak_mb` = extra memory at the peak over what was held at entry (on a CPU:
    resident-set growth, which is ~0 when the process already holds enough freed memory to reuse);
    `.peak_total_mb` = the process's (CPU) or allocator's (GPU) whole footprint at the peak."""

    def __init__(self, device: torch.device, interval: float = 0.005):
        self.device, self.interval = torch.device(device), interval
        self.peak_mb = 0.0
        self.peak_total_mb = 0.0

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
            return self
        self._start = self._peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, rss_bytes())
            time.sleep(self.interval)

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            self._thread.join()
            peak = max(self._peak, rss_bytes())
        self.peak_mb = max(0, peak - self._start) / 2**20
        self.peak_total_mb = peak / 2**20
