"""JupyterLab in a real headless Chromium: launcher, a C notebook with stdin, interrupt (issue 9)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser_lab import CHROMIUM_ARGS, chromium_path, jupyterlab_server
from tests.helpers import require_programs

pytestmark = pytest.mark.kernel  # JupyterLab in a browser starts a backend-c kernel

ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", Path(__file__).resolve().parent.parent / "test-artifacts"))
SCANF_CELL = (
    '#include <stdio.h>\n'
    'int main(void) {\n'
    'char name[64];\n'
    'printf("name? ");\n'
    'fflush(stdout);\n'
    'if (scanf("%63s", name) != 1) {\n'
    'return 2;\n'
    '}\n'
    'printf("hello, %s!\\n", name);\n'
    'return 0;\n'
    '}'
)
LOOP_CELL = "int main(void) { for (;;) {} }"
AFTER_CELL = '#include <stdio.h>\nint main(void) { puts("still alive"); return 0; }'


@pytest.fixture
def browser_page():
    chromium = chromium_path()
    if chromium is None:
        pytest.skip("browser not installed: missing chromium (Debian package chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(60_000)
        try:
            yield page
        finally:
            browser.close()


def run_cell(page, code: str) -> None:
    """Type ``code`` into the active cell of the notebook in view and run it with Shift+Enter (with two
    notebooks open, the hidden one has an active cell too)."""
    editor = page.locator(".jp-NotebookPanel:visible .jp-Cell.jp-mod-active .cm-content").first
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    editor.fill(code)
    page.keyboard.press("Shift+Enter")


def test_c_notebook_reads_stdin_and_interrupts(tmp_path: Path, browser_page) -> None:
    require_programs("gcc")
    page = browser_page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with jupyterlab_server(tmp_path) as url:
        page.goto(url)
        launcher = page.locator(".jp-Launcher")
        launcher.wait_for()
        for title in ("C (backend)", "Python 3 (backend)", "Go (backend)", "Rust (backend)"):
            card = launcher.locator(f'.jp-LauncherCard[title="{title}"]').first
            card.wait_for()
            logo = card.locator("img").first
            assert logo.evaluate("img => img.complete && img.naturalWidth > 0"), f"no logo for {title}"

        launcher.locator('.jp-LauncherCard[title="C (backend)"]').first.click()
        page.locator(".jp-Notebook").wait_for()
        # The status bar says "C (backend) | Idle" once the kernel is started and connected.
        page.get_by_text("C (backend) | Idle").wait_for()

        run_cell(page, SCANF_CELL)
        stdin_box = page.locator(".jp-Stdin-input")
        stdin_box.wait_for()
        stdin_box.fill("lab")
        page.screenshot(path=str(ARTIFACTS / "getting-started-c-input.png"))  # the prompt above the input box
        stdin_box.press("Enter")
        page.locator(".jp-OutputArea-output", has_text="hello, lab!").wait_for()
        page.screenshot(path=str(ARTIFACTS / "jupyterlab-c-stdin.png"))

        run_cell(page, LOOP_CELL)
        page.get_by_text("C (backend) | Busy").wait_for()
        page.wait_for_timeout(1000)  # the program is compiled and spinning
        page.locator('jp-button[data-command="notebook:interrupt-kernel"], '
                     'button[data-command="notebook:interrupt-kernel"]').first.click()
        page.locator(".jp-OutputArea-output", has_text="KeyboardInterrupt").wait_for(timeout=30_000)
        page.get_by_text("C (backend) | Idle").wait_for(timeout=30_000)
        run_cell(page, AFTER_CELL)
        page.locator(".jp-OutputArea-output", has_text="still alive").wait_for()
        page.screenshot(path=str(ARTIFACTS / "jupyterlab-c.png"), full_page=True)
    assert (ARTIFACTS / "jupyterlab-c.png").stat().st_size > 10_000


def test_a_kernel_killed_for_memory_says_so_in_the_notebook(tmp_path: Path, browser_page) -> None:
    """Issue 20: under a memory limit, JupyterLab restarts the dead kernel and its first cell says why."""
    page = browser_page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with jupyterlab_server(tmp_path, ("--BackendKernelProvisioner.memory_limit=200M",)) as url:
        page.goto(url)
        launcher = page.locator(".jp-Launcher")
        launcher.locator('.jp-LauncherCard[title="Python 3 (backend)"]').first.click()
        page.locator(".jp-Notebook").wait_for()
        page.get_by_text("Python 3 (backend) | Idle").wait_for()
        run_cell(page, "hog = bytearray(600 << 20)")
        restarting = page.locator(".jp-Dialog", has_text="restart")
        restarting.wait_for(timeout=60_000)  # JupyterLab's "Kernel Restarting" dialog
        page.screenshot(path=str(ARTIFACTS / "jupyterlab-oom-dialog.png"))
        restarting.locator("button").last.click()
        restarting.wait_for(state="hidden")
        run_cell(page, "print('after the restart')")
        told = page.locator(".jp-OutputArea-output", has_text="out of memory")
        told.wait_for()
        page.locator(".jp-OutputArea-output", has_text="after the restart").wait_for()
        text = told.inner_text()
        page.screenshot(path=str(ARTIFACTS / "jupyterlab-oom.png"), full_page=True)
    assert "200 MiB" in text and "killed" in text


def test_getting_started_tour(tmp_path: Path, browser_page) -> None:
    """The getting-started page's screenshots, taken as a new user would go: the launcher, an R plot,
    the kernel's services (an http server started with the kernel) and its limits."""
    require_programs("R")
    page = browser_page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    defs = Path(__file__).resolve().parent / "data" / "service-defs"
    options = (f"--BackendKernelProvisioner.service_defs_dir={defs}",
               "--BackendKernelProvisioner.autostart_services=httpd",
               "--BackendKernelProvisioner.memory_limit=1G")
    with jupyterlab_server(tmp_path, options) as url:
        page.goto(url)
        launcher = page.locator(".jp-Launcher")
        launcher.locator('.jp-LauncherCard[title="R (backend)"]').first.wait_for()
        page.screenshot(path=str(ARTIFACTS / "getting-started-launcher.png"))
        launcher.locator('.jp-LauncherCard[title="R (backend)"]').first.click()
        page.get_by_text("R (backend) | Idle").wait_for()
        run_cell(page, 'x <- seq(-3, 3, by = 0.1)\nplot(x, x^2, type = "l", main = "a plot in R")')
        page.locator(".jp-OutputArea-output img").first.wait_for()
        page.screenshot(path=str(ARTIFACTS / "getting-started-plot.png"))
        run_cell(page, "%services")
        page.locator(".jp-OutputArea-output", has_text="httpd").wait_for()
        run_cell(page, "%limits")
        limits = page.locator(".jp-OutputArea-output", has_text="1 GiB")
        limits.wait_for()
        page.screenshot(path=str(ARTIFACTS / "getting-started-services.png"), full_page=True)
        services_text = page.locator(".jp-OutputArea-output", has_text="httpd").first.inner_text()
    assert "running" in services_text
    for name in ("launcher", "plot", "services"):
        assert (ARTIFACTS / f"getting-started-{name}.png").stat().st_size > 10_000
