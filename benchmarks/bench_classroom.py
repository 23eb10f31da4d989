"""Classroom load (issue 14): 20 sessions press Prune at once on one store - 18 AppTest sessions (taking
turns in one thread of this process, sharing the store, like the sessions of one server) and 2 Chromium tabs on a real
`streamlit run` server - 10 of them the same config, the other 10 each their own (magnitude / wanda at
different sparsities, calibration 16, evaluation 100). Reports the jobs computed (11 expected: the 10
identical requests cost one job), the wall time until all are stored, whether every session shows its own
config's run with the stored accuracy, and the response time of the Prune page's reruns while the queue
is busy (p50 / p95 / max; target p95 < 1 s).

    python -m benchmarks.bench_classroom
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ("magnitude", 0.5)
DISTINCT = [("magnitude", s) for s in (0.3, 0.4, 0.6, 0.7, 0.8)] + [("wanda", s) for s in (0.3, 0.4, 0.5, 0.6, 0.7)]
CALIB, EVAL = 16, 100
TIMEOUT = 1800


def config(method: str, sparsity: float):
    from pruning_core.experiments.config import ExperimentConfig

    return ExperimentConfig.create(method=method, sparsity=sparsity, calib_size=CALIB, seq_len=64, eval_size=EVAL)


def app_sessions(plan: list[tuple[str, float]], times: list, busy, outs: list[dict], start: threading.Barrier) -> None:
    """The AppTest sessions (AppTest keeps one global runtime per run, so its sessions cannot run in parallel
    threads: they take turns in this thread, as script runs share a server's cores): each sets its sidebar,
    all press Prune one after the other, then every session reruns its page in turn until its run is shown;
    the duration of every rerun made while jobs are queued or running goes to `times`."""
    from streamlit.testing.v1 import AppTest

    apps = []
    for method, sparsity in plan:
        at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=300)
        at.run()
        at.selectbox(key="method").set_value(method)
        at.number_input(key="calib").set_value(CALIB)
        at.number_input(key="eval").set_value(EVAL)
        at.slider(key="sparsity").set_value(sparsity)
        at.run()
        apps.append(at)
    start.wait()
    for at in apps:
        at.button(key="prune_go").click()
        at.run()
    deadline = time.time() + TIMEOUT
    waiting = set(range(len(apps)))
    while waiting and time.time() < deadline:
        for i in sorted(waiting):
            at = apps[i]
            was_busy = busy()
            t = time.perf_counter()
            at.run()
            if was_busy:
                times.append(time.perf_counter() - t)
            if at.exception:
                outs[i]["error"] = str(at.exception)
                waiting.discard(i)
            elif "run_key" in at.session_state and "prune_job" not in at.session_state:
                metrics = {m.label: m.value for m in at.metric}
                outs[i].update(key=at.session_state["run_key"], accuracy=metrics.get("Pruned accuracy"),
                               sparsity=metrics.get("Achieved sparsity"))
                waiting.discard(i)
        time.sleep(0.5)


def start_server(db: str, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([str(Path(sys.executable).parent / "streamlit"), "run", str(ROOT / "dashboard" / "app.py"),
                             "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
                             "--browser.gatherUsageStats", "false"], cwd=ROOT, env=dict(os.environ, PRUNESCOPE_DB=db),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(240):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
            return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("streamlit did not start")


def browser_tabs(url: str, wanted: list[tuple[str, float]], outs: list[dict], start: threading.Barrier) -> None:
    """Two Chromium tabs on the real server, each pressing Prune for its config and waiting for its run."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        pages = []
        for method, sparsity in wanted:
            page = b.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(300_000)
            page.goto(url)
            page.get_by_text("Prune a model").wait_for()
            page.get_by_role("combobox", name="Method").click()
            page.get_by_role("option", name=method, exact=True).click()
            page.wait_for_timeout(1500)
            for label, value in (("Calibration examples", str(CALIB)),
                                 ("Evaluation examples (0 = whole test split)", str(EVAL))):
                box = page.get_by_label(label)
                box.fill(value)
                box.press("Enter")
                page.wait_for_timeout(1500)
            slider = page.get_by_role("slider")
            slider.focus()
            for _ in range(round((sparsity - 0.5) / 0.05)) if sparsity >= 0.5 else []:
                slider.press("ArrowRight")
            for _ in range(round((0.5 - sparsity) / 0.05)) if sparsity < 0.5 else []:
                slider.press("ArrowLeft")
            page.wait_for_timeout(1500)
            pages.append(page)
        start.wait()
        for page in pages:
            page.get_by_test_id("stSidebar").get_by_role("button", name="Prune", exact=True).click()
        for page, out in zip(pages, outs):
            page.get_by_text("Pruned accuracy").wait_for(timeout=TIMEOUT * 1000)
            page.wait_for_timeout(2000)
            values = page.get_by_test_id("stMetricValue").all_inner_texts()
            out.update(accuracy=values[1], sparsity=values[2])
        b.close()


def main() -> None:
    from benchmarks.common import machine, print_table

    tmp = tempfile.mkdtemp(prefix="prunescope-classroom-")
    db = os.path.join(tmp, "runs.sqlite")
    os.environ["PRUNESCOPE_DB"] = db  # the AppTest sessions' store (dashboard.common.get_store) = the server's
    os.environ.setdefault("PRUNESCOPE_JOB_IDLE", "20")
    from pruning_core import jobs
    from pruning_core.storage.store import Store

    store = Store(db)
    server = start_server(db, 8777)
    # 18 AppTest sessions: 9 of the shared config, 9 of the distinct ones; the 2 tabs: the 10th shared, the 10th distinct
    plan = [SHARED] * 9 + DISTINCT[:9]
    tabs = [SHARED, DISTINCT[9]]
    times: list[float] = []
    outs = [dict() for _ in plan]
    tab_outs = [dict(), dict()]
    busy = lambda: bool(jobs.list_jobs(store, states=("queued", "running"), limit=1))  # noqa: E731
    start = threading.Barrier(3)  # the AppTest sessions, the browser tabs and this thread
    threads = [threading.Thread(target=app_sessions, args=(plan, times, busy, outs, start), daemon=True)]
    threads.append(threading.Thread(target=browser_tabs, args=("http://127.0.0.1:8777", tabs, tab_outs, start),
                                    daemon=True))
    for t in threads:
        t.start()
    start.wait(timeout=900)  # both sides set up: the clock starts as they press Prune
    t0 = time.perf_counter()
    for t in threads:
        t.join(TIMEOUT)
    wall = time.perf_counter() - t0
    server.terminate()

    prune_jobs = [j for j in jobs.list_jobs(store, limit=1000) if j.kind == "prune"]
    ok = 0
    rows = []
    for (method, sparsity), out in [*zip(plan, outs), *zip(tabs, tab_outs)]:
        cfg = config(method, sparsity)
        run = store.load(cfg.key())
        good = (run is not None and (out.get("key") in (None, cfg.key()))
                and out.get("accuracy") == f"{run['accuracy']:.3f}")
        ok += good
        if not good:
            rows.append([f"{method} {sparsity:g}", str(out)[:80], "" if run is None else f"{run['accuracy']:.3f}"])
    p = sorted(times)
    p95 = p[min(len(p) - 1, int(0.95 * len(p)))] if p else float("nan")
    table = [["sessions", "20 (18 AppTest + 2 Chromium tabs)"],
             ["distinct configs", "11 (10 sessions ask for the same one)"],
             ["jobs computed", f"{sum(j.state == 'done' for j in prune_jobs)} done of {len(prune_jobs)} jobs"],
             ["runs stored", str(len(store.runs()))],
             ["wall time until every session shows its run", f"{wall:.1f} s"],
             ["first job queued to last job done",
              f"{max(j.finished or 0 for j in prune_jobs) - min(j.created for j in prune_jobs):.1f} s"],
             ["sessions with their correct result", f"{ok} of 20"],
             ["Prune page reruns while busy", str(len(p))],
             ["rerun time p50 / p95 / max", f"{statistics.median(p):.3f} / {p95:.3f} / {p[-1]:.3f} s" if p else "-"],
             ["machine", machine()]]
    print_table(["measure", "value"], table, "Classroom load: 20 sessions, one store, one worker pool")
    for r in rows:
        print("WRONG:", *r)


if __name__ == "__main__":
    main()
