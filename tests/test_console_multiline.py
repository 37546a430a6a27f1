"""Blocks typed line by line in `jupyter console` run once, complete (issue 19, acceptance 3).

The console (its full prompt_toolkit interface, not ``--simple-prompt``, which runs every line) sends the
text typed so far as an ``is_complete_request`` at each Enter: "incomplete" gives the continuation prompt
``...:`` and the kernel's indent, "complete" runs the cell. Each block is typed twice: once before its
kernel's interpreter runs (the block rules answer) and once after (the interpreter's parser or ``bash -n``).
A block that ran in pieces would show the language's errors and take more than one prompt number.
"""

from __future__ import annotations

import os
import re
import sys
import time

import pytest

from tests.helpers import kernel_process_tree, require_programs
from tests.test_console import assert_exited_with_its_kernel, exit_console

pytestmark = pytest.mark.kernel  # `jupyter console` starts the kernel it talks to

pexpect = pytest.importorskip("pexpect")

#: Escape sequences of the terminal (colours, cursor moves, modes), stripped before the text is read.
ESCAPE = r"(?:\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z])"
CONTINUATION = r"\.\.\.:"

#: language: (programs, blocks: the lines typed, and the output lines the whole block prints)
CASES = {
    "lua": (("lua5.4",), [
        (["function f(x)", "return x * 2", "end"], []),
        (["print(f(21))"], ["42"]),
        (["function g(x)", "return x + 1", "end"], []),
        (["print(g(41))"], ["42"]),
    ]),
    "octave": (("octave-cli",), [
        (["for i = 1:3", "disp(i)", "end"], ["1", "2", "3"]),
        (["for i = 1:3", "disp(i * 10)", "end"], ["10", "20", "30"]),
    ]),
    "shell": (("bash",), [
        (["if true; then", "echo yes", "fi"], ["yes"]),
        (["if true; then", "echo again", "fi"], ["again"]),
    ]),
}


def prompt(number: int | str) -> str:
    return rf"In \[(?:{ESCAPE})*{number}(?:{ESCAPE})*\]:"


def screen_lines(text: str) -> list[str]:
    """The lines the terminal showed, escape sequences removed and stripped."""
    return [line.strip() for line in re.split(r"[\r\n]+", re.sub(ESCAPE, "", text))]


def type_block(console, lines: list[str], number: int) -> str:
    """Type ``lines`` with Enter after each; every line but the last must get the continuation prompt and
    the last one run the block as cell ``number`` (the next prompt is ``number + 1``). Returns the text shown."""
    shown = ""
    later = prompt(rf"(?!{number}\b)\d+")  # the prompt is redrawn as keys are typed: only a new number counts
    for line in lines[:-1]:
        console.send(line + "\r")
        which = console.expect([CONTINUATION, later])
        shown += console.before + console.after
        assert which == 0, f"{line!r} ran at once: {screen_lines(shown)}"
    console.send(lines[-1] + "\r")
    console.expect(later)
    shown += console.before + console.after
    assert re.fullmatch(prompt(number + 1), console.after), f"not one cell: {screen_lines(shown)}"
    return shown


@pytest.mark.parametrize("language", sorted(CASES))
def test_console_runs_a_typed_block_once(language: str) -> None:
    programs, blocks = CASES[language]
    require_programs(*programs)
    env = {k: v for k, v in os.environ.items() if k != "JUPYTER_CONSOLE_TEST"}  # that one forces the simple prompt
    env["PROMPT_TOOLKIT_NO_CPR"] = "1"  # no cursor position requests: pexpect is no terminal that answers them
    console = pexpect.spawn(sys.executable, ["-m", "jupyter_console", "--kernel", f"backend-{language}"],
                            encoding="utf-8", timeout=90, dimensions=(40, 200), env=env)
    started: set[int] = set()
    try:
        console.expect(prompt(1))
        time.sleep(1)  # the console prompts before its IOPub subscription is in place (see test_console.py)
        for number, (lines, output) in enumerate(blocks, start=1):
            shown = screen_lines(type_block(console, lines, number))
            for line in output:
                assert shown.count(line) == 1, f"{line!r} should be shown once: {shown}"
            printed = [s for s in shown if s in output]
            assert printed == output, f"the block's output, in order: {shown}"
            assert not any("rror" in s for s in shown), f"an error: {shown}"
        started = kernel_process_tree(console.pid) - {console.pid}
        assert "did not respond to an is_complete_request" not in console.before
        exit_console(console)
    finally:
        console.close(force=True)
    assert_exited_with_its_kernel(console, started)
