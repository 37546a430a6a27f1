"""Rich output in JupyterLab (a real headless Chromium, issue 19): an R data frame is rendered as an HTML
table, and Node.js's ``display.html()`` as HTML, not as text; screenshots are kept as test artifacts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser_lab import jupyterlab_server
from tests.helpers import require_programs
from tests.test_browser_jupyterlab import ARTIFACTS, browser_page, run_cell  # noqa: F401 (browser_page: a fixture)

pytestmark = pytest.mark.kernel  # the notebooks start backend-r and backend-nodejs kernels

R_CELL = 'data.frame(city = c("Oslo", "Lima", "Pune"), degrees = c(4.5, 19.2, 27.8))'
NODE_CELL = ("console.log('before');\n"
             "display.html('<b id=\"backend-shown\" style=\"color: #c00\">rendered by display.html</b>');\n"
             "console.log('after')")


def open_notebook(page, title: str) -> None:
    """A new notebook of the kernel titled ``title`` from a launcher, once its kernel is idle."""
    page.locator(f'.jp-Launcher .jp-LauncherCard[title="{title}"]').first.click()
    page.get_by_text(f"{title} | Idle").wait_for()


def test_r_table_and_node_html_render_in_jupyterlab(tmp_path: Path, browser_page) -> None:  # noqa: F811
    require_programs("R", "node")
    page = browser_page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with jupyterlab_server(tmp_path) as url:
        page.goto(url)
        open_notebook(page, "R (backend)")
        run_cell(page, R_CELL)
        table = page.locator(".jp-OutputArea-output table").first
        table.wait_for()
        rows = [row.inner_text() for row in table.locator("tbody tr").all()]
        header = table.locator("thead").inner_text()
        caption = table.locator("caption").inner_text()
        page.screenshot(path=str(ARTIFACTS / "jupyterlab-display-r-table.png"))

        page.locator('[data-command="launcher:create"]:visible').first.click()  # a new launcher, for Node.js
        open_notebook(page, "Node.js (backend)")
        run_cell(page, NODE_CELL)
        shown = page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output b#backend-shown")
        shown.wait_for()
        outputs = page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output").all_inner_texts()
        color = shown.evaluate("b => getComputedStyle(b).color")
        page.screenshot(path=str(ARTIFACTS / "jupyterlab-display-nodejs-html.png"))

    assert [row.split() for row in rows] == [["1", "Oslo", "4.5"], ["2", "Lima", "19.2"], ["3", "Pune", "27.8"]]
    assert "city" in header and "degrees" in header and "<chr>" in header
    assert "3 × 2" in caption
    assert color == "rgb(204, 0, 0)", "the HTML is rendered (styled), not shown as text"
    assert [text.strip() for text in outputs] == ["before", "rendered by display.html", "after"]
    for name in ("r-table", "nodejs-html"):
        assert (ARTIFACTS / f"jupyterlab-display-{name}.png").stat().st_size > 10_000
