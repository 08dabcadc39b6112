"""The run pages: every table row, profile curve and heatmap cell of the report links to a page of the
runs behind it (their chart and how each ended), and the links laid over the figures sit on what they
link: checked against the runs written and against the pixels of the PNG files."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgb
from PIL import Image

from optlab.report import build_report

from .test_rules import decay, write_not_applicable, write_run

LRS = (1e-3, 1e-2, 0.5)
STARTS = ([0.0, 2.0], [-1.2, 1.0], [1.5, 0.5])


class Page(HTMLParser):
    """The links, images, element ids and the overlays of links (figure -> its areas) of a page."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path, self.links, self.images, self.ids = path, [], [], set()
        self.overlays: dict[str, list[tuple[str, str, list[float]]]] = {}
        self.rows: list[list[str]] = []
        self._img, self._href, self._cell = None, None, None
        self.feed(path.read_text(encoding="utf-8"))

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
            self._href = a["href"]
        if tag == "img":
            self.images.append(a["src"])
            self._img = a["src"]
        if tag == "polyline" and self._img:
            points = [float(v) for v in a["points"].split()]
            self.overlays.setdefault(self._img, []).append((self._href, "poly", points))
        if tag == "rect" and self._img:
            self.overlays.setdefault(self._img, []).append(
                (self._href, "rect", [float(a[k]) for k in ("x", "y", "width", "height")]))
        if tag == "tr":
            self.rows.append([])
        if tag == "td":
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "div":
            self._img = None
        if tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def target(self, href: str) -> tuple[Path, str]:
        parts = urlsplit(href)
        if not parts.path:  # within this page
            return self.path.resolve(), parts.fragment
        return (self.path.parent / unquote(parts.path)).resolve(), parts.fragment


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """gd at three rates (the largest diverges) and Newton, from two starts on Rosenbrock and one on
    Himmelblau; lstsq recorded as not applicable."""
    root = tmp_path_factory.mktemp("pages") / "runs"
    for lr in LRS:
        for k, x0 in enumerate(STARTS):
            diverged = lr == 0.5
            f = [5.0 + k, 5e4, 1e12, math.inf] if diverged else decay(5.0 + k, 1 - 20 * lr, 40)
            path = np.linspace(x0, [1.0, 1.0], len(f)) if not diverged else \
                np.array([x0, [3.0, 5.0], [1e6, -1e6], [np.nan, np.nan]])
            write_run(root, f"gd{lr}_{k}", f, sparams={"lr": lr}, x0=x0, x=path,
                      status="diverged" if diverged else "max_iter", message=f"gd at {lr}")
        write_run(root, f"newton{k}", decay(5.0, 1e-3, 5), solver="newton", sparams={}, x0=STARTS[0],
                  status="converged", message="converged: ||grad f|| <= gtol")
    write_run(root, "newton_h", decay(5.0, 1e-3, 5), objective="himmelblau", solver="newton", sparams={},
              x0=[0.0, 0.0], status="converged")
    write_not_applicable(root, "na", "rosenbrock", "lstsq")
    index = build_report(root, root.parent / "report", progress=False)
    return root, index


def pages_of(index: Path) -> dict[Path, Page]:
    """Every page reached from index.html by its links (within the report folder)."""
    seen: dict[Path, Page] = {}
    todo = [index.resolve()]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen[path] = page = Page(path)
        for href in page.links:
            target, _ = page.target(href)
            if target.suffix == ".html" and target.is_relative_to(index.parent.resolve()):
                todo.append(target)
    return seen


def test_every_link_and_image_of_every_page_resolves(built):
    _, index = built
    pages = pages_of(index)
    assert len(pages) > 10
    for path, page in pages.items():
        for href in page.links:
            target, fragment = page.target(href)
            assert target.is_file(), (path.name, href)
            if fragment:
                assert fragment in Page(target).ids, (path.name, href)
        for src in page.images:
            assert src.startswith("data:") or page.target(src)[0].is_file(), (path.name, src)


def test_each_table_row_links_to_a_page_of_its_runs(built):
    root, index = built
    page = Page(index)
    solvers = pd.read_csv(index.parent / "solvers.csv")
    summary = pd.read_csv(index.parent / "summary.csv")
    units = {h.split("#")[0] for h in page.links if h.startswith("runs/u-")}
    assert len(set(units)) == len(solvers)  # a page per row
    for row in solvers.itertuples():
        runs = summary[(summary.solver_setting == row.solver_setting) & (summary.problem == row.problem)]
        (href,) = {h for h in units if _title(index.parent / h) == f"{row.solver_setting} on {row.problem}"}
        unit = Page(index.parent / href)
        assert {f"run-{r}" for r in runs.run_id} <= unit.ids
        table = {cells[1]: cells for cells in unit.rows if len(cells) > 5}
        for r in runs.itertuples():
            assert table[r.run_id][3] == r.verdict and table[r.run_id][4] == (r.message if isinstance(r.message, str)
                                                                                 else "")


def test_each_profile_curve_links_to_the_runs_of_its_setting(built):
    _, index = built
    page = Page(index)
    summary = pd.read_csv(index.parent / "summary.csv")
    areas = page.overlays["profiles.png"]
    settings = {h: _title(index.parent / h).split(":")[0] for h, _, _ in areas}
    assert set(settings.values()) == set(summary[summary.verdict != "not applicable"].solver_setting)
    for href, setting in settings.items():
        listed = {cells[1] for cells in Page(index.parent / href).rows if len(cells) > 5}
        assert listed == set(summary[summary.solver_setting == setting].run_id)
    # the links lie on the curves: where a setting's polyline runs, the picture has its colour
    with Image.open(index.parent / "profiles.png") as im:
        pixels = np.asarray(im.convert("RGB"), dtype=float) / 255
    best = [c for h, kind, c in areas if kind == "poly" and settings[h] == "newton"]  # ranked first: blue
    assert len(best) == 2  # its curve in either profile
    # newton is the cheapest on every problem it solves: its performance profile runs along 1 alone
    assert _near(pixels, best[0], to_rgb("#1f77b4")) == 1.0


def test_each_heatmap_cell_links_to_the_runs_in_it(built):
    _, index = built
    page = Page(index)
    summary = pd.read_csv(index.parent / "summary.csv")
    (name,) = [n for n in page.overlays if n.startswith("heatmap")]
    cells = [(h, c) for h, kind, c in page.overlays[name] if kind == "rect" and "/c-" in h]
    assert len(cells) == len(LRS) * len(STARTS)
    with Image.open(index.parent / name) as im:
        pixels = np.asarray(im.convert("RGB"), dtype=float) / 255
    for href, (x, y, w, h) in cells:
        listed = [cells_[1] for cells_ in Page(index.parent / href).rows if len(cells_) > 5]
        (run_id,) = listed
        run = summary.set_index("run_id").loc[run_id]
        assert f"learning rate {run.lr:g} from {run.x0}" in _title(index.parent / href)
        inside = pixels[int(y + h / 2), int(x + w / 5)]  # (off the ✕ in the middle)
        if run.verdict == "diverged":  # the cell under the link is the diverged run's red
            assert np.allclose(inside, to_rgb("#d62728"), atol=0.02)


def test_a_unit_chart_draws_each_run_on_its_landscape(built):
    _, index = built
    unit = index.parent / "runs"
    (href,) = [p for p in unit.glob("u-gd_lr_0_001_rosenbrock-*.html")]
    page = Page(href)
    (chart,) = [s for s in page.images if s.endswith(".svg")]
    svg = ET.parse(href.parent / chart).getroot()
    (image,) = svg.iter("{http://www.w3.org/2000/svg}image")  # the landscape's shading
    assert image.get("href").startswith("data:image/png;base64,")
    titles = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text") if t.get("font-size") == "13"]
    assert titles == ["path of the iterates", "f − f*", "step size (α, lr or radius)"]
    lines = [p for p in svg.iter("{http://www.w3.org/2000/svg}polyline")]
    colors = {p.get("stroke") for p in lines}
    assert len(colors) == 3  # one colour per run, the same in the three panels
    legend = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text") if t.text and " · " in t.text]
    assert sorted(legend) == ["(-1.2, 1) · max_iter", "(0, 2) · max_iter", "(1.5, 0.5) · max_iter"]


def _title(page: Path) -> str:
    return re.search(r"<h1>(.*?)</h1>", page.read_text(encoding="utf-8")).group(1).replace("&#x27;", "'")


def _near(pixels: np.ndarray, points: list[float], rgb: tuple, radius: int = 2) -> float:
    """The fraction of the points along a polyline (every 3 px) that have colour ``rgb`` in the picture
    within ``radius`` px."""
    xy = np.array(points).reshape(-1, 2)
    samples = [a + (b - a) * t for a, b in zip(xy[:-1], xy[1:])
               for t in np.linspace(0, 1, max(2, int(np.hypot(*(b - a)) / 3)))]
    hits = 0
    for x, y in samples:
        i, j = int(round(y)), int(round(x))
        patch = pixels[max(i - radius, 0):i + radius + 1, max(j - radius, 0):j + radius + 1].reshape(-1, 3)
        hits += bool(np.any(np.all(np.abs(patch - rgb) < 0.08, axis=1)))
    return hits / len(samples)


def test_chart_axes_map_and_tick_within_their_range():
    from optlab.report.svg import Scale, thin

    symlog = Scale(0.0, 2043.0, "symlog", 1.0, integer=True)
    values = np.array([0.0, 0.5, 1.0, 10.0, 100.0, 2043.0])
    mapped = symlog(values)
    assert mapped[0] == 0 and mapped[-1] == pytest.approx(1) and np.all(np.diff(mapped) > 0)
    assert [v for v, _ in symlog.ticks()] == [0, 1, 10, 100, 1000]  # not 10^4, beyond the axis
    assert [label for _, label in Scale(-1.0, 3.0).ticks()] == ["-1", "0", "1", "2", "3"]
    floor = Scale(1e-21, 1e4, "log", floor=1e-20).ticks()
    assert floor[0] == (1e-20, "≤ 0") and all(1e-21 <= v <= 1e4 for v, _ in floor)
    kept = thin(50_000, symlog=True)
    assert len(kept) <= 300 and kept[0] == 0 and kept[-1] == 49_999 and np.all(np.diff(kept) > 0)
    assert np.sum(kept < 100) > 50  # early iterates kept on a log axis
