"""is_complete from the language itself, with the continuation's indent (issue 19).

The kernel asks the interpreter's parser when the session is idle (R's ``parse``, Node's ``vm.Script``,
Lua's ``load``, PHP's ``token_get_all``, Octave's parser, Guile's ``read``), ``bash -n`` for the shell,
and falls back to the block rules of ``kernels/completeness_rules.py`` otherwise. Each language's
``PARSER_ONLY`` sample is a syntax error that the rules cannot see (they call it complete): the kernel
calling it invalid shows that the interpreter answered.
"""

from __future__ import annotations

import asyncio

import pytest

from backend_kernel_provisioner.kernels import completeness_rules, syntax

from .helpers import require_programs, run_cell, running_kernel


def rules(language: str, code: str) -> str:
    return completeness_rules.status(language, code, syntax.bracket_status)[0]


#: language: (cases judged without the interpreter, by the rules)
RULE_CASES = {
    "lua": [("function f(x)", "incomplete"), ("function f(x)\n  return x * 2", "incomplete"),
            ("function f(x)\n  return x * 2\nend", "complete"), ("print('end')", "complete"),
            ("if a then b() elseif c then d() end", "complete"), ("f(function() return 1 end)", "complete"),
            ("x = ", "incomplete"), ("s = [==[long", "incomplete"), ("end", "invalid"), (")", "invalid")],
    "octave": [("for i = 1:3", "incomplete"), ("for i = 1:3\n  disp(i)\nend", "complete"),
               ("x(end) = 1", "complete"), ("disp('for')", "complete"), ("y = x'", "complete"),
               ("a = 1 + ...", "incomplete"), ("%{\nnote", "incomplete"), ("function y = f(x)", "incomplete"),
               ("end", "invalid")],
    "r": [("x <- 1 +", "incomplete"), ("f <- function(x)", "incomplete"), ("if (x)", "incomplete"),
          ("if (x) f(1)", "complete"), ("x <- 1 # +", "complete"), ("x %in%", "incomplete")],
    "haskell": [("f x =", "incomplete"), ("main = do", "incomplete"), ("x = 1", "complete"),
                ("main = do\n  putStrLn \"a\"", "incomplete"), ("main = do\n  putStrLn \"a\"\n", "complete"),
                (":{\nf x = 1", "incomplete"), ("x' = 2", "complete")],
    "julia": [("function f(x)", "incomplete"), ("[i for i in 1:3]", "complete"), ("x[end]", "complete"),
              ("for i in 1:3\n  println(i)\nend", "complete")],
    "nodejs": [("const a = 1 +", "incomplete"), ("i++", "complete"), ("x = 1 // note.", "complete"),
               ("const s = `open", "incomplete")],
    "scheme": [("(define (f x)", "incomplete"), ("(display #\\()", "complete"), ("; (", "complete")],
    "shell": [("if true; then", "incomplete"), ("echo ${#x}", "complete"), ("echo a \\", "incomplete"),
              ("echo a |", "incomplete")],
}


@pytest.mark.parametrize(("language", "code", "expected"),
                         [(lang, code, want) for lang, cases in RULE_CASES.items() for code, want in cases])
def test_block_rules(language: str, code: str, expected: str) -> None:
    assert rules(language, code) == expected


def test_rules_indent_one_level_after_an_opener() -> None:
    assert completeness_rules.status("lua", "function f(x)", syntax.bracket_status) == ("incomplete", "  ")
    assert completeness_rules.status("lua", "function f(x)\n  y = 1", syntax.bracket_status) == ("incomplete", "  ")
    assert completeness_rules.status("nodejs", "if (x) {", syntax.bracket_status) == ("incomplete", "    ")


#: kernel: (programs, a cell that starts the session, cases, a syntax error only the parser sees, programs
#: the "busy" check needs)
KERNELS = {
    "lua": (("lua5.4",), "x = 1", [
        ("function f(x)", "incomplete", "  "), ("function f(x)\n  return x * 2\nend", "complete", None),
        ("s = [[open", "incomplete", None), ("print(f(21))", "complete", None), ("%env?", "complete", None)],
        "x = = 1"),
    "octave": (("octave-cli",), "x = 1;", [
        ("for i = 1:3", "incomplete", "  "), ("for i = 1:3\n  disp(i)\nend", "complete", None),
        ("function y = f(x)", "incomplete", None), ("%{\nnote", "incomplete", None), ("y = x'", "complete", None)],
        "x = = 1"),
    "r": (("R",), "x <- 1", [
        ("x <- 1 +", "incomplete", "  "), ("f <- function(x)", "incomplete", None),
        ("if (TRUE) {", "incomplete", None), ("x <- 'open", "incomplete", None), ("x <- 1", "complete", None)],
        "1 2"),
    "nodejs": (("node",), "var x = 1", [
        ("const a = 1 +", "incomplete", "    "), ("const s = `open", "incomplete", None),
        ("await f(", "incomplete", None), ("await Promise.resolve(1)", "complete", None)],
        "let let = 1"),
    "php": (("php",), "$x = 1;", [
        ("function f() {", "incomplete", "    "), ("'a string going on", "incomplete", None),
        ("<?php\necho 1;", "complete", None)],
        "$a = = 1;"),
    "scheme": (("guile",), "(define x 1)", [
        ("(define (f x)", "incomplete", "  "), ('(display "open', "incomplete", None),
        ("(display #\\()", "complete", None)],
        "#<foo>"),
    "shell": (("bash",), "x=1", [
        ("if true; then", "incomplete", "  "), ("if true; then\n  echo yes\nfi", "complete", None),
        ("for i in 1 2; do", "incomplete", None), ("cat <<EOF\nabc", "incomplete", None), ("fi", "invalid", None)],
        "then echo x"),
    "haskell": (("ghci",), "x = 1", [
        ("f x =", "incomplete", "  "), ("main = do", "incomplete", "  "), ("x = 1", "complete", None),
        ("main = do\n  putStrLn \"a\"\n", "complete", None)],
        ""),
}


async def is_complete(kc, code: str) -> dict:
    msg_id = kc.is_complete(code)
    while True:
        reply = await kc.get_shell_msg(timeout=30)
        if reply["parent_header"].get("msg_id") == msg_id:
            assert reply["msg_type"] == "is_complete_reply"
            return reply["content"]


@pytest.mark.kernel
@pytest.mark.parametrize("language", sorted(KERNELS))
async def test_the_interpreter_judges_the_input(language: str) -> None:
    programs, warm_up, cases, parser_only = KERNELS[language]
    require_programs(*programs)
    if parser_only:
        assert rules(language, parser_only) == "complete", "the sample must be one the rules cannot judge"
    async with running_kernel(f"backend-{language}") as (_, kc):
        for code, expected, _ in cases:  # before the session starts: the rules (or bash -n) answer
            assert (await is_complete(kc, code))["status"] == expected, ("before the session", code)
        started = await run_cell(kc, warm_up)
        assert started["reply"]["status"] == "ok", started
        for code, expected, indent in cases:
            reply = await is_complete(kc, code)
            assert reply["status"] == expected, (code, reply)
            if indent is not None:
                assert reply["indent"] == indent, (code, reply)
        if parser_only:
            assert (await is_complete(kc, parser_only))["status"] == "invalid", parser_only
        after = await run_cell(kc, warm_up)  # the requests left the session as it was
        assert after["reply"]["status"] == "ok" and not after["stderr"], after


#: kernel: (programs, a cell that runs for a few seconds, an input the rules or bash -n judge incomplete)
BUSY = {
    "lua": (("lua5.4", "sleep"), "os.execute('sleep 3') print('slept')", "function f(x)"),
    "shell": (("bash", "sleep"), "sleep 3; echo slept", "if true; then"),
}


@pytest.mark.kernel
@pytest.mark.parametrize("language", sorted(BUSY))
async def test_is_complete_beside_a_running_cell(language: str) -> None:
    """A running cell is never waited for: the answer comes before the cell's reply, the cell is unharmed."""
    programs, cell, code = BUSY[language]
    require_programs(*programs)
    async with running_kernel(f"backend-{language}") as (_, kc):
        assert (await run_cell(kc, "x=1" if language == "shell" else "x = 1"))["reply"]["status"] == "ok"
        running = kc.execute(cell)
        await asyncio.sleep(0.5)
        asked = kc.is_complete(code)
        order = []
        while len(order) < 2:
            msg = await kc.get_shell_msg(timeout=60)
            if msg["parent_header"].get("msg_id") in (running, asked):
                order.append((msg["msg_type"], msg["content"]))
        assert order[0] == ("is_complete_reply", {"status": "incomplete", "indent": "  "}), order
        assert order[1][0] == "execute_reply" and order[1][1]["status"] == "ok", order
