"""A real browser on the real server: `streamlit run`, Debian Chromium driven by Playwright.

Runs where /usr/bin/chromium and the playwright package exist (`.ci/run` installs both); screenshots
go to artifacts/screenshots/ (git-ignored).
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
SHOTS = ROOT / "artifacts" / "screenshots"
DB = {}  # the server's results store

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists() or shutil.which("streamlit") is None
                                and not (Path(sys.executable).parent / "streamlit").exists(),
                                reason="Debian chromium not installed (apt-get install chromium chromium-driver)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = _free_port()
    env = dict(os.environ, PRUNESCOPE_DB=str(tmp_path_factory.mktemp("db") / "runs.sqlite"), PRUNESCOPE_JOB_WORKERS="1",
               PRUNESCOPE_JOB_IDLE="10")
    DB["path"] = env["PRUNESCOPE_DB"]
    streamlit = Path(sys.executable).parent / "streamlit"
    proc = subprocess.Popen([str(streamlit), "run", str(ROOT / "dashboard" / "app.py"), "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true",
                             "--browser.gatherUsageStats", "false"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).status == 200:
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("streamlit did not start: " + proc.stdout.read().decode(errors="replace")[-2000:])
    yield url
    proc.terminate()
    proc.wait(timeout=20)


def settle(page, timeout: int = 120_000) -> None:
    """Wait until the script run is over and no stale element remains.

    During a rerun Streamlit keeps the old elements (data-stale) beside the new ones, so a button can
    briefly appear twice; clicking then is a strict-mode error on a slow machine.
    """
    page.wait_for_function("""() => !document.querySelector('[data-testid="stStatusWidgetRunningIcon"]')
                                 && !document.querySelector('[data-stale="true"]')""", timeout=timeout)


def click(page, locator) -> None:
    """Click a widget once the app has settled and the locator names exactly one element."""
    settle(page)
    pw = pytest.importorskip("playwright.sync_api")
    pw.expect(locator).to_have_count(1, timeout=60_000)
    locator.click()


def test_prune_compare_learn_robustness_in_chromium(server):
    pw = pytest.importorskip("playwright.sync_api")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with pw.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"])
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        page.set_default_timeout(120_000)  # a loaded CI machine renders slowly
        page.goto(server)
        page.get_by_text("Prune a model").wait_for(timeout=60_000)
        # method: open the select box and pick wanda
        click(page, page.get_by_role("combobox", name="Method"))
        page.get_by_role("option", name="wanda", exact=True).click()
        slider = page.get_by_role("slider")
        slider.focus()
        slider.press("ArrowRight")  # 0.50 -> 0.55
        slider.press("ArrowRight")  # -> 0.60
        for label, value in (("Calibration examples", "16"), ("Evaluation examples (0 = whole test split)", "100")):
            box = page.get_by_label(label)
            box.fill(value)
            box.press("Enter")
        click(page, page.get_by_test_id("stSidebar").get_by_role("button", name="Prune", exact=True))
        page.get_by_text("Pruned accuracy").wait_for(timeout=240_000)
        page.locator(".js-plotly-plot .main-svg:visible").first.wait_for(timeout=60_000)
        page.wait_for_timeout(1500)
        metrics = page.get_by_test_id("stMetricValue").all_inner_texts()
        assert abs(float(metrics[2]) - 0.6) < 0.005, metrics  # cards: dense, pruned accuracy, achieved sparsity
        page.screenshot(path=str(SHOTS / "prune.png"), full_page=True)
        assert page.get_by_test_id("stException").count() == 0

        # a structured method (Kwon et al., the fastest): no pattern, a FLOPs budget, the kept-unit views
        click(page, page.get_by_role("combobox", name="Method"))
        page.get_by_role("option", name="kwon", exact=True).click()
        page.get_by_text("Encoder FLOPs removed").wait_for(timeout=60_000)
        settle(page)
        assert page.get_by_role("combobox", name="Pattern").count() == 0
        click(page, page.get_by_test_id("stSidebar").get_by_role("button", name="Prune", exact=True))
        page.get_by_text("FLOPs removed", exact=True).wait_for(timeout=240_000)
        page.locator(".js-plotly-plot .gtitle", has_text="Attention heads kept").wait_for(timeout=60_000)
        page.wait_for_timeout(1500)
        assert page.locator(".js-plotly-plot .gtitle", has_text="FFN neurons kept").count() == 1
        assert page.get_by_role("button", name="Measure speed").count() == 1
        assert page.get_by_role("button", name="Export model").count() == 1
        page.screenshot(path=str(SHOTS / "prune_structured.png"), full_page=True)
        assert page.get_by_test_id("stException").count() == 0

        page.get_by_test_id("stSidebarNav").get_by_text("Compare", exact=True).click()
        page.get_by_text("Compare methods").wait_for(timeout=60_000)
        page.locator(".js-plotly-plot .main-svg:visible").first.wait_for(timeout=60_000)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(SHOTS / "compare.png"), full_page=True)
        assert page.get_by_test_id("stException").count() == 0

        page.get_by_test_id("stSidebarNav").get_by_text("Learn").click()
        page.locator(".js-plotly-plot .main-svg:visible").first.wait_for(timeout=60_000)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(SHOTS / "learn.png"), full_page=True)
        assert page.get_by_test_id("stException").count() == 0

        # Robustness: magnitude at 0 (dense) and 50%, 3 examples of DeepWordBug
        page.get_by_test_id("stSidebarNav").get_by_text("Robustness").click()
        page.get_by_text("Robustness under attack").first.wait_for(timeout=60_000)
        page.get_by_text("7 attacks in the grid: 7 stored, 0 to compute").wait_for(timeout=60_000)  # BBC demo
        click(page, page.get_by_role("button", name="Rotten Tomatoes"))  # the other shipped grid, then a small one
        page.get_by_text("13 attacks in the grid: 13 stored, 0 to compute").wait_for(timeout=60_000)
        for name in ("wanda", "sparsegpt", "30%", "70%", "90%"):
            click(page, page.get_by_role("button", name=f"Remove {name}", exact=True))
        box = page.get_by_role("spinbutton", name="Examples to attack")
        box.fill("3")
        box.press("Enter")
        page.get_by_text("2 attacks in the grid: 0 stored, 2 to compute").wait_for(timeout=60_000)
        click(page, page.get_by_role("button", name="Compute the 2 missing attacks"))
        page.mouse.move(0, 0)  # no tooltip over the screenshot
        page.get_by_text("2 attacks in the grid: 2 stored, 0 to compute").wait_for(timeout=240_000)
        settle(page)  # the default grid's views stay beside the new ones (data-stale) until the rerun ends
        page.get_by_text("Adversarial examples").first.wait_for(timeout=60_000)
        page.locator(".js-plotly-plot .main-svg:visible").first.wait_for(timeout=60_000)
        page.get_by_text("true label:").first.wait_for(timeout=60_000)
        page.wait_for_timeout(1500)
        assert page.get_by_text("true label:").count() == 3
        assert page.locator(".js-plotly-plot .legendtext", has_text="magnitude").count() == 1
        page.set_viewport_size({"width": 1500, "height": 2000})  # the app scrolls inside: show the examples
        page.wait_for_timeout(1000)
        page.screenshot(path=str(SHOTS / "robustness.png"), full_page=True)
        assert page.get_by_test_id("stException").count() == 0
        browser.close()


def _launch(p):
    return p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"])


def _set_number(page, label: str, value: str) -> None:
    box = page.get_by_label(label)
    box.fill(value)
    box.press("Enter")
    settle(page)


def test_a_prune_survives_navigation_and_reload(server):
    """Prune (a job in the server's worker pool), open Learn, come back: the live progress is still drawn
    and the run completes and is stored. Then another config, reloaded mid-prune: the page re-attaches
    through ?job=ID and completes."""
    pw = pytest.importorskip("playwright.sync_api")
    from pruning_core.experiments.config import ExperimentConfig
    from pruning_core.storage.store import Store

    shots = Path(os.environ.get("PRUNESCOPE_SHOTS", str(SHOTS)))
    shots.mkdir(parents=True, exist_ok=True)
    with pw.sync_playwright() as p:
        browser = _launch(p)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        page.set_default_timeout(120_000)
        page.goto(server)
        page.get_by_text("Prune a model").wait_for(timeout=60_000)
        settle(page)
        _set_number(page, "Calibration examples", "48")  # sparsegpt 50%, 48 texts, 300 evaluated: ~20-40 s
        _set_number(page, "Evaluation examples (0 = whole test split)", "300")
        click(page, page.get_by_role("button", name="Prune", exact=True).first)  # the main area's button
        page.get_by_text("Running: block").first.wait_for(timeout=180_000)  # blocks are being pruned
        assert "job=" in page.url
        page.screenshot(path=str(shots / "nav_1_running.png"), full_page=True)

        page.get_by_test_id("stSidebarNav").get_by_text("Learn").click()
        page.wait_for_url(lambda u: "learn" in u, timeout=60_000)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(shots / "nav_2_learn.png"), full_page=True)
        page.get_by_test_id("stSidebarNav").get_by_text("Prune").click()
        page.get_by_text("Running: block").or_(page.get_by_text("Pruned accuracy")).first.wait_for(timeout=60_000)
        page.screenshot(path=str(shots / "nav_3_back.png"), full_page=True)
        page.get_by_text("Pruned accuracy").wait_for(timeout=300_000)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(shots / "nav_4_done.png"), full_page=True)
        assert page.get_by_test_id("stException").count() == 0
        store = Store(DB["path"])
        first = ExperimentConfig.create(method="sparsegpt", sparsity=0.5, calib_size=48, seq_len=64, eval_size=300)
        assert store.has(first.key())

        slider = page.get_by_role("slider")  # another config: 55%
        slider.focus()
        slider.press("ArrowRight")
        settle(page)
        click(page, page.get_by_test_id("stSidebar").get_by_role("button", name="Prune", exact=True))
        page.get_by_text("Running: block").first.wait_for(timeout=120_000)
        page.wait_for_url(lambda u: "job=" in u, timeout=30_000)
        page.reload()
        page.get_by_text("Running: block").or_(page.get_by_text("Pruned accuracy")).first.wait_for(timeout=120_000)
        page.screenshot(path=str(shots / "reload_1_reattached.png"), full_page=True)
        page.get_by_text("Pruned accuracy").wait_for(timeout=300_000)
        page.wait_for_timeout(1500)
        metrics = page.get_by_test_id("stMetricValue").all_inner_texts()
        assert abs(float(metrics[2]) - 0.55) < 0.005, metrics
        page.screenshot(path=str(shots / "reload_2_done.png"), full_page=True)
        assert page.get_by_test_id("stException").count() == 0
        second = ExperimentConfig.create(method="sparsegpt", sparsity=0.55, calib_size=48, seq_len=64, eval_size=300)
        assert store.has(second.key())
        # the finished run's views: intervals, the run environment, the examples that flip, the encoder diagram
        for text in ("95% CI", "Run environment:", "Examples that flip", "Where the model lost weights"):
            page.get_by_text(text).first.wait_for(timeout=60_000)
        page.get_by_text("Examples that flip").first.scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "views_flips.png"))
        page.get_by_text("Where the model lost weights").first.scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "views_diagram.png"))
        # run against run: two stored runs of the same model, overlaid
        page.get_by_test_id("stSidebarNav").get_by_text("Run vs run").click()
        page.get_by_text("Run against run").wait_for(timeout=60_000)
        page.get_by_text("95% CI").first.wait_for(timeout=60_000)
        settle(page)
        page.screenshot(path=str(shots / "run_vs_run.png"), full_page=True)
        assert page.get_by_test_id("stException").count() == 0
        browser.close()


def test_demo_path_in_presentation_mode(server):
    """?present=1: the Demo path is the landing page, its two shipped presets drawn at once with large fonts;
    the mode survives navigation (Robustness, on the shipped BBC News grid) and a reload. Screenshots go to
    $PRUNESCOPE_SHOTS (default artifacts/screenshots)."""
    pw = pytest.importorskip("playwright.sync_api")
    shots = Path(os.environ.get("PRUNESCOPE_SHOTS", str(SHOTS)))
    shots.mkdir(parents=True, exist_ok=True)
    with pw.sync_playwright() as p:
        browser = _launch(p)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.set_default_timeout(120_000)
        page.goto(f"{server}/?present=1")
        page.get_by_role("heading", name="Demo path").wait_for(timeout=60_000)
        page.locator(".js-plotly-plot .gtitle", has_text="Accuracy after pruning").wait_for(timeout=60_000)
        page.locator(".js-plotly-plot .gtitle", has_text="Under attack by deepwordbug").wait_for(timeout=60_000)
        settle(page)
        page.mouse.move(0, 0)
        page.wait_for_timeout(1500)
        assert page.get_by_text("chance 0.50").count() == 1 and page.get_by_text("chance 0.20").count() == 2
        assert page.get_by_text("do not overlap").count() == 1
        size = page.locator(".js-plotly-plot .gtitle").first.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
        assert size >= 24, size
        page.screenshot(path=str(shots / "demo_path_present.png"), full_page=True)
        page.set_viewport_size({"width": 1440, "height": 2600})  # the app scrolls inside: all three presets
        page.wait_for_timeout(1000)
        page.screenshot(path=str(shots / "demo_path_present_full.png"), full_page=True)
        page.set_viewport_size({"width": 1440, "height": 900})
        assert page.get_by_test_id("stException").count() == 0

        click(page, page.get_by_role("button", name="Open in Robustness"))
        page.get_by_text("7 attacks in the grid: 7 stored, 0 to compute").wait_for(timeout=60_000)
        page.locator(".js-plotly-plot .gtitle", has_text="Robustness vs sparsity").wait_for(timeout=60_000)
        settle(page)
        page.wait_for_timeout(1500)
        assert "present=1" in page.url
        page.screenshot(path=str(shots / "robustness_present.png"), full_page=True)
        page.reload()
        page.get_by_text("7 attacks in the grid").wait_for(timeout=60_000)
        page.locator(".js-plotly-plot .gtitle", has_text="Robustness vs sparsity").wait_for(timeout=60_000)
        settle(page)
        page.wait_for_timeout(1000)
        assert "present=1" in page.url and page.get_by_text("chance 0.20").count() == 2
        page.get_by_test_id("stSidebarNav").get_by_text("Compare", exact=True).click()  # the menu keeps it too
        page.get_by_text("Compare methods").wait_for(timeout=60_000)
        settle(page)
        page.wait_for_url(lambda u: "present=1" in u, timeout=30_000)
        assert page.get_by_test_id("stException").count() == 0
        browser.close()
