"""A real browser on the real server: `streamlit run`, Debian Chromium driven by Playwright.

Runs where /usr/bin/chromium and the playwright package exist (`.ci/run` installs both); screenshots
go to artifacts/screenshots/ (git-ignored).
"""

import os
import re
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

# minutes each: run by `make test-slow` (CI runs it after `make test`)
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path(CHROMIUM).exists() or shutil.which("streamlit") is None
                                 and not (Path(sys.executable).parent / "streamlit").exists(),
                                 reason="Debian chromium not installed (apt-get install chromium chromium-driver)")]


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


LIVE_BLOCKS = """() => {
    const bar = document.querySelector('[data-testid="stProgress"]');
    const m = bar && bar.textContent.match(/block (\\d+) done \\((\\d+) of (\\d+)\\)/);
    const plot = bar && [...document.querySelectorAll('.js-plotly-plot')].find(p =>
        (bar.compareDocumentPosition(p) & Node.DOCUMENT_POSITION_FOLLOWING)
        && (p.querySelector('.gtitle') || {}).textContent === 'Cumulative error across depth');
    if (!m || !plot || !plot.data) return null;
    const xs = plot.data[0].x;
    return {bar: bar.textContent, block: +m[1], done: +m[2], last: xs[xs.length - 1], points: xs.length - 1};
}"""


def _live_blocks_agree(page, timeout: int = 60_000) -> dict:
    """The live panel's bar ('block k done (m of n)') and its cumulative-error chart agree: the chart's last
    point is 'block k' (both 0-based) and it has m block points. Polled: the two redraw one after the other."""
    pw = pytest.importorskip("playwright.sync_api")
    try:
        return page.wait_for_function(f"() => {{ const s = ({LIVE_BLOCKS})(); return s && s.last === 'block ' + s.block"
                                      " && s.points === s.done ? s : null; }", timeout=timeout, polling=250).json_value()
    except pw.TimeoutError:
        raise AssertionError(f"the bar and the live chart disagree: {page.evaluate(LIVE_BLOCKS)}") from None


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
        live = _live_blocks_agree(page)  # the bar numbers blocks as the chart does
        assert 1 <= live["done"] <= 6 and "of 6)" in live["bar"], live
        # the buttons follow the job from queued to running (drawn by the page run, not the live panel)
        page.get_by_role("button", name="Running - attach").first.wait_for(timeout=30_000)
        assert page.get_by_role("button", name=re.compile("^Queued")).count() == 0
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


BOX = "e => { const r = e.getBoundingClientRect(); return {left: r.left, top: r.top, right: r.right, bottom: r.bottom}; }"
SI_TICK = r"^[-−]?\d+(\.\d+)?\s?[fpnµμmkMG]$"  # '1f', '20µ', '5n': Plotly's SI prefixes, never '1e-15'


def _plot(page, title: str):
    """The Plotly chart whose title contains `title` (titles wrap onto lines: their text joins them)."""
    return page.locator(".js-plotly-plot", has=page.locator(".gtitle", has_text=title))


def _inside(inner: dict, outer: dict, tol: float = 1.0) -> bool:
    return (inner["left"] >= outer["left"] - tol and inner["right"] <= outer["right"] + tol
            and inner["top"] >= outer["top"] - tol and inner["bottom"] <= outer["bottom"] + tol)


def _charts_read_whole(page, titles: tuple[str, ...]) -> list[str]:
    """Every drawn chart's title lies inside its plot and no tick label uses an SI prefix; the charts named by
    `titles` are among them. Returns the titles seen."""
    import re

    seen = []
    for plot in page.locator(".js-plotly-plot").all():
        info = plot.evaluate("""e => { const b = x => { const r = x.getBoundingClientRect();
                                     return {left: r.left, top: r.top, right: r.right, bottom: r.bottom}; };
                                 const t = e.querySelector('.gtitle');
                                 return {plot: b(e), title: t ? t.textContent : '', tbox: t ? b(t) : null,
                                         ticks: [...e.querySelectorAll('.xtick text, .ytick text')]
                                                .map(x => x.textContent)}; }""")
        if info["tbox"] is not None:
            assert _inside(info["tbox"], info["plot"]), info  # a long title wraps: never cut at the plot's edge
        assert not [t for t in info["ticks"] if re.match(SI_TICK, t.strip())], info
        seen.append(info["title"])
    for title in titles:
        assert any(title in s for s in seen), (title, seen)
    return seen


def _hover_stays_inside(page, plot, marks) -> None:
    """Hover the first and the last of `marks` (bars or points of `plot`): the tooltip lies inside the chart."""
    page.mouse.move(0, 0)
    for mark in (marks.first, marks.last):
        mark.scroll_into_view_if_needed()
        bb = mark.bounding_box()
        page.mouse.move(bb["x"] + bb["width"] / 2, bb["y"] + max(bb["height"] - 3, 1) if bb["height"] > 6
                        else bb["y"] + bb["height"] / 2)
        tip = plot.locator(".hoverlayer .hovertext").first
        tip.wait_for(timeout=20_000)
        box, inside = plot.locator(".hoverlayer").evaluate(BOX), plot.evaluate(BOX)
        assert box["left"] >= inside["left"] and box["right"] <= inside["right"], (box, inside, tip.text_content())
    page.mouse.move(0, 0)


def _deltas(page) -> dict[str, tuple[str, str]]:
    """{card label: (delta text, delta colour)} of the metric cards that show a delta."""
    return {m.get_by_test_id("stMetricLabel").inner_text().strip(): (
        m.get_by_test_id("stMetricDelta").inner_text().strip(),
        m.get_by_test_id("stMetricDelta").evaluate("e => getComputedStyle(e).color"))
        for m in page.get_by_test_id("stMetric").all() if m.get_by_test_id("stMetricDelta").count()}


def _rgb(colour: str) -> tuple[int, ...]:
    import re

    return tuple(int(v) for v in re.findall(r"\d+", colour)[:3])


def _download(page, button: str):
    import pandas as pd

    with page.expect_download(timeout=120_000) as d:
        click(page, page.get_by_role("button", name=button, exact=True))
    return pd.read_csv(d.value.path(), keep_default_na=False, na_values=[""])


def test_item8_views_and_two_run_selection(server):
    """Issue 16 item 8 and item 1 in Chromium at 1440x900, on three tiny stored runs (magnitude 0% and 50%,
    wanda 70%): the Prune button above the fold; Experiments lists own runs above the demo runs, its CSVs
    follow the filter with ISO times, and two ticked rows open Run vs run; the Prune views' titles (mask,
    histogram) and tooltips stay inside their charts, no SI-prefixed ticks, no arrow on a delta that rounds to
    zero; Compare's held-out chart, and two clicked points open Run vs run."""
    import datetime as dt
    import re

    pw = pytest.importorskip("playwright.sync_api")
    import torch

    from dashboard import charts
    from pruning_core.experiments.config import ExperimentConfig
    from pruning_core.experiments.experiment import run_experiment
    from pruning_core.storage.store import Store
    from v16_runs import tiny_pair

    store = Store(DB["path"])
    mag50, wanda70 = tiny_pair(store)  # 8 calibration texts x 32 tokens, 48 test examples, seed 1
    zero = ExperimentConfig.create(model="default", task="rotten_tomatoes", method="magnitude", sparsity=0.0,
                                   calib_size=8, seq_len=32, eval_size=48, seed=1)
    if not store.has(zero.key()):  # nothing pruned: accuracy and held-out deltas are exactly 0
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            res = run_experiment(zero)
        finally:
            torch.set_num_threads(before)
        store.save(res.to_json(), res.prune.masks)
    mag0 = zero.key()
    ours = {mag0, mag50, wanda70}
    shots = Path(os.environ.get("PRUNESCOPE_SHOTS", str(SHOTS)))
    shots.mkdir(parents=True, exist_ok=True)
    with pw.sync_playwright() as p:
        browser = _launch(p)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.set_default_timeout(120_000)
        page.goto(server)
        main = page.get_by_test_id("stMainBlockContainer")
        action = re.compile(r"^(Prune|Stored - open)$")  # the default config may be a stored (demo) run
        main.get_by_role("button", name=action).first.wait_for(timeout=60_000)
        settle(page)
        button = main.get_by_role("button", name=action)
        pw.expect(button).to_have_count(1)
        box = button.bounding_box()
        assert button.is_visible() and box["y"] >= 0 and box["y"] + box["height"] <= 900, box  # above the fold
        page.screenshot(path=str(shots / "item8_prune_button.png"))

        # Experiments: own runs first, demo rows marked, ISO times; the filter narrows both CSVs
        page.get_by_test_id("stSidebarNav").get_by_text("Experiments").click()
        grid = page.get_by_test_id("stDataFrame")
        grid.wait_for(timeout=60_000)
        settle(page)
        table = _download(page, "Download table (CSV)")
        assert list(table["demo"]) == sorted(table["demo"]) and table["demo"].any()  # every own run above the demo
        own = table[~table["demo"]]
        assert ours <= set(own["key"])
        assert all(dt.datetime.fromisoformat(t) for t in own["created"])  # the run's own time, ISO, no epoch
        assert table[table["demo"]]["created"].isna().all()
        click(page, page.get_by_role("combobox", name="Method"))
        page.get_by_role("option", name="magnitude", exact=True).click()
        settle(page)
        table = _download(page, "Download table (CSV)")
        results = _download(page, "Results (CSV)")
        assert set(table["method"]) == set(results["method"]) == {"magnitude"}
        assert list(results["key"]) == list(table["key"]) and {mag0, mag50} <= set(table["key"])
        assert list(table["demo"]) == sorted(table["demo"])
        assert all(dt.datetime.fromisoformat(t) for t in results[~results["demo"]]["created"])
        page.get_by_text(f"{len(table)} runs (the table above, filters applied)").wait_for(timeout=30_000)
        # tick the first two rows (the row-marker column at the grid's left edge; 35 px header and rows)
        grid.evaluate("e => e.scrollIntoView({block: 'center'})")
        for i in (0, 1):
            box = grid.bounding_box()
            page.mouse.click(box["x"] + 16, box["y"] + 35 + 35 * i + 17)
            settle(page)
        compare = page.get_by_role("button", name="Compare these two")
        pw.expect(compare).to_be_enabled(timeout=60_000)
        page.screenshot(path=str(shots / "item1_experiments_two_rows.png"))
        click(page, compare)
        page.get_by_text("Mask difference of one module").wait_for(timeout=120_000)
        settle(page)
        picked = [page.get_by_role("combobox", name=n).input_value() for n in ("Run A", "Run B (same model)")]
        assert [s.rsplit(" · ", 1)[-1] for s in picked] == list(table["key"][:2]), (picked, list(table["key"][:2]))
        page.screenshot(path=str(shots / "item1_run_vs_run_from_experiments.png"))
        assert page.get_by_test_id("stException").count() == 0

        # the Prune views of magnitude 50%: titles and tooltips inside their charts, no SI ticks, honest deltas
        page.get_by_test_id("stSidebarNav").get_by_text("Experiments").click()
        page.get_by_test_id("stDataFrame").wait_for(timeout=60_000)
        pick = page.get_by_role("combobox", name="Run")
        click(page, pick)
        pick.press_sequentially(mag50)
        page.get_by_role("option", name=re.compile(mag50)).click()
        click(page, page.get_by_role("button", name="Open in Prune views"))
        page.get_by_text("Held-out error").wait_for(timeout=120_000)
        page.locator(".js-plotly-plot .gtitle", has_text="zeros after").wait_for(timeout=120_000)
        settle(page)
        page.wait_for_timeout(1000)
        titles = _charts_read_whole(page, ("Keep-mask of", "zeros after", "Local reconstruction error",
                                           "Cumulative error across depth"))
        assert any("Keep-mask of" in t and "kept" in t for t in titles)
        for m in page.get_by_test_id("stMetric").all():  # no card cut: label, value and delta shown whole
            for part in ("stMetricLabel", "stMetricValue", "stMetricDelta"):
                for el in m.get_by_test_id(part).all():
                    assert el.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), el.inner_text()
        local = _plot(page, "Local reconstruction error")
        _hover_stays_inside(page, local, local.locator(".barlayer .point path"))
        deltas = _deltas(page)
        for label, (text, colour) in deltas.items():
            assert float(re.match(r"[-+−]?[\d.]+", text.replace("−", "-")).group()) != 0, (label, text)
        run = store.load(mag50)
        lost = run["accuracy"] < run["dense_accuracy"]
        r, g, _ = _rgb(deltas["Pruned accuracy"][1])
        assert (r > g) == lost  # an accuracy drop in red, a gain in green
        held, calib = charts.run_heldout_error(run), run["blocks"][-1]["cumulative_error"]
        r, g, _ = _rgb(deltas["Held-out error"][1])
        assert (r > g) == (held > calib)  # inverse: a higher held-out error is the bad (red) direction
        page.get_by_text("Held-out error").first.scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "item8_views_cards.png"))
        page.locator(".js-plotly-plot .gtitle", has_text="zeros after").scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "item8_views_masks.png"))

        # magnitude 0%: the same settings but sparsity 0 (the sidebar follows the opened run): deltas of 0
        slider = page.get_by_test_id("stSidebar").get_by_role("slider")
        slider.focus()
        slider.press("Home")
        settle(page)
        click(page, main.get_by_role("button", name="Stored - open"))
        page.get_by_text("magnitude · unstructured · 0% on").wait_for(timeout=120_000)
        settle(page)
        cards = {m.get_by_test_id("stMetricLabel").inner_text().strip(): m for m in page.get_by_test_id("stMetric").all()}
        run = store.load(mag0)
        assert f"{run['accuracy'] - run['dense_accuracy']:+.3f}" in ("+0.000", "-0.000")
        assert cards["Pruned accuracy"].get_by_test_id("stMetricDelta").count() == 0  # no arrow on '+0.000'
        assert cards["Held-out error"].get_by_test_id("stMetricDelta").count() == 0
        page.mouse.move(0, 0)
        page.screenshot(path=str(shots / "item8_zero_deltas.png"))
        assert page.get_by_test_id("stException").count() == 0

        # Compare on the tiny runs' settings: the held-out chart; two clicked points open Run vs run
        page.get_by_test_id("stSidebarNav").get_by_text("Compare", exact=True).click()
        page.get_by_text("runs in the grid").wait_for(timeout=60_000)
        settle(page)
        for label, value in (("Calibration examples", "8"), ("Calibration sequence length", "32"),
                             ("Evaluation examples", "48"), ("Seeds", "1")):
            box = page.get_by_test_id("stSidebar").get_by_label(label, exact=True)
            box.fill(value)
            box.press("Enter")
            settle(page)
        _plot(page, "held-out error at the last block").wait_for(timeout=120_000)
        settle(page)
        page.wait_for_timeout(1000)
        _charts_read_whole(page, ("Accuracy vs sparsity", "Cumulative error at the last block",
                                  "Mean local reconstruction error", "held-out error at the last block"))
        acc = _plot(page, "Accuracy vs sparsity")
        points = acc.locator(".scatterlayer .trace .points path.point")
        pw.expect(points).to_have_count(2)  # magnitude 50% and wanda 70%
        _hover_stays_inside(page, acc, points)
        bb = points.nth(0).bounding_box()  # click one point: the page asks for a second
        page.mouse.click(bb["x"] + bb["width"] / 2, bb["y"] + bb["height"] / 2)
        page.get_by_text("1 point selected: shift-click a second one").wait_for(timeout=60_000)
        settle(page)
        compare = page.get_by_role("button", name="Compare these two")
        for _ in range(3):  # shift-click the other: the button (a click while Plotly redraws is lost: again)
            page.wait_for_timeout(500)
            bb = points.nth(1).bounding_box()
            page.keyboard.down("Shift")
            page.mouse.click(bb["x"] + bb["width"] / 2, bb["y"] + bb["height"] / 2)
            page.keyboard.up("Shift")
            try:
                compare.wait_for(timeout=20_000)
                break
            except pw.Error:
                settle(page)
                assert page.get_by_text("1 point selected").count() == 1
        settle(page)
        assert page.get_by_text("shift-click a second one").count() == 0  # two picked: no 'pick a second'
        page.screenshot(path=str(shots / "item1_compare_two_points.png"))
        click(page, compare)
        page.get_by_text("Mask difference of one module").wait_for(timeout=120_000)
        settle(page)
        picked = [page.get_by_role("combobox", name=n).input_value().rsplit(" · ", 1)[-1]
                  for n in ("Run A", "Run B (same model)")]
        assert picked == [mag50, wanda70], picked
        page.screenshot(path=str(shots / "item1_run_vs_run_from_compare.png"))
        assert page.get_by_test_id("stException").count() == 0
        browser.close()
