"""Dashboard speed: first paint after server start, a fresh prune + evaluation (SparseGPT 50%,
default model), and the re-render of a stored run.

    python -m benchmarks.bench_dashboard
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks.common import machine, print_table

ROOT = Path(__file__).resolve().parents[1]


def first_paint(db: str) -> tuple[float, float]:
    """Seconds from `streamlit run` to the health check, and to the Prune page's title in Chromium."""
    from playwright.sync_api import sync_playwright

    port = 8765
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "streamlit"), "run", str(ROOT / "dashboard" / "app.py"),
                             "--server.port", str(port), "--server.headless", "true"],
                            env=dict(os.environ, PRUNESCOPE_DB=db), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.perf_counter() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
                break
            except OSError:
                if time.perf_counter() > deadline or proc.poll() is not None:
                    raise RuntimeError("streamlit did not start within 120 s") from None
                time.sleep(0.05)
        healthy = time.perf_counter() - t0
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                  args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = b.new_page()
            page.goto(f"http://127.0.0.1:{port}")
            page.get_by_text("Prune a model").wait_for(timeout=60_000)
            painted = time.perf_counter() - t0
            b.close()
    finally:
        proc.terminate()
        proc.wait()
    return healthy, painted


def main() -> None:
    db = str(Path(tempfile.mkdtemp()) / "bench.sqlite")
    os.environ["PRUNESCOPE_DB"] = db
    rows = []
    if Path("/usr/bin/chromium").exists():
        healthy, painted = first_paint(db)
        rows += [["server up (health check)", healthy], ["first paint in Chromium (from server start)", painted]]
    from pruning_core.experiments.config import ExperimentConfig
    from pruning_core.experiments.experiment import load_dense, run_experiment

    t = time.perf_counter()
    load_dense("default", "rotten_tomatoes", "cpu")
    rows.append(["load the default model (once per server)", time.perf_counter() - t])
    for eval_size in (500, None):
        cfg = ExperimentConfig.create(method="sparsegpt", sparsity=0.5, calib_size=64, eval_size=eval_size,
                                      device="cpu")
        t = time.perf_counter()
        res = run_experiment(cfg)
        cold = time.perf_counter() - t
        t = time.perf_counter()
        run_experiment(cfg.with_(calib_size=63))  # a new run; the dense evaluation of this split is cached
        warm = time.perf_counter() - t
        n = res.pruned.n
        rows.append([f"fresh prune + evaluation, sparsegpt 50%, calib 64, {n} eval examples (dense eval too)", cold])
        rows.append([f"fresh prune + evaluation, sparsegpt 50%, calib 64, {n} eval examples (dense eval cached)", warm])
    from pruning_core.storage.store import Store

    store = Store(db)
    store.save(res.to_json(), res.prune.masks)
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120)
    at.run()
    at.session_state["run_key"] = cfg.key()
    at.run()  # warm the caches once
    t = time.perf_counter()
    at.run()
    rows.append(["re-render a stored run (Prune page, all charts, AppTest)", time.perf_counter() - t])
    assert not at.exception
    print_table(["step", "seconds"], rows, f"Dashboard speed ({machine()})")


if __name__ == "__main__":
    main()
