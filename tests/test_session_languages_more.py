"""Acceptance of the persistent-session kernels of part 2 (Haskell, R, Octave, Scheme, Julia)
through jupyter_client: state lasts across cells, errors keep it, stdin through input_request,
interrupts keep the session, no prompt or echo leaks, and no process outlives the kernel."""

from __future__ import annotations

import asyncio

import pytest

from .helpers import kernel_process_tree, pid_alive, require_programs, run_cell, running_kernel
from .test_session_languages import Cells, assert_clean

LANGUAGES = {
    "haskell": Cells(
        "backend-haskell", "ghci",
        define="value = 41 :: Int\ninc :: Int -> Int\ninc a = a + 1",
        show_value="print value",
        call="print (inc value)",
        error='ioError (userError "boom")',
        read='name <- getLine\nputStrLn ("hi " ++ name)',
        loop='putStrLn "spin"\nprint (length [1 ..])',
    ),
    "r": Cells(
        "backend-r", "R",
        define="value <- 41\ninc <- function(a) a + 1",
        show_value='cat(value, "\\n", sep = "")',
        call='cat(inc(value), "\\n", sep = "")',
        error='stop("boom")',
        read='name <- readline(); cat("hi ", name, "\\n", sep = "")',
        loop='cat("spin\\n"); while (TRUE) {}',
    ),
    "octave": Cells(
        "backend-octave", "octave-cli",
        define="value = 41;\nfunction r = inc(a)\n  r = a + 1;\nend",
        show_value="disp(value)",
        call="disp(inc(value))",
        error="error('boom')",
        read="name = input('', 's'); printf('hi %s\\n', name)",
        loop="disp('spin'); while true, end",
    ),
    "scheme": Cells(
        "backend-scheme", "guile",
        define="(define value 41)\n(define (inc a) (+ a 1))",
        show_value="(display value)(newline)",
        call="(display (inc value))(newline)",
        error='(error "boom")',
        read='(define name (read-line))\n(display (string-append "hi " name))(newline)',
        loop='(display "spin")(newline)\n(let loop () (loop))',
    ),
    "julia": Cells(
        "backend-julia", "julia",
        define="value = 41\ninc(a) = a + 1",
        show_value="println(value)",
        call="println(inc(value))",
        error='error("boom")',
        read='name = readline(); println("hi ", name)',
        loop='println("spin"); while true; yield(); end',
    ),
}

PARAMS = [pytest.param(name, id=name) for name in LANGUAGES]
STATE_PARAMS = PARAMS
EXITS = {"r": "quit(status = 4)", "octave": "exit(4)", "scheme": "(exit 4)", "julia": "exit(4)",
         "haskell": ":quit"}
DEFINING = {"haskell": "sessionOnlyName = 1", "r": "sessionOnlyName <- 1", "octave": "sessionOnlyName = 1;",
            "scheme": "(define sessionOnlyName 1)", "julia": "sessionOnlyName = 1"}
PREFIX = {"haskell": "sessionOn", "r": "sessionOn", "octave": "sessionOn", "scheme": "(sessionOn",
          "julia": "sessionOn"}
BACKGROUND = {
    "haskell": 'import System.Process\nsleeper <- spawnProcess "sleep" ["300"]',
    "r": 'sleeper <- pipe("sleep 300", open = "r")',
    "octave": "sleeper = system('sleep 300', false, 'async');",
    "scheme": '(define sleeper (let ((pid (primitive-fork))) (if (zero? pid) (execlp "sleep" "sleep" "300") pid)))',
    "julia": "sleeper = run(`sleep 300`, wait=false)",
}


@pytest.mark.parametrize("language", STATE_PARAMS)
async def test_state_lasts_across_cells_errors_and_interrupts(language: str) -> None:
    cells = LANGUAGES[language]
    require_programs(cells.program)
    async with running_kernel(cells.kernel) as (km, kc):
        first = await run_cell(kc, cells.define)
        assert first["reply"]["status"] == "ok", first
        assert_clean(first, cells.define)

        second = await run_cell(kc, cells.show_value)
        assert second["stdout"] == "41\n", second
        assert_clean(second, cells.show_value)

        third = await run_cell(kc, cells.call)
        assert third["stdout"] == "42\n", third

        fourth = await run_cell(kc, cells.error)
        assert fourth["reply"]["status"] == "error", fourth
        assert fourth["reply"]["exit_code"] != 0
        assert fourth["errors"], "an error message is published"
        assert "boom" in fourth["reply"]["evalue"] + "".join(fourth["reply"]["traceback"])
        assert "session restarted" not in fourth["stderr"]
        after_error = await run_cell(kc, cells.show_value)
        assert after_error["stdout"] == "41\n", "the error lost the session's state"

        read = await run_cell(kc, cells.read, stdin_answers=["world"])
        assert read["prompts"] == [""], read
        assert read["stdout"] == "hi world\n", read
        assert_clean(read, cells.read)

        for _ in range(2):  # twice: the first interrupt must not use up the session's ability
            looping = asyncio.ensure_future(run_cell(kc, cells.loop, timeout=60))
            for _ in range(200):
                await asyncio.sleep(0.05)
                if looping.done():
                    break
            await asyncio.sleep(1.0)
            assert not looping.done(), "the loop ended on its own"
            await km.interrupt_kernel()
            stopped = await looping
            assert stopped["reply"]["status"] == "error"
            assert stopped["reply"]["ename"] == "KeyboardInterrupt", stopped
            assert stopped["stdout"] == "spin\n", stopped
            assert "session restarted" not in stopped["stderr"], "the interrupt lost the session"

        after = await run_cell(kc, cells.call)
        assert after["stdout"] == "42\n", "the interrupt lost the session's state"


async def test_haskell_interrupt_keeps_bindings() -> None:
    cells = LANGUAGES["haskell"]
    require_programs(cells.program)
    async with running_kernel(cells.kernel) as (km, kc):
        assert (await run_cell(kc, cells.define))["reply"]["status"] == "ok"
        for _ in range(2):
            looping = asyncio.ensure_future(run_cell(kc, cells.loop, timeout=60))
            await asyncio.sleep(3.0)
            assert not looping.done(), "the loop ended on its own"
            await km.interrupt_kernel()
            stopped = await looping
            assert stopped["reply"]["ename"] == "KeyboardInterrupt", stopped
            assert stopped["stdout"] == "spin\n"
            assert "session restarted" not in stopped["stderr"]
        assert (await run_cell(kc, cells.call))["stdout"] == "42\n"
        read = await run_cell(kc, cells.read, stdin_answers=["world"])
        assert read["stdout"] == "hi world\n" and read["prompts"] == [""], read


@pytest.mark.parametrize("language", PARAMS)
async def test_interpreter_exit_restarts_the_session_with_a_notice(language: str) -> None:
    cells = LANGUAGES[language]
    require_programs(cells.program)
    async with running_kernel(cells.kernel) as (km, kc):
        await run_cell(kc, cells.define)
        ended = await run_cell(kc, EXITS[language])
        assert ended["reply"]["status"] == "error", ended
        assert ended["reply"]["ename"] == "SessionRestarted"
        if language != "haskell":
            assert ended["reply"]["exit_code"] == 4
        assert "session restarted, state lost" in ended["stderr"]
        fresh = await run_cell(kc, cells.show_value)
        assert fresh["reply"]["status"] == "error", "a new session has no old state"
        assert "41" not in fresh["stdout"]
        again = await run_cell(kc, cells.define + "\n")
        assert again["reply"]["status"] == "ok"
        assert (await run_cell(kc, cells.call))["stdout"] == "42\n"


@pytest.mark.parametrize("language", PARAMS)
async def test_completion_offers_names_defined_in_the_session(language: str) -> None:
    cells = LANGUAGES[language]
    require_programs(cells.program)
    async with running_kernel(cells.kernel) as (km, kc):
        await run_cell(kc, DEFINING[language])
        code = PREFIX[language]
        reply = await kc.complete(code, len(code), reply=True, timeout=30)
        matches = reply["content"]["matches"]
        start = reply["content"]["cursor_start"]
        assert "sessionOnlyName" in matches, matches
        assert code[start:] == "sessionOn"


@pytest.mark.parametrize("language", PARAMS)
async def test_no_process_outlives_the_kernel(language: str) -> None:
    cells = LANGUAGES[language]
    require_programs(cells.program)
    async with running_kernel(cells.kernel) as (km, kc):
        started = await run_cell(kc, BACKGROUND[language])
        assert started["reply"]["status"] == "ok", started
        tree = kernel_process_tree(km.provisioner.process.pid)
        assert len(tree) >= 3, "kernel, interpreter and the background sleep should be running"
    for _ in range(100):
        if not any(pid_alive(pid) for pid in tree):
            break
        await asyncio.sleep(0.1)
    assert [pid for pid in tree if pid_alive(pid)] == []
