"""`jupyter console --kernel backend-<lang>` works, driven like a person at a terminal (issue 9)."""

from __future__ import annotations

import sys

import pytest

from tests.helpers import require_programs

pexpect = pytest.importorskip("pexpect")

CASES = {
    "python": (("python3",), "print('console says', 6 * 7)"),
    "c": (("gcc",), 'int printf(const char *, ...); int main(void) { printf("console says %d\\n", 6 * 7); }'),
    "nodejs": (("node",), "console.log('console says', 6 * 7)"),
    "shell": (("bash",), "echo console says $((6 * 7))"),
}


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
        lines = cell.split("\n")
        for line in lines:
            console.sendline(line)
        if len(lines) > 1:
            console.sendline("")  # simple prompt: an empty line ends a multi-line cell
        console.expect("console says 42")
        console.expect(r"In \[2\]: ")
        console.sendeof()  # Ctrl-D: "exit" would be code for most kernels
        if console.expect([pexpect.EOF, r"really want to exit"]) == 1:
            console.sendline("y")
            console.expect(pexpect.EOF)
    finally:
        console.close(force=True)
    assert console.exitstatus == 0 or console.signalstatus is None
