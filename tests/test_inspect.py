"""Inspect (Shift-Tab) in every kernel, from the language itself (issue 19).

For each language, through a real kernel: a function the user defined shows its signature (the
parameter names), and a name of the language's library shows what the language documents (R's help
page, GHCi's type, Octave's help, C's manual page, ``go doc``, ``javap``...). Compiled kernels find
declarations in the cell being edited and in the cells they ran. While a cell runs, a session kernel
answers from the recorded declarations without waiting for the interpreter.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass

import pytest

from backend_kernel_provisioner.kernels.declarations import find_declarations, name_at_cursor, syntax_of

from .helpers import require_programs, run_cell, running_kernel
from .test_interrupt_hardening import runs_sleep


@dataclass(frozen=True)
class Case:
    """One language: the cell defining a function, and (code up to the cursor, words the answer must hold)."""

    kernel: str
    programs: tuple[str, ...]
    define: str
    user: tuple[str, tuple[str, ...]]
    builtin: tuple[str, tuple[str, ...]] | None = None
    builtin_needs: tuple[str, ...] = ()  # files the builtin's documentation comes from (skipped without)


PRINTF_PAGE = ("/usr/share/man/man3/printf.3.gz",)

CASES = {
    "nodejs": Case("backend-nodejs", ("node",), "function inc(a, b = 2) { return a + b; }",
                   ("inc(", ("Signature: inc(a, b = 2)", "return a + b")),
                   ("path.join(", ("Signature: join(...args)",))),
    "lua": Case("backend-lua", ("lua5.4",), "function inc(a, b) return a + b end",
                ("inc(", ("Signature: inc(a, b)", "Type:      function")),
                ("string.rep(", ("string.rep(s, n [, sep])",))),
    "php": Case("backend-php", ("php",), "/** Adds b to a. */\nfunction inc(int $a, $b = 2): int { return $a + $b; }",
                ("inc(", ("inc(int $a, $b = 2): int", "Adds b to a."))
                , ("str_repeat(", ("str_repeat(string $string, int $times): string",))),
    "shell": Case("backend-shell", ("bash",), "inc() { echo $(( $1 + 1 )); }",
                  ("x=$(inc ", ("inc is a shell function", "echo $(( $1 + 1 ))")),
                  ("read ", ("read is a shell builtin", "Read a line from the standard input"))),
    "scheme": Case("backend-scheme", ("guile",), '(define (inc a b) "Add a and b." (+ a b))',
                   ("(display (inc ", ("Signature: (inc a b)", "Add a and b.")),
                   ("(string-append ", ("string-append", "concatenation of the given strings"))),
    "r": Case("backend-r", ("R",), "inc <- function(a, b = 2) {\n  a + b\n}",
              ("x <- inc(", ("Signature: inc(a, b = 2)", "a + b")),
              ("paste(", ('sep = " "', "Concatenate Strings"))),
    "octave": Case("backend-octave", ("octave-cli",),
                   "function r = addone (x)\n  % ADDONE adds one to x.\n  r = x + 1;\nend",
                   ("addone(", ("ADDONE adds one to x", "function r = addone (x)")),
                   ("linspace(", ("linspace (START, END)", "linearly spaced"))),
    "haskell": Case("backend-haskell", ("ghci",), "inc :: Int -> Int\ninc a = a + 1",
                    ("print (inc ", ("inc :: Int -> Int",)),
                    ("map ", ("map :: (a -> b) -> [a] -> [b]", "GHC.Base"))),
    "julia": Case("backend-julia", ("julia",), "inc(a, b = 2) = a + b",
                  ("inc(", ("inc(a, b = 2)",))),
    "c": Case("backend-c", ("gcc",), "#include <stdio.h>\nint add(int a, int b) { return a + b; }\n"
              "int main(void) { printf(\"%d\\n\", add(1, 2)); return 0; }",
              ("int main(void) { return add(", ("int add(int a, int b)", "cell [1], line 2")),
              ("printf(", ("printf(3)", "int printf(const char *restrict format, ...);")), PRINTF_PAGE),
    "cpp": Case("backend-cpp", ("g++",), "#include <cstdio>\nstruct Point { int x; int y; };\n"
                "int add(int a, int b) { return a + b; }\nint main() { std::printf(\"%d\\n\", add(1, 2)); }",
                ("int main() { Point p{1, 2}; return add(", ("int add(int a, int b)", "cell [1], line 3")),
                ("std::printf(", ("int printf(const char *restrict format, ...);",)), PRINTF_PAGE),
    "go": Case("backend-go", ("go",), 'package main\nimport "fmt"\nfunc add(a, b int) int { return a + b }\n'
               "func main() { fmt.Println(add(1, 2)) }",
               ("x := add(", ("func add(a, b int) int", "cell [1], line 3")),
               ("strings.Repeat(", ("func Repeat(s string, count int) string", "copies of the string")), ()),
    "rust": Case("backend-rust", ("rustc",), 'fn add(a: i32, b: i32) -> i32 { a + b }\nfn main() { println!("{}", add(1, 2)); }',
                 ("let x = add(", ("fn add(a: i32, b: i32) -> i32", "cell [1], line 1"))),
    "java": Case("backend-java", ("javac", "java"), "public class Main {\n  static int add(int a, int b) { return a + b; }\n"
                 "  public static void main(String[] args) { System.out.println(add(1, 2)); }\n}",
                 ("int x = add(", ("static int add(int a, int b)", "cell [1], line 2")),
                 ("Math.max(", ("java.lang.Math", "public static int max(int, int);"))),
}


async def inspect(kc, code: str, cursor: int | None = None, timeout: float = 60) -> dict:
    """The inspect_reply's content for ``code`` with the cursor at ``cursor`` (default: the end)."""
    msg_id = kc.inspect(code, len(code) if cursor is None else cursor)
    while True:
        reply = await kc.get_shell_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"]


def assert_shows(content: dict, words: tuple[str, ...], what: str) -> None:
    assert content["status"] == "ok", content
    assert content["found"] is True, f"{what}: nothing found: {content}"
    text = content["data"]["text/plain"]
    for word in words:
        assert word in text, f"{what}: {word!r} is not in:\n{text}"


@pytest.mark.kernel
@pytest.mark.parametrize("language", sorted(CASES))
async def test_inspect_user_function_and_builtin(language: str) -> None:
    case = CASES[language]
    require_programs(*case.programs)
    async with running_kernel(case.kernel) as (_km, kc):
        done = await run_cell(kc, case.define, timeout=180)
        assert done["reply"]["status"] == "ok", done
        code, words = case.user
        assert_shows(await inspect(kc, code), words, f"{language}: the user's function")
        missing = await inspect(kc, "no_such_name_anywhere")
        assert missing["status"] == "ok" and missing["found"] is False, missing
        if case.builtin is None:
            return
        if not all(os.path.exists(path) for path in case.builtin_needs):
            pytest.skip(f"documentation not installed: missing {', '.join(case.builtin_needs)}")
        code, words = case.builtin
        assert_shows(await inspect(kc, code), words, f"{language}: the library's {code!r}")


@pytest.mark.kernel
async def test_compiled_kernel_finds_declarations_of_the_cell_being_edited() -> None:
    """Nothing ran yet: the declaration comes from the code sent with the request (the cursor in its middle)."""
    require_programs("gcc")
    code = "struct pair { int a; int b; };\nint twice(int x) { return 2 * x; }\nint main(void) { return twice(3) - 6; }"
    async with running_kernel("backend-c") as (_km, kc):
        content = await inspect(kc, code, code.index("twice(3)") + 2)
        assert_shows(content, ("int twice(int x)", "this cell, line 2"), "C")
        content = await inspect(kc, code, code.index("pair") + 1)
        assert_shows(content, ("struct pair { int a; int b; }",), "C")


@pytest.mark.kernel
async def test_magic_help_through_inspect() -> None:
    require_programs("lua5.4")
    async with running_kernel("backend-lua") as (_km, kc):
        assert_shows(await inspect(kc, "%env"), ("%env NAME=VALUE",), "%env")


@pytest.mark.kernel
async def test_inspect_while_a_cell_runs_answers_from_the_recorded_cells() -> None:
    """The interpreter is busy: the answer comes at once from the cell that defined the name."""
    require_programs("bash", "sleep")
    async with running_kernel("backend-shell") as (km, kc):
        await run_cell(kc, "inc() { echo $(( $1 + 1 )); }")
        cell = kc.execute("sleep 100")
        started = asyncio.Event()
        for _ in range(600):
            if await runs_sleep(km, started):
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the cell never started its `sleep 100`")
        begin = time.perf_counter()
        content = await inspect(kc, "inc ", timeout=30)
        assert time.perf_counter() - begin < 5.0, "the inspection waited for the running cell"
        assert_shows(content, ("inc()", "cell [1], line 1"), "busy shell")
        assert_shows(await inspect(kc, "echo ", timeout=30), ("a keyword or common name", "A cell is running"),
                     "busy shell, keyword")
        assert await runs_sleep(km, started), "the cell should still be running"
        await km.interrupt_kernel()
        while True:
            reply = await kc.get_shell_msg(timeout=30)
            if reply["parent_header"].get("msg_id") == cell:
                break
        # Free again: the shell itself answers (help of the builtin, not the keyword table).
        assert_shows(await inspect(kc, "echo "), ("echo is a shell builtin",), "shell after the cell")


@pytest.mark.parametrize(("language", "code", "expected"), [
    ("R", "x <- paste(1, ", "paste"),
    ("R", "utils::head", "utils::head"),
    ("javascript", "Math.max(", "Math.max"),
    ("javascript", "f(a, g(b), ", "f"),
    ("javascript", "f('(', ", "f"),
    ("scheme", '(string-append "a" ', "string-append"),
    ("haskell", "print (length ", "length"),
    ("haskell", "x = foldr ", "foldr"),
    ("bash", "if grep -q x file; then sed ", "sed"),
    ("c++", "std::sort(", "std::sort"),
    ("php", "$value", "$value"),
    ("lua", "io.stdout:write(", "io.stdout:write"),
    ("c", "int x = 1;", ""),
])
def test_name_at_cursor(language: str, code: str, expected: str) -> None:
    assert name_at_cursor(code, len(code), syntax_of(language))[0] == expected


def test_declarations_skip_calls_and_returns() -> None:
    source = "int add(int a, int b) {\n  return add(a, 0) + b;\n}\nint main(void) { add(1, 2); return 0; }\n"
    found = find_declarations("add", [("cell [1]", source)], syntax_of("c"))
    assert found == [("cell [1]", "int add(int a, int b)", 1)]



def test_every_session_loader_but_julias_is_asked() -> None:
    """A loader not in INSPECTING_LOADERS is never sent `inspect` (it might run the name as code)."""
    import importlib

    from backend_kernel_provisioner.common.languages import LANGUAGES
    from backend_kernel_provisioner.kernels.inspection import INSPECTING_LOADERS
    from backend_kernel_provisioner.kernels.session import LOADERS_DIR, SessionKernel

    loaders = set()
    for key in LANGUAGES:
        if key == "python":  # ipykernel's IPython kernel, with its own inspection
            continue
        recipe = importlib.import_module(f"backend_kernel_provisioner.kernels.languages.{key}").kernel_class
        if issubclass(recipe, SessionKernel):
            loaders.add(recipe.loader)
    assert loaders - INSPECTING_LOADERS == {"julia_loader.jl"}
    for loader in INSPECTING_LOADERS:
        assert "inspect" in (LOADERS_DIR / loader).read_text(), loader
