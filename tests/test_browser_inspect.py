"""Shift-Tab in JupyterLab (a real headless Chromium): the tooltip shows what R and Node.js say about
the function being called, a function of the notebook and one of the language (issue 19)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser_lab import jupyterlab_server
from tests.helpers import require_programs
from tests.test_browser_jupyterlab import ARTIFACTS, browser_page, run_cell  # noqa: F401 (browser_page: a fixture)

pytestmark = pytest.mark.kernel  # the notebooks start backend-r and backend-nodejs kernels

#: kernel's launcher title, cell defining a function, and (code typed before Shift-Tab, text the tooltip shows).
NOTEBOOKS = {
    "r": ("R (backend)", "inc <- function(a, b = 2) {\n  a + b\n}",
          [("x <- inc(", "Signature: inc(a, b = 2)"), ("paste(", "Concatenate Strings")]),
    "nodejs": ("Node.js (backend)", "function inc(a, b = 2) { return a + b; }",
               [("const x = inc(", "Signature: inc(a, b = 2)"), ("path.join(", "Signature: join(...args)")]),
}


def shift_tab(page, code: str, expected: str):
    """Type ``code`` into the active cell (not run), press Shift+Tab and wait for the tooltip holding ``expected``."""
    editor = page.locator(".jp-Notebook .jp-Cell.jp-mod-active .cm-content").first
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    page.keyboard.type(code)
    page.keyboard.press("Shift+Tab")
    tooltip = page.locator(".jp-Tooltip", has_text=expected)
    tooltip.wait_for(timeout=60_000)
    return tooltip


@pytest.mark.parametrize("language", sorted(NOTEBOOKS))
def test_shift_tab_shows_the_languages_answer(language: str, tmp_path: Path, browser_page) -> None:  # noqa: F811
    require_programs({"r": "R", "nodejs": "node"}[language])
    title, define, probes = NOTEBOOKS[language]
    page = browser_page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shown: list[str] = []
    with jupyterlab_server(tmp_path) as url:
        page.goto(url)
        page.locator(f'.jp-Launcher .jp-LauncherCard[title="{title}"]').first.click()
        page.get_by_text(f"{title} | Idle").wait_for()
        run_cell(page, define)
        page.locator(".jp-InputArea-prompt", has_text="[1]").first.wait_for()
        for index, (code, expected) in enumerate(probes):
            tooltip = shift_tab(page, code, expected)
            shown.append(tooltip.inner_text())
            page.screenshot(path=str(ARTIFACTS / f"jupyterlab-inspect-{language}-{index + 1}.png"))
            page.keyboard.press("Escape")
            tooltip.wait_for(state="hidden")
    for (_code, expected), text in zip(probes, shown, strict=True):
        assert expected in text
    assert (ARTIFACTS / f"jupyterlab-inspect-{language}-1.png").stat().st_size > 10_000
