"""docs/scipy-comparison.md is what ``benchmarks/vs_scipy.py --page`` writes: rows regenerated here
are on the page, and (slow) the whole page regenerated is the page. Both only under the versions of
numpy, scipy and cocoex the page names: other versions may take other paths."""

from __future__ import annotations

import pytest

from ..conftest import REPO

PAGE = REPO / "docs" / "scipy-comparison.md"


@pytest.fixture
def vs_scipy(monkeypatch):
    pytest.importorskip("scipy")
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import scipy_page
    import vs_scipy

    if f"({scipy_page.versions()})" not in PAGE.read_text():
        pytest.skip(f"docs/scipy-comparison.md was written under other versions than {scipy_page.versions()}; "
                    f"regenerate it with {scipy_page.COMMAND}")
    return vs_scipy


def test_rows_regenerated_are_on_the_page(vs_scipy):
    pairs = [p for p in vs_scipy.PAIRS if p.label in ("bfgs", "cg", "trust_region(exact)", "nelder_mead")]
    report = vs_scipy.compare(vs_scipy.problems_of("rosenbrock,brown_badly_scaled"), pairs, 1e-5)
    page = PAGE.read_text()
    assert len(report.rows) == 8
    for row in report.rows:
        assert row + "\n" in page


def test_the_page_says_where_it_comes_from():
    page = PAGE.read_text()
    assert page.startswith("# optlab and scipy\n")
    assert "`python benchmarks/vs_scipy.py --page docs/scipy-comparison.md`" in page
    assert "```bash" not in page and "```python" not in page  # (the docs' code blocks are run by a test)


@pytest.mark.slow
def test_the_page_is_what_the_benchmark_writes(vs_scipy, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    vs_scipy.main(["--page", "page.md"])
    assert (tmp_path / "page.md").read_text() == PAGE.read_text()
