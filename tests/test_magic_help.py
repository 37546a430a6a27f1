"""``%magic?`` and ``%lsmagic`` answered from the magic registry, never by the language (issue 19).

Before, ``%env?`` was not a magic line: it went to the language and failed with its syntax error (Lua,
C) or did something else entirely. Now ``%name?``, ``?%name`` and ``%name??`` are ``%pinfo name``.
"""

from __future__ import annotations

import importlib

import pytest

from backend_kernel_provisioner.kernels import magics

from .helpers import require_programs, run_cell, running_kernel

ENV_HELP = magics.registered()["env"].help


@pytest.mark.parametrize("line", ["%env?", "?%env", "%env??", "??%env", "  %env?  ", "// %env?"])
def test_help_lines_are_pinfo(line: str) -> None:
    found, rest = magics.split_magics(f"{line}\nint x;", "//")
    assert found == [(magics.HELP_MAGIC, "env")]
    assert rest == "\nint x;"


@pytest.mark.parametrize("line", ["%nosuchmagic?", "%env? NAME", "%env?x", "x = 1 %env?"])
def test_other_question_marks_stay_code(line: str) -> None:
    assert magics.split_magics(line, "//") == ([], line)


class Printer:
    """Stands for a kernel: what a magic prints."""

    def __init__(self) -> None:
        self.out = ""

    def stream(self, name: str, text: str) -> None:
        assert name == "stdout"
        self.out += text


def test_lsmagic_gives_one_line_per_magic() -> None:
    importlib.import_module("backend_kernel_provisioner.kernels.service_magics")  # magics of other modules too
    printer = Printer()
    magics._lsmagic(printer, "")
    lines = printer.out.rstrip("\n").split("\n")
    names = sorted(magics.registered())
    assert [line.split()[0] for line in lines[:-1]] == [f"%{name}" for name in names]
    assert lines[-1] == "%NAME? shows the whole help of %NAME."
    env_line = next(line for line in lines if line.startswith("%env "))
    assert env_line == "%env NAME=VALUE sets a variable for the programs this kernel runs", "its first sentence"


#: kernel: the programs it needs (``%env?`` would be a syntax error in Lua and C, a comment in Octave)
KERNELS = {
    "lua": ("lua5.4",),
    "c": ("gcc",),
    "shell": ("bash",),
    "octave": ("octave-cli",),
}


@pytest.mark.kernel
@pytest.mark.parametrize("language", sorted(KERNELS))
async def test_magic_help_does_not_reach_the_language(language: str) -> None:
    require_programs(*KERNELS[language])
    async with running_kernel(f"backend-{language}") as (_, kc):
        shown = await run_cell(kc, "%env?")
        assert shown["reply"]["status"] == "ok", shown
        assert shown["stderr"] == "" and shown["errors"] == [], shown
        assert " ".join(shown["stdout"].split()) == ENV_HELP

        listed = await run_cell(kc, "%lsmagic")
        assert listed["reply"]["status"] == "ok", listed
        lines = listed["stdout"].rstrip("\n").split("\n")
        assert "%env NAME=VALUE sets a variable for the programs this kernel runs" in lines
        assert any(line.startswith("%pinfo NAME") for line in lines), lines
        assert len(set(lines)) == len(lines), "one line each"
        if language == "shell":
            assert any(line.startswith("%resize ROWS COLS") for line in lines), "the shell's own magics too"
        if language == "c":
            assert any(line.startswith("%flags") for line in lines), "the compiled kernels' magics too"

        unknown = await run_cell(kc, "%pinfo nosuchmagic")
        assert unknown["reply"]["status"] == "error", unknown
        assert "no magic %nosuchmagic" in unknown["stderr"]


@pytest.mark.kernel
async def test_backend_python_keeps_ipythons_own_help() -> None:
    require_programs("python3")
    async with running_kernel("backend-python") as (_, kc):
        shown = await run_cell(kc, "%env?")
        assert shown["reply"]["status"] == "ok", shown
        pages = [p for p in shown["reply"].get("payload", []) if p.get("source") == "page"]
        assert pages and "env" in pages[0]["data"]["text/plain"], shown["reply"]
        listed = await run_cell(kc, "%lsmagic")
        text = listed["stdout"] + "".join(d["data"].get("text/plain", "") for d in listed["displays"])
        assert "%env" in text and "%services" in text, text
