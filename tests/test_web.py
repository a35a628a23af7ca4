"""The web page end to end: `crystalclip serve` in a subprocess, the system Chromium headless via Playwright.

Type a query, see results, click one, see the 3D viewer's canvas, take a screenshot; classify an upload;
the page says so when 3Dmol.js was not installed."""
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .test_server import build_index

CHROMIUM = "/usr/bin/chromium"
VENDOR = Path(__file__).resolve().parents[1] / "src" / "crystalclip" / "server" / "static" / "vendor" / "3Dmol-min.js"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--enable-unsafe-swiftshader"]  # software WebGL: there is no GPU

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"{CHROMIUM} is missing (apt-get install chromium chromium-driver; .ci/run does)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("web")
    index_dir, _ = build_index(root, n=8)
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    log = open(root / "server.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "crystalclip.cli", "serve", "--index", str(index_dir),
                                "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            if process.poll() is not None:
                pytest.fail(f"the server exited: {(root / 'server.log').read_text()}")
            try:
                urllib.request.urlopen(f"{url}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.25)
        else:
            pytest.fail(f"the server did not start in 60 s: {(root / 'server.log').read_text()}")
        yield {"url": url, "root": root}
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(30_000)
        yield page
        browser.close()


def test_search_click_view_screenshot(server, page, tmp_path):
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server["url"])
    page.wait_for_selector("#status:has-text('8 structures indexed')")
    page.fill("#query", "a cubic perovskite oxide")
    page.click("#search-form button[type=submit]")
    page.wait_for_selector("#results .result")
    results = page.locator("#results .result")
    assert results.count() == 8
    first = results.first.inner_text()
    assert "score" in first and "space group" in first and results.first.locator(".text").inner_text()
    results.nth(1).click()
    if VENDOR.is_file():
        page.wait_for_selector("#viewer canvas")
        page.wait_for_selector("#viewer-message:has-text('drag to rotate')")
        box = page.locator("#viewer canvas").first.bounding_box()
        assert box["width"] > 100 and box["height"] > 100
    else:  # without 3Dmol.js the page says so in place of the viewer
        page.wait_for_selector("#viewer-message.error:has-text('3Dmol.js is not installed')")
    shot = tmp_path / "search.png"
    page.screenshot(path=str(shot), full_page=True)
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5_000
    assert errors == []


def test_missing_viewer_library_is_said_on_the_page(server, page):
    page.route("**/static/vendor/3Dmol-min.js", lambda route: route.fulfill(status=404, body="missing"))
    page.goto(server["url"])
    page.wait_for_selector("#viewer-message.error:has-text('3Dmol.js is not installed')")
    page.unroute("**/static/vendor/3Dmol-min.js")


def test_classify_upload_and_errors(server, page):
    cif = next((server["root"] / "cifs").glob("mp-*.cif"))
    page.goto(server["url"])
    page.set_input_files("#cif-file", str(cif))
    page.fill("#labels", "superconductor, insulator")
    page.click("#classify-form button[type=submit]")
    page.wait_for_selector("#classify-results table")
    assert page.locator("#classify-results th").all_inner_texts() == ["structure", "superconductor", "insulator"]
    assert page.locator("#classify-results td").first.inner_text() == cif.stem
    page.set_input_files("#cif-file", {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello\n"})
    page.click("#classify-form button[type=submit]")
    page.wait_for_selector("#classify-message.error:has-text('not a usable CIF')")
    page.fill("#query", "oxide")
    page.click("#search-form summary")
    page.fill("#elements", "Xx")
    page.click("#search-form button[type=submit]")
    page.wait_for_selector("#search-message.error:has-text('unknown element')")
