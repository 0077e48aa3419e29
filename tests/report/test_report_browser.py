"""The HTML report as a person sees it: a smoke run's `snakemake --report` opened in headless Chromium
(Debian's, through Playwright), clicked through, screenshotted. The summary must show as a table, the
exercises' plots must load, and the page must raise no console or page errors.

Screenshots land in the test's tmp dir and in results/report-screenshots/ of the project copy (paths printed
with `pytest -s`)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from torchkata.pipeline.catalog import load_catalog
from torchkata.pipeline.projects import snakemake

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
# Debian's chromium, not a Playwright download; the background-networking flags keep it from calling out
# (a closed network refuses those connections, which would only add noise).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
EXERCISES = ["a01", "a41"]
VIEWPORT = {"width": 1400, "height": 900}


def _requirements():
    """Skip, saying how to get it, when the browser or its driver is missing (before any slow run)."""
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: `apt-get install -y --no-install-recommends chromium` "
                    "(Debian's package; the test does not use a Playwright-downloaded browser)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("Playwright for Python is not installed: `pip install -r envs/requirements-cpu.txt` "
                    "(pins it; no `playwright install` needed, the test drives /usr/bin/chromium)")


@pytest.fixture(scope="module")
def project(smoke_project):
    """The shared smoke run of a01 and a41 (tests/conftest.py), and its report."""
    _requirements()
    project, config = smoke_project
    report = snakemake(project, "--report", "results/report.html", "--configfile", str(config))
    assert report.returncode == 0, report.output[-3000:]
    assert (project / "results" / "report.html").is_file()
    return project


class Browser:
    """One page of the report in a fresh Chromium profile; records every console error, page error and failed
    request, and saves named screenshots in two places."""

    def __init__(self, playwright, project: Path, tmp_path: Path):
        self.errors: list[str] = []
        self.shots = [tmp_path / "screenshots", project / "results" / "report-screenshots"]
        self.context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
            viewport=VIEWPORT)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text}"))
        self.page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        self.page.on("requestfailed", lambda r: self.errors.append(f"failed request: {r.url[:120]} {r.failure}"))
        self.page.goto((project / "results" / "report.html").as_uri())
        self.nav = self.page.get_by_role("navigation").first  # the side bar; the second is its breadcrumbs

    def home(self):
        self.nav.locator("ol > li a").first.click()  # the house at the start of the breadcrumbs

    def open_result(self, category: str, cells: list[str], subcategory: str | None = None):
        """Click through the side bar to a result (its row has these cells) and press its eye button."""
        self.home()
        self.nav.get_by_role("link", name=category, exact=True).click()
        if subcategory and self.nav.get_by_role("link", name=subcategory, exact=True).count():
            self.nav.get_by_role("link", name=subcategory, exact=True).click()  # a topic with several exercises
        row = self.nav.locator("tr")
        for cell in cells:
            row = row.filter(has=self.page.get_by_role("cell", name=cell, exact=True))
        row.locator("a").first.click()

    def screenshot(self, name: str) -> Path:
        path = self.shots[0] / name
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path))
        self.shots[1].mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, self.shots[1] / name)
        print(f"screenshot: {path} (and {self.shots[1] / name})")
        return path


@pytest.fixture
def browser(project, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = Browser(playwright, project, tmp_path)
        yield browser
        browser.context.close()


def not_blank(png: Path, box: dict | None = None) -> tuple[float, int]:
    """(standard deviation of the pixel values, number of distinct colours) of a screenshot or a box of it."""
    import matplotlib.image
    import numpy as np

    pixels = matplotlib.image.imread(png)[..., :3]
    if box:
        x, y = int(box["x"]), int(box["y"])
        pixels = pixels[y:y + int(box["height"]), x:x + int(box["width"])]
    colours = np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    return float(pixels.std()), len(colours)


def test_summary_table_is_rendered(browser):
    from playwright.sync_api import expect

    page = browser.page
    expect(browser.nav.get_by_role("link", name="Summary", exact=True)).to_be_visible()
    std, colours = not_blank(browser.screenshot("01-opened.png"))
    assert std > 0.02 and colours > 20, f"the opened report looks blank: std {std:.3f}, {colours} colours"
    browser.open_result("Summary", ["table"])
    frame = page.frame_locator("iframe")  # an HTML result is shown inline, in a frame
    table = frame.locator("table.runs")
    expect(table).to_be_visible()
    reference = frame.get_by_role("cell", name="reference", exact=True)  # a learner's row may sit beside it
    a01 = table.get_by_role("row").filter(has=frame.get_by_role("cell", name="a01", exact=True)).filter(has=reference)
    expect(a01).to_be_visible()
    expect(a01).to_contain_text("Softmax by hand")
    expect(a01.get_by_role("cell", name="ran", exact=True)).to_be_visible()
    a41 = table.get_by_role("row").filter(has=frame.get_by_role("cell", name="a41", exact=True)).filter(has=reference)
    expect(a41.get_by_role("cell", name="ran", exact=True)).to_be_visible()
    planned = next(e.id for e in load_catalog().exercises.values() if not e.done)
    expect(frame.locator("table.planned")).to_contain_text(planned)
    shot = browser.screenshot("02-summary-table.png")
    box = page.locator("iframe").bounding_box()
    std, colours = not_blank(shot, box)
    assert std > 0.02 and colours > 20, f"the summary frame looks blank: std {std:.3f}, {colours} colours"
    assert browser.errors == []


def loaded_image(browser, name: str):
    """The image in the content area, once it has decoded; its screenshot."""
    from playwright.sync_api import expect

    img = browser.page.locator("img[src^='data:image/png']")
    expect(img).to_be_visible()
    browser.page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())
    width, height = img.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert width > 100 and height > 100, (width, height)
    shot = browser.screenshot(name)
    std, colours = not_blank(shot, img.bounding_box())
    assert std > 0.02 and colours > 20, f"{name}: the plot looks blank: std {std:.3f}, {colours} colours"


def test_plots_are_rendered(browser):
    browser.open_result("Summary", ["status, bench ratios, wall times"])
    loaded_image(browser, "03-summary-plot.png")
    browser.open_result("tensors", ["a01", "error_vs_logit_scale", "reference-smoke/runs/seed-0"], subcategory="a01")
    loaded_image(browser, "04-a01-plot.png")
    for exercise in EXERCISES:  # every exercise of the slice has at least its variance plot
        browser.open_result("Variance across seeds", [exercise])
        loaded_image(browser, f"05-{exercise}-variance.png")
    full = not_blank(browser.shots[0] / "04-a01-plot.png")
    assert full[1] > 50, f"the page looks blank: {full}"
    assert browser.errors == []
