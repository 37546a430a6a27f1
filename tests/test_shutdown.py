"""Shutdown of our kernels: at once and by themselves, exit handlers run, a hanging interpreter killed.

Issue 22: half of all shutdowns waited 2.5 s until the kernel manager sent SIGTERM (ipykernel's
control thread flushed stdout into an IOPub thread being stopped). The interpreter used to be killed
outright, so nothing a language writes at a clean exit (exit traps, ``.Last``, buffered files) was written.
"""

from __future__ import annotations

import asyncio

import pytest
from jupyter_client.manager import AsyncKernelManager

from .helpers import kernel_process_tree, pid_alive, require_programs, run_cell

pytestmark = pytest.mark.kernel

#: A cell per session language that leaves work for the interpreter's clean exit: it writes "clean" to
#: the file named by {path} only when the interpreter ends normally (never when it is killed).
EXIT_ACTIONS = {
    "backend-shell": ("bash", "trap 'echo clean > {path}' EXIT"),
    "backend-r": ("Rscript", '.Last <- function() writeLines("clean", "{path}")'),
    "backend-lua": ("lua5.4", 'pending = io.open("{path}", "w"); pending:write("clean\\n")'),
    "backend-scheme": ("guile", '(define pending (open-output-file "{path}"))\n(display "clean\\n" pending)'),
    "backend-nodejs": ("node", "process.on('exit', () => require('fs').writeFileSync('{path}', 'clean\\n'));"),
    "backend-octave": ("octave-cli", "function backend_bye ()\n  fid = fopen ('{path}', 'w');\n"
                                     "  fprintf (fid, 'clean\\n');\n  fclose (fid);\nend\natexit ('backend_bye');"),
    "backend-php": ("php", "register_shutdown_function(function () {{ file_put_contents('{path}', \"clean\\n\"); }});"),
}


async def start(kernel_name: str) -> tuple[AsyncKernelManager, object]:
    km = AsyncKernelManager(kernel_name=kernel_name)
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=60)
    return km, kc


@pytest.mark.parametrize("kernel_name", sorted(EXIT_ACTIONS))
async def test_the_interpreter_exits_cleanly_at_shutdown(kernel_name: str, tmp_path) -> None:
    program, template = EXIT_ACTIONS[kernel_name]
    require_programs(program)
    path = tmp_path / "exit-action.txt"
    km, kc = await start(kernel_name)
    try:
        done = await run_cell(kc, template.format(path=path))
        assert done["reply"]["status"] == "ok", done
        tree = kernel_process_tree(km.provisioner.pid)
    finally:
        kc.stop_channels()
        await km.shutdown_kernel()
    assert path.read_text().strip() == "clean", f"{kernel_name}: the interpreter's exit work was lost"
    assert not [pid for pid in tree if pid_alive(pid)], "processes left after shutdown"


@pytest.mark.parametrize("kernel_name", ["backend-shell", "backend-c", "backend-lua", "backend-python"])
async def test_the_kernel_exits_by_itself_when_asked(kernel_name: str) -> None:
    """The kernel process ends after its shutdown reply without the manager's SIGTERM (exit code 0),
    every time: the flush race made one shutdown in two end by SIGTERM (-15)."""
    require_programs({"backend-shell": "bash", "backend-c": "gcc", "backend-lua": "lua5.4"}.get(kernel_name, "true"))
    code = {"backend-shell": "echo hi", "backend-c": "int x;", "backend-lua": "print('hi')"}.get(kernel_name, "1")
    for _ in range(6):
        km, kc = await start(kernel_name)
        try:
            await run_cell(kc, code)
        finally:
            kc.stop_channels()
            process = km.provisioner.process
            await km.shutdown_kernel()
        assert process.returncode == 0, f"{kernel_name} ended with {process.returncode} (signalled by the manager)"


async def test_an_interpreter_that_ignores_the_end_of_its_input_is_killed_after_the_grace(tmp_path) -> None:
    """A cell leaves an exit trap that never returns: the kernel still ends, and nothing of it is left."""
    require_programs("bash", "sleep")
    pid_file = tmp_path / "trap.pid"
    km, kc = await start("backend-shell")
    try:
        done = await run_cell(kc, f"trap 'sleep 600 & echo $! > {pid_file}; wait' EXIT")
        assert done["reply"]["status"] == "ok", done
        tree = kernel_process_tree(km.provisioner.pid)
        assert len(tree) >= 2, "the shell interpreter should run under the kernel"
    finally:
        kc.stop_channels()
        process = km.provisioner.process
        await km.shutdown_kernel()
    assert process.returncode == 0, "the kernel itself should still exit by itself after the grace"
    for _ in range(50):  # the trap's own sleep may take a moment to be seen gone (reaped by init)
        left = [pid for pid in tree | {int(pid_file.read_text())} if pid_alive(pid)]
        if not left:
            break
        await asyncio.sleep(0.1)
    assert pid_file.exists(), "the exit trap should have started (the end of input reached the interpreter)"
    assert not left, f"processes left after shutdown: {left}"


async def test_r_with_a_hanging_last_is_killed_after_the_grace() -> None:
    require_programs("Rscript")
    km, kc = await start("backend-r")
    try:
        done = await run_cell(kc, ".Last <- function() Sys.sleep(600)")
        assert done["reply"]["status"] == "ok", done
        tree = kernel_process_tree(km.provisioner.pid)
    finally:
        kc.stop_channels()
        process = km.provisioner.process
        await km.shutdown_kernel()
    assert process.returncode == 0
    assert not [pid for pid in tree if pid_alive(pid)], "R should be gone after the grace"
