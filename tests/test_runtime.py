"""Process helpers on psutil (available memory, resident memory, liveness of a background sweep), the shared
`quiet_libraries`, and the store's one public read-only query."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pruning_core.sweeps import executors
from pruning_core.measure import profiling
from pruning_core.sweeps import background as sweep_background
from pruning_core.core.runtime import quiet_libraries
from pruning_core.storage.store import Store

LINUX = Path("/proc/self/statm").exists()


@pytest.mark.skipif(not LINUX, reason="compares with /proc")
def test_available_memory_is_memavailable():
    kib = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemAvailable:"))
    assert executors.available_memory_mb() == pytest.approx(kib / 1024, rel=0.05)


def test_resident_memory_follows_an_allocation():
    before = profiling.rss_bytes()
    if LINUX:
        statm = int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        assert before == pytest.approx(statm, rel=0.05)
    # growth is measured in a fresh process: a long test session holds freed pages that an allocation reuses
    # without growing (PeakMemory's docstring says so)
    code = ("from pruning_core.measure import profiling; before = profiling.rss_bytes(); "
            "block = bytearray(b'\\x01') * (64 * 2**20); print(profiling.rss_bytes() - before)")
    grown = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                               env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}).stdout)
    assert grown > 48 * 2**20


def test_alive_tells_a_running_process_from_a_finished_one():
    assert sweep_background._alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert sweep_background._alive(child.pid)
    finally:
        child.kill()
    deadline = time.time() + 10
    while sweep_background._alive(child.pid) and time.time() < deadline:  # a killed child is a zombie until reaped
        time.sleep(0.05)
    assert not sweep_background._alive(child.pid)
    assert not sweep_background._alive(2**22 + 12345)  # above Linux's pid_max: no such process


def test_quiet_libraries(monkeypatch):
    import transformers

    monkeypatch.delenv("TOKENIZERS_PARALLELISM", raising=False)
    quiet_libraries()
    assert os.environ["TOKENIZERS_PARALLELISM"] == "false"
    assert transformers.logging.get_verbosity() == transformers.logging.ERROR


def test_store_query_reads_and_refuses_writes(tmp_path):
    store = Store(tmp_path / "runs.sqlite")
    store.begin_sweep("s1", total=3)
    assert store.query("SELECT id, total FROM sweeps WHERE id = ?", ("s1",)).to_dict("records") == \
        [{"id": "s1", "total": 3}]
    with pytest.raises(Exception, match="readonly"):  # pandas wraps sqlite3's "attempt to write a readonly database"
        store.query("DELETE FROM sweeps")
    assert store.sweep("s1") is not None
