"""00_explore.ipynb in a real JupyterLab, driven in headless Chromium (Debian's /usr/bin/chromium).

Run with ``make test-browser`` (it installs chromium through apt if needed).  Under
``WASMLAB_REQUIRE_BROWSER=1`` (what that target sets) a missing browser fails the test
instead of skipping it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "artifacts" / "browser"


def _require_browser() -> None:
    missing = not Path(CHROMIUM).exists()
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing = True
    if missing:
        if os.environ.get("WASMLAB_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{CHROMIUM} or Playwright for Python is missing: run `make test-browser`, which installs them")
        pytest.skip("needs Debian's chromium and Playwright: run `make test-browser`")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _api(port: int, token: str, path: str, method: str = "GET") -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return int(response.status)


@pytest.fixture()
def jupyterlab(tmp_path):
    """A JupyterLab server on a free localhost port with a generated token; stopped whatever happens."""
    _require_browser()
    port, token = _free_port(), secrets.token_hex(16)
    settings = tmp_path / "lab-settings"
    notification = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    # No news or update checks: their toast would cover the screenshot.
    notification.write_text(json.dumps({"checkForUpdates": False, "fetchNews": "false"}))
    env = {
        **os.environ,
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "MPLCONFIGDIR": str(tmp_path / "mpl"),
    }
    # The notebook's runs write results; keep them out of the checkout.
    notebooks = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", notebooks)
    log = open(tmp_path / "jupyterlab.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={notebooks}"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if _api(port, token, "/api/status") == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("JupyterLab did not start:\n" + (tmp_path / "jupyterlab.log").read_text()[-3000:])
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}", token
    finally:
        try:
            _api(port, token, "/api/shutdown", method="POST")
            server.wait(timeout=15)
        except (OSError, subprocess.TimeoutExpired):
            server.kill()
            server.wait(timeout=10)
        log.close()


def _labelled(page, kind: str, label: str):
    """The input or select of the ipywidget whose description is ``label``."""
    return page.locator(f".widget-inline-hbox:has(> label:text-is('{label}')) {kind}").first


def test_explore_notebook_runs_in_a_real_browser(jupyterlab):
    from playwright.sync_api import expect, sync_playwright

    url, token = jupyterlab
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2200})
            page.goto(f"{url}/lab/tree/00_explore.ipynb?token={token}")
            page.locator(".jp-Notebook").first.wait_for(timeout=60_000)
            # The toolbar says idle before the kernel has started: wait for the status bar instead.
            expect(page.locator(".jp-StatusBar-TextItem", has_text="| Idle").first).to_be_visible(timeout=60_000)

            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
            page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
            run_button = page.locator(".jp-OutputArea button.jupyter-button", has_text=re.compile(r"^\s*Run\s*$"))
            expect(run_button).to_be_visible(timeout=60_000)

            requests = _labelled(page, "input", "requests")
            requests.fill("100")
            requests.press("Enter")
            _labelled(page, "select", "variant").select_option("pooled+cached")
            run_button.click()

            figure = page.locator(".wasmlab-figure img")
            expect(figure).to_be_visible(timeout=120_000)
            table = page.locator(".wasmlab-table")
            expect(table).to_contain_text(re.compile(r"\d+\.\dx"))
            expect(table).to_contain_text("pooled+cached")
            expect(page.locator(".wasmlab-metadata")).to_contain_text("wasmtime 50.")
            assert figure.evaluate("img => img.naturalWidth") > 200
            assert page.locator('[data-mime-type="application/vnd.jupyter.stderr"]').count() == 0
            assert page.locator(".jp-Cell-inputWrapper .jp-InputPrompt", has_text="*").count() == 0
            page.screenshot(path=str(SCREENSHOTS / "00_explore.png"), full_page=True)

            # A bad knob: one line under the controls, and the earlier figure and table stay.
            slots = _labelled(page, "input", "pool slots")
            slots.fill("-3")
            slots.press("Enter")
            run_button.click()
            expect(page.locator(".wasmlab-error")).to_contain_text("wasmlab: error: pool.slots = -3 is out of range", timeout=30_000)
            expect(figure).to_be_visible()
            expect(table).to_contain_text(re.compile(r"\d+\.\dx"))
            page.screenshot(path=str(SCREENSHOTS / "00_explore_bad_knob.png"), full_page=True)
        finally:
            browser.close()
