"""The sweep report page as a reader sees it: a real smoke sweep, ``wasmlab report`` on it, and the page opened in
headless Chromium (Debian's /usr/bin/chromium) at 1280 px wide.  Run with ``make test-browser``."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_browser import CHROMIUM, CHROMIUM_FLAGS, ROOT, _require_browser
from wasmlab import sweep

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 1280, 800


@pytest.fixture(scope="module")
def report_page(tmp_path_factory) -> Path:
    """report.html of a real smoke sweep: the seed notebook at two pool sizes, both call paths, two repetitions
    (so that every figure has an interval), through the real ``wasmlab report``."""
    _require_browser()
    out = tmp_path_factory.mktemp("report") / "smoke-report"
    spec = next(s for s in sweep.load_specs(ROOT / "notebooks" / "sweeps" / "smoke.yaml", out.parent) if s.name == "smoke-01")
    spec = dataclasses.replace(spec, out=out, parameters={**spec.parameters, "repeats": 2, "call_path": "native,lean",
                                                          "phases": False})
    outcome = sweep.run_sweep(spec, resume=False)
    assert not outcome.failed, outcome.failed
    # The report's kernel imports wasmlab from this checkout, whichever checkout the environment has installed.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))}
    done = subprocess.run([sys.executable, "-m", "wasmlab.cli", "report", str(out)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr
    page = Path(done.stdout.strip().splitlines()[-1].removeprefix("Report: "))
    assert page.is_file()
    return page


def _overflow(page) -> dict[str, int]:
    return page.evaluate("() => ({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})")


def test_the_report_fits_1280_px_and_shows_its_headline_without_scrolling(report_page, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
            page.goto(report_page.as_uri())
            widths = _overflow(page)
            assert widths["scroll"] <= widths["inner"], f"the page is wider than the window: {widths}"

            headline = page.locator("#headline")
            assert headline.is_visible()
            box = headline.bounding_box()
            assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= HEIGHT, box
            text = headline.inner_text()
            assert "59x" in text and "faster than baseline" in text and "95% interval" in text, text

            # The folded measurement details, opened, still fit: long facts wrap, the per-point table scrolls in its box.
            page.locator("#measured + details > summary").click()
            assert page.locator("#measured + details dl").is_visible()
            widths = _overflow(page)
            assert widths["scroll"] <= widths["inner"], f"the opened details are wider than the window: {widths}"
            assert page.locator("img").count() >= 1 and page.evaluate(
                "() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")

            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            print(f"screenshot: {shot}")
        finally:
            browser.close()
