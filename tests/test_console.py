"""`jupyter console --kernel backend-<lang>` works, driven like a person at a terminal (issue 9)."""

from __future__ import annotations

import sys
import time

import pytest

from tests.helpers import kernel_process_tree, pid_alive, require_programs

pytestmark = pytest.mark.kernel  # `jupyter console` starts the kernel it talks to

pexpect = pytest.importorskip("pexpect")

CASES = {
    "python": (("python3",), "print('console says', 6 * 7)"),
    "c": (("gcc",), 'int printf(const char *, ...); int main(void) { printf("console says %d\\n", 6 * 7); }'),
    "nodejs": (("node",), "console.log('console says', 6 * 7)"),
    "shell": (("bash",), "echo console says $((6 * 7))"),
}


def cmdline(pid: int) -> str:
    """The command line of ``pid`` ("" once it is gone), to name what was left running."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.mark.parametrize("language", sorted(CASES))
def test_console_runs_a_cell(language: str) -> None:
    programs, cell = CASES[language]
    require_programs(*programs)
    console = pexpect.spawn(
        sys.executable,
        ["-m", "jupyter_console", "--kernel", f"backend-{language}", "--simple-prompt"],
        encoding="utf-8",
        timeout=90,
        dimensions=(40, 200),
    )
    try:
        console.expect(r"In \[1\]: ")
        # The console prompts once the kernel answers kernel_info, without waiting until its IOPub
        # subscription is in place (jupyter_client#593): a cell typed at once can lose its output and
        # "idle" status, and the console then waits for ever (seen with the fast-starting shell kernel).
        time.sleep(1)
        lines = cell.split("\n")
        for line in lines:
            console.sendline(line)
        if len(lines) > 1:
            console.sendline("")  # simple prompt: an empty line ends a multi-line cell
        console.expect("console says 42")
        console.expect(r"In \[2\]: ")
        # The kernel the console started (and anything it runs) are the console's descendants.
        started = kernel_process_tree(console.pid) - {console.pid}
        assert any("backend_kernel_provisioner.kernels" in cmdline(pid) for pid in started), (
            f"no backend-{language} kernel among the console's processes: {[cmdline(p) for p in started]}"
        )
        exit_console(console)
    finally:
        console.close(force=True)
    assert_exited_with_its_kernel(console, started)


def exit_console(console) -> None:
    """Ctrl-D ("exit" would be code for most kernels), and yes to the question if it asks."""
    console.sendeof()
    if console.expect([pexpect.EOF, r"really want to exit"]) == 1:
        console.send("y\r")
        console.expect(pexpect.EOF)
    console.wait()  # EOF on the terminal can come before the process has exited


def assert_exited_with_its_kernel(console, started: set[int]) -> None:
    """The console exited by itself with status 0, and the kernel it started (``started``) went too."""
    assert (console.exitstatus, console.signalstatus) == (0, None), "the console must exit by itself, with status 0"
    deadline = time.monotonic() + 30  # the console asks the kernel to shut down; give it time to go
    while any(pid_alive(pid) for pid in started) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [cmdline(pid) for pid in started if pid_alive(pid)] == [], "the kernel outlived its console"
