"""The web page end to end: `crystalclip serve` (the packaged corpus) in a subprocess, the system Chromium
headless via Playwright.

Search, the filters (elements, space group, source), a result's details panel (space group, lattice, source
link or reference, paired texts), its CIF and OPTIMADE downloads, the 3D view's legend and 2x2x2 supercell,
"more like this", the page's URL state, the zero-shot box, the page without 3Dmol.js; a full-page screenshot.
Nothing here depends on which structures the corpus holds or how many: only on how the page behaves.

CRYSTALCLIP_WEB_SCREENSHOT=docs/web_page.png also copies the screenshot there."""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
VENDOR = Path(__file__).resolve().parents[1] / "src" / "crystalclip" / "server" / "static" / "vendor" / "3Dmol-min.js"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--enable-unsafe-swiftshader"]  # software WebGL: there is no GPU
LIST_DONE = ("() => !document.querySelector('#results').hasAttribute('aria-busy')"
             " && document.querySelector('#search-message').textContent !== 'searching…'")
ATOMS = "() => window.crystalclipViewer.getModel().selectedAtoms({}).length"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"{CHROMIUM} is missing (apt-get install chromium chromium-driver; .ci/run does)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str):
    with urllib.request.urlopen(url, timeout=30) as response:
        body = response.read().decode()
        return json.loads(body) if "json" in response.headers.get("content-type", "") else body


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("web")
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    url = f"http://127.0.0.1:{port}"
    with open(root / "server.log", "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "crystalclip.cli", "serve", "--port", str(port)],
                                   stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            for _ in range(720):
                if process.poll() is not None:
                    pytest.fail(f"the server exited: {(root / 'server.log').read_text()}")
                try:
                    health = _get(f"{url}/health")
                    break
                except OSError:
                    time.sleep(0.25)
            else:
                pytest.fail(f"the server did not start in 180 s: {(root / 'server.log').read_text()}")
            assert health["structures"] > 0 and health["sources"]
            yield {"url": url, "root": root, "health": health}
        finally:
            process.terminate()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser_page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(30_000)
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        yield page, errors
        browser.close()


@pytest.fixture
def page(browser_page):
    """The one page; no JavaScript error may happen during a test."""
    page, errors = browser_page
    errors.clear()
    yield page
    assert errors == []


def _api_error(server, path: str) -> str:
    """The "detail" of the API's 400 answer to a GET."""
    with pytest.raises(urllib.error.HTTPError) as caught:
        _get(server["url"] + path)
    assert caught.value.code == 400
    return json.loads(caught.value.read().decode())["detail"]


def _search(page, query: str, **filters) -> list[dict]:
    """Type a query (and filters: element id -> value), press Search; the results' ids and sources."""
    page.fill("#query", query)
    for element_id, value in filters.items():
        if page.locator(f"#{element_id}").evaluate("e => e.tagName") == "SELECT":
            page.select_option(f"#{element_id}", value)
        else:
            page.fill(f"#{element_id}", value)
    page.click("#search-form button[type=submit]")
    page.wait_for_function(LIST_DONE)
    return page.locator("#results .result").evaluate_all(
        "items => items.map(li => ({id: li.dataset.id, source: li.dataset.source}))")


def _clear_filters(page):
    page.click("#clear-filters")
    page.fill("#k", "10")


def _open_page(page, server, query=""):
    page.goto(server["url"] + query)
    page.wait_for_selector("#status:has-text('structures indexed')")


def test_search_details_viewer_more_like_this_screenshot(server, page, tmp_path):
    _open_page(page, server)
    count = int(re.sub(r"\D", "", page.inner_text("#status").split("structures")[0]))
    assert count == server["health"]["structures"] > 0
    options = page.locator("#source option")
    assert options.first.get_attribute("value") == "" and options.first.inner_text() == "any"
    assert set(options.evaluate_all("os => os.map(o => o.value)")[1:]) == set(server["health"]["sources"])

    found = _search(page, "a cubic perovskite oxide", elements="Ti,O")
    assert 0 < len(found) <= 10
    first = page.locator("#results .result").first
    assert first.locator(".formula").inner_text() and first.locator(".text").inner_text()
    assert first.locator(".meta .source").inner_text() and first.locator(".meta .score").inner_text()
    assert "Ti" in first.locator(".formula").inner_text()
    assert page.locator("#search-message").inner_text().startswith(f"{len(found)} result")

    structure_id = found[0]["id"]
    first.click()
    page.wait_for_selector(f"#view-title:has-text('{structure_id}')")
    page.wait_for_selector("#properties", state="visible")
    assert "id=" + urllib.parse.quote(structure_id, safe="") in page.url
    details = _get(f"{server['url']}/api/details/{urllib.parse.quote(structure_id, safe='')}")
    sg = page.locator("#properties-table tr[data-field=spacegroup] .spacegroup")
    assert sg.get_attribute("data-symbol") == details["spacegroup_symbol"] and details["spacegroup_symbol"]
    assert f"({details['spacegroup_number']})" in sg.inner_text()
    lattice = page.inner_text("#properties-table tr[data-field=lattice]")
    assert f"{details['lattice']['a']:.4f} Å" in lattice and f"c = {details['lattice']['c']:.4f}" in lattice
    assert "°" in page.inner_text("#properties-table tr[data-field=angles]")
    assert f"{details['density']:.3f} g/cm³" in page.inner_text("#properties-table tr[data-field=density]")
    assert str(details["nsites"]) in page.inner_text("#properties-table tr[data-field=nsites]")
    assert details["link"] or details["reference"]
    link = page.locator("#source-link")
    if details["link"]:
        assert link.is_visible() and link.get_attribute("href") == details["link"]
        assert link.get_attribute("target") == "_blank" and "noopener" in link.get_attribute("rel")
    if details["reference"]:
        assert page.inner_text("#reference") == details["reference"]
    assert page.locator("#texts li").count() == len(details["texts"])

    cif_link = page.locator("#download-cif")
    assert cif_link.get_attribute("download").endswith(".cif")
    cif = page.request.get(server["url"] + cif_link.get_attribute("href"))
    assert cif.status == 200 and "_cell_length_a" in cif.text() and "_atom_site_fract_x" in cif.text()
    optimade = page.request.get(server["url"] + page.get_attribute("#optimade-link", "href"))
    assert optimade.status == 200 and optimade.json()["data"]["type"] == "structures"
    assert optimade.json()["data"]["id"] == structure_id

    legend = page.locator("#legend .legend-item")
    assert legend.count() == page.locator("#legend .swatch").count() == len(details["elements"])
    assert set(legend.evaluate_all("items => items.map(i => i.dataset.element)")) == set(details["elements"])
    if VENDOR.is_file():
        page.wait_for_selector("#viewer canvas")
        page.wait_for_selector("#viewer-message:has-text('drag to rotate')")
        colours = page.evaluate("""symbols => symbols.map(s => {
            const jmol = $3Dmol.elementColors.Jmol;
            const c = jmol[s] ?? jmol[s.toUpperCase()] ?? $3Dmol.elementColors.defaultColor;
            return `rgb(${c >> 16}, ${(c >> 8) & 255}, ${c & 255})`; })""", details["elements"])
        assert page.locator("#legend .swatch").evaluate_all(
            "ss => ss.map(s => getComputedStyle(s).backgroundColor)") == colours
        page.uncheck("#edges")
        page.wait_for_selector("#viewer-message:has-text('in the unit cell')")
        cell = page.evaluate(ATOMS)
        assert cell > 0
        page.check("#supercell")
        page.wait_for_selector("#viewer-message:has-text('2×2×2')")
        assert page.evaluate(ATOMS) == 8 * cell
        box = page.locator("#viewer canvas").first.bounding_box()
        assert box["width"] > 100 and box["height"] > 100
        page.uncheck("#supercell")
        page.check("#edges")
        page.wait_for_selector("#viewer-message:has-text('in the unit cell')")
        assert page.evaluate(ATOMS) >= cell
    else:  # without 3Dmol.js the page says so in place of the viewer
        page.wait_for_selector("#viewer-message.error:has-text('3Dmol.js is not installed')")

    shot = tmp_path / "web_page.png"
    page.screenshot(path=str(shot), full_page=True)
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5_000
    if os.environ.get("CRYSTALCLIP_WEB_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["CRYSTALCLIP_WEB_SCREENSHOT"])

    page.click("#more-like-this")
    page.wait_for_function(LIST_DONE)
    page.wait_for_selector(f"#search-message:has-text('like {structure_id}')")
    similar = page.locator("#results .result").evaluate_all("items => items.map(li => li.dataset.id)")
    assert similar and structure_id not in similar
    assert "like=" in page.url
    _clear_filters(page)


def test_source_filter(server, page):
    _open_page(page, server)
    for source in list(server["health"]["sources"])[:3]:
        found = _search(page, "a mineral with a layered structure", source=source)
        assert found and {r["source"] for r in found} == {source}
        assert "from " in page.inner_text("#search-message")
    page.select_option("#source", "")
    assert len({r["source"] for r in _search(page, "an oxide", k="30")}) >= 1
    _clear_filters(page)


def test_filter_errors_and_periodic_table(server, page):
    _open_page(page, server)
    _search(page, "oxide", elements="Xx")
    page.wait_for_selector("#search-message.error:has-text('unknown element')")
    assert page.locator("#results .result").count() == 0
    for bad in ("999", "Qq-3x"):  # the server judges the filter; the page shows its words
        detail = _api_error(server, f"/api/search?q=oxide&spacegroup={urllib.parse.quote(bad)}")
        assert "space group" in detail and bad in detail
        _search(page, "oxide", elements="", spacegroup=bad)
        page.wait_for_selector("#search-message.error")
        assert page.inner_text("#search-message") == detail
        assert page.locator("#results .result").count() == 0

    for typed, sent, wanted in [("Fm-3m", "Fm-3m", {225}), ("fm-3M, 221", "fm-3M,221", {225, 221}),
                                ("p 2_1/c", "p 2_1/c", {14}), ("221-223", "221,222,223", {221, 222, 223})]:
        with page.expect_request(lambda r: "/api/search?" in r.url) as request:
            found = _search(page, "oxide", spacegroup=typed)
        # symbols go to the server as typed; only a range is spelled out as its numbers by the page
        assert urllib.parse.parse_qs(urllib.parse.urlsplit(request.value.url).query)["spacegroup"] == [sent]
        page.wait_for_selector("#search-message:not(.error)")
        assert found, f"no result for space group {typed}"
        cells = page.locator("#results .sg .spacegroup")
        numbers = [int(re.search(r"\((\d+)\)$", text).group(1)) for text in cells.all_inner_texts()]
        assert len(numbers) == len(found) and set(numbers) <= wanted
        symbols = set(cells.evaluate_all("ss => ss.map(s => s.dataset.symbol)"))
        api = _get(f"{server['url']}/api/search?" + urllib.parse.urlencode({"q": "oxide", "k": 10, "spacegroup": sent}))
        assert [r["id"] for r in api["results"]] == [r["id"] for r in found]
        assert symbols == {r["spacegroup_symbol"] for r in api["results"]}  # the server's symbols, as given
    assert page.evaluate("typeof SG_SYMBOLS") == "undefined"  # no table of symbols of the page's own
    page.fill("#spacegroup", "")

    page.click("#table-toggle")
    page.click("#periodic-table [data-element=Cu]")
    page.click("#periodic-table [data-element=O]")
    assert page.input_value("#elements") == "Cu,O"
    page.click("#periodic-table [data-element=Cu]")
    assert page.input_value("#elements") == "O"
    assert page.get_attribute("#periodic-table [data-element=O]", "aria-pressed") == "true"
    _search(page, "")
    page.wait_for_selector("#search-message.error:has-text('Type what you are looking for')")
    _clear_filters(page)


def test_url_opens_search_and_structure(server, page):
    hit = _get(f"{server['url']}/api/search?q=quartz&k=1")["results"][0]
    _open_page(page, server, "/?" + urllib.parse.urlencode({"q": "quartz", "id": hit["id"]}))
    page.wait_for_selector("#results .result.selected")
    page.wait_for_selector(f"#view-title:has-text('{hit['id']}')")
    assert page.input_value("#query") == "quartz"
    _open_page(page, server, "/?" + urllib.parse.urlencode({"id": "no-such-structure"}))
    page.wait_for_selector("#details-message.error:has-text('no structure with id')")
    _open_page(page, server)
    page.locator("#examples a").nth(2).click()  # an example query runs in place, with its filters
    page.wait_for_selector("#search-message:has-text('a garnet')")
    page.wait_for_function(LIST_DONE)
    assert page.input_value("#spacegroup") == "Ia-3d" and "q=a+garnet" in page.url
    assert "error" not in page.get_attribute("#search-message", "class")
    assert page.is_hidden("#examples")


def test_missing_viewer_library_is_said_on_the_page(server, page):
    hit = _get(f"{server['url']}/api/search?q=a+sulfide&k=1")["results"][0]
    page.route("**/static/vendor/3Dmol-min.js", lambda route: route.fulfill(status=404, body="missing"))
    try:
        _open_page(page, server, "/?" + urllib.parse.urlencode({"q": "a sulfide", "id": hit["id"]}))
        page.wait_for_selector("#viewer-message.error:has-text('3Dmol.js is not installed')")
        page.wait_for_selector("#properties", state="visible")  # the rest of the page still works
        assert page.locator("#legend .swatch").count() > 0 and page.get_attribute("#download-cif", "href")
        assert page.locator("#viewer canvas").count() == 0
    finally:
        page.unroute("**/static/vendor/3Dmol-min.js")


def test_classify_upload_and_errors(server, page, tmp_path):
    hit = _get(f"{server['url']}/api/search?q=a+superconductor&k=1")["results"][0]
    cif = tmp_path / "upload-1.cif"
    cif.write_text(_get(f"{server['url']}/api/structures/{urllib.parse.quote(hit['id'], safe='')}"))
    _open_page(page, server)
    page.set_input_files("#cif-file", str(cif))
    page.fill("#labels", "superconductor, insulator")
    page.click("#classify-form button[type=submit]")
    page.wait_for_selector("#classify-results table")
    assert page.locator("#classify-results th").all_inner_texts() == ["structure", "superconductor", "insulator"]
    assert page.locator("#classify-results td").first.inner_text() == cif.stem
    cells = page.locator("#classify-results td").all_inner_texts()[1:]
    assert abs(sum(float(c) for c in cells) - 1) < 0.01
    page.set_input_files("#cif-file", {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello\n"})
    page.click("#classify-form button[type=submit]")
    page.wait_for_selector("#classify-message.error:has-text('not a usable CIF')")

    _search(page, "a superconductor")  # the selected structure, without a file of one's own
    page.locator("#results .result").first.click()
    page.wait_for_selector("#properties", state="visible")
    page.click("#classify-selected")
    page.wait_for_selector("#classify-message:has-text('is the structure to classify')")
    page.click("#classify-form button[type=submit]")
    page.wait_for_selector("#classify-message:not(.error):has-text('template')")
    assert page.locator("#classify-results tr").count() == 2
