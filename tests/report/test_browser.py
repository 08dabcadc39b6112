"""The report's pages in a real browser (headless Chromium, driven through selenium and Debian's
chromedriver; nothing is downloaded): every page reached from index.html is opened, every image
must load, every link must resolve (served over HTTP, anchors included) and no table may be wider
than the page. On a tree written by hand (at two widths) and on the pages of the shootout and
lr-sweep experiments."""

from __future__ import annotations

import contextlib
import functools
import http.server
import shutil
import tempfile
import threading
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin

import numpy as np
import pytest

from optlab.report import build_report

from ..conftest import run_cli
from .test_rules import decay, write_not_applicable, write_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]

CHECK = """
const width = document.documentElement.clientWidth;
const images = [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'));
const tables = [...document.querySelectorAll('table')]
    .map(t => t.getBoundingClientRect()).filter(r => r.left < -0.5 || r.right > width + 0.5)
    .map(r => [r.left, r.right]);
const links = [...document.querySelectorAll('a[href]')]
    .map(a => new URL(a.getAttribute('href'), document.baseURI).href);
return {width: width, scroll: document.documentElement.scrollWidth, images: images, tables: tables, links: links,
        title: document.title};
"""


def browser_missing() -> str:
    if not (CHROMIUM and CHROMEDRIVER):
        return "no chromium and chromedriver on PATH (Debian: apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium: the test extra)"
    return ""


pytestmark = pytest.mark.skipif(bool(browser_missing()), reason=browser_missing() or "browser found")


@contextlib.contextmanager
def served(root: Path):
    """``root`` over HTTP on a free port of this host (its base URL), quietly."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def chromium(width: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="optlab-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False})
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


SETTLED = """
const done = arguments[arguments.length - 1];
Promise.allSettled([...document.images].map(i => i.decode())).then(() => done(true));
"""


def open_page(driver, url: str) -> dict:
    """The page's checks once its images have settled; a page with an image that did not load is
    loaded once more (a busy machine's server can drop a request) before it counts as broken."""
    for _ in range(2):
        driver.get(url)
        driver.set_script_timeout(30)
        driver.execute_async_script(SETTLED)
        found = driver.execute_script(CHECK)
        if not found["images"]:
            break
    return found


class Ids(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.ids.update(v for k, v in attrs if k == "id")


def check_pages(root: Path, index: Path, widths: tuple[int, ...] = (1280,)) -> dict[str, int]:
    """Open every page of the report under ``index`` (served from ``root``) at each viewport width; every
    problem found is raised as one assertion naming its page. Returns counts of what was checked."""
    counts = {"pages": 0, "links": 0, "images": 0}
    with served(root) as base:
        start = urljoin(base, index.relative_to(root).as_posix())
        report = start.rsplit("/", 1)[0] + "/"
        for width in widths:
            with chromium(width) as driver:
                seen, todo, links = set(), [start], set()
                while todo:
                    url = todo.pop()
                    if url in seen:
                        continue
                    seen.add(url)
                    found = open_page(driver, url)
                    assert found["title"], url
                    assert not found["images"], (url, "images that did not load", found["images"][:5])
                    assert not found["tables"], (url, f"tables wider than the page ({width} px)", found["tables"])
                    assert found["scroll"] <= found["width"], (url, "wider than the page", found["scroll"])
                    counts["images"] += driver.execute_script("return document.images.length")
                    for link in found["links"]:
                        links.add(link)
                        page = link.split("#")[0]
                        if page.startswith(report) and page.endswith(".html"):
                            todo.append(page)
                counts["pages"] = len(seen)
        texts: dict[str, str] = {}
        for link in sorted(links):  # every link resolves: the file is served, the anchor is on its page
            page, _, anchor = link.partition("#")
            if page not in texts:
                with urllib.request.urlopen(page, timeout=30) as answer:
                    assert answer.status == 200, link
                    texts[page] = answer.read().decode("utf-8", "replace") if page.endswith(".html") else ""
            if anchor:
                assert unquote(anchor) in Ids(texts[page]).ids, (link, "no such anchor")
        counts["links"] = len(links)
    return counts


@pytest.mark.slow  # a report and two browsers: ~15 s
def test_every_page_of_a_small_report_opens_whole_in_a_browser(tmp_path):
    root = tmp_path / "runs"
    for lr in (1e-3, 1e-2, 0.5):
        for k, x0 in enumerate(([0.0, 2.0], [-1.2, 1.0], [1.5, 0.5])):
            diverged = lr == 0.5
            f = [5.0, 5e4, 1e12, np.inf] if diverged else decay(5.0 + k, 1 - 20 * lr, 60)
            write_run(root, f"gd{lr}_{k}", f, sparams={"lr": lr}, x0=x0, status="diverged" if diverged else "max_iter",
                      message="a message that is rather long, as messages of stopping rules and failures can be: "
                              "f or x is not finite at iteration 3 (the last finite f was 1e12)")
        write_run(root, f"long{k}", decay(5.0, 0.3, 9), solver="a_solver_with_a_rather_long_name_and_no_spaces_at_all",
                  sparams={"option_with_a_long_name": 0.123456789, "another_option": "a_long_value_without_spaces"},
                  x0=[0.1 * k, 1.0])
    write_run(root, "newton", decay(5.0, 1e-3, 5), solver="newton", sparams={}, objective="himmelblau")
    write_not_applicable(root, "na", "rosenbrock", "lstsq")
    index = build_report(root, tmp_path / "report", progress=False)
    counts = check_pages(tmp_path, index, widths=(1280, 1024))
    assert counts["pages"] >= 20 and counts["links"] >= 40 and counts["images"] >= 20


def sweep_report(tmp_path: Path, experiment: str) -> Path:
    out = tmp_path / experiment
    done = run_cli("-m", f"+experiment={experiment}", f"hydra.sweep.dir={out}", timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    index = out / "report" / "index.html"
    assert index.is_file(), done.stderr[-3000:]
    return index


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["lr_sweep", "solver_shootout"])
def test_every_page_of_an_experiment_s_report_opens_whole_in_a_browser(tmp_path, experiment):
    index = sweep_report(tmp_path, experiment)
    counts = check_pages(tmp_path, index)
    assert counts["pages"] > 20 and counts["links"] > 100
