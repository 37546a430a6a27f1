"""Acceptance of the persistent-session kernels (Node.js, Lua, PHP, shell, Haskell, R, Octave,
Scheme, Julia) through jupyter_client: state lasts across cells, errors keep it, stdin through
input_request, interrupts keep the session, no prompt or echo of the input leaks into the output,
and no process outlives the kernel."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from .helpers import kernel_process_tree, pid_alive, require_programs, run_cell, running_kernel

pytestmark = pytest.mark.kernel  # every test starts a session kernel through running_kernel


@dataclass(frozen=True)
class Cells:
    """One language's cells for the acceptance scenario."""

    kernel: str
    program: str
    define: str      # defines value 41 and a function adding one
    show_value: str  # prints the value
    call: str        # prints the function applied to the value
    error: str       # fails
    read: str        # reads a line and prints "hi <line>"
    loop: str        # prints "spin" then loops forever
    error_says: str = ""  # text the error cell's evalue or traceback must contain ("" = not checked)


LANGUAGES = {
    "nodejs": Cells(
        "backend-nodejs", "node",
        define="let value = 41;\nfunction inc(a) { return a + 1; }",
        show_value="console.log(value)",
        call="console.log(inc(value))",
        error="undefinedName.field",
        read="const name = input(); console.log('hi ' + name)",
        loop="console.log('spin'); while (true) {}",
    ),
    "lua": Cells(
        "backend-lua", "lua5.4",
        define="value = 41\nfunction inc(a) return a + 1 end",
        show_value="print(value)",
        call="print(inc(value))",
        error="error('boom')",
        read="local name = io.read(); print('hi ' .. name)",
        loop="print('spin') while true do end",
    ),
    "php": Cells(
        "backend-php", "php",
        define="<?php\n$value = 41;\nfunction inc($a) { return $a + 1; }",
        show_value='echo $value, "\\n";',
        call='echo inc($value), "\\n";',
        error="throw new RuntimeException('boom');",
        read='$name = trim(fgets(STDIN)); echo "hi $name\\n";',
        loop='echo "spin\\n"; while (true) {}',
    ),
    "shell": Cells(
        "backend-shell", "bash",
        define="value=41\ninc() { echo $(( $1 + 1 )); }",
        show_value="echo $value",
        call="inc $value",
        error="ls /no/such/folder",
        read='read -r name; echo "hi $name"',
        loop="echo spin; while true; do :; done",
    ),
    "haskell": Cells(
        "backend-haskell", "ghci",
        define="value = 41 :: Int\ninc :: Int -> Int\ninc a = a + 1",
        show_value="print value",
        call="print (inc value)",
        error='ioError (userError "boom")',
        error_says="boom",
        read='name <- getLine\nputStrLn ("hi " ++ name)',
        loop='putStrLn "spin"\nprint (length [1 ..])',
    ),
    "r": Cells(
        "backend-r", "R",
        define="value <- 41\ninc <- function(a) a + 1",
        show_value='cat(value, "\\n", sep = "")',
        call='cat(inc(value), "\\n", sep = "")',
        error='stop("boom")',
        error_says="boom",
        read='name <- readline(); cat("hi ", name, "\\n", sep = "")',
        loop='cat("spin\\n"); while (TRUE) {}',
    ),
    "octave": Cells(
        "backend-octave", "octave-cli",
        define="value = 41;\nfunction r = inc(a)\n  r = a + 1;\nend",
        show_value="disp(value)",
        call="disp(inc(value))",
        error="error('boom')",
        error_says="boom",
        read="name = input('', 's'); printf('hi %s\\n', name)",
        loop="disp('spin'); while true, end",
    ),
    "scheme": Cells(
        "backend-scheme", "guile",
        define="(define value 41)\n(define (inc a) (+ a 1))",
        show_value="(display value)(newline)",
        call="(display (inc value))(newline)",
        error='(error "boom")',
        error_says="boom",
        read='(define name (read-line))\n(display (string-append "hi " name))(newline)',
        loop='(display "spin")(newline)\n(let loop () (loop))',
    ),
    "julia": Cells(
        "backend-julia", "julia",
        define="value = 41\ninc(a) = a + 1",
        show_value="println(value)",
        call="println(inc(value))",
        error='error("boom")',
        error_says="boom",
        read='name = readline(); println("hi ", name)',
        loop='println("spin"); while true; yield(); end',
    ),
}

PARAMS = [pytest.param(name, id=name) for name in LANGUAGES]
LEAKS = ("> ", "$ ", "php >", "node>", "__bk", "BACKEND_SESSION")
# A cell ending the interpreter, and the exit status the reply must carry (None: not checked,
# GHCi's :quit ends with status 0).
EXITS = {
    "nodejs": ("process.exit(4)", 4), "lua": ("os.exit(4)", 4), "php": ("exit(4);", 4), "shell": ("exit 4", 4),
    "r": ("quit(status = 4)", 4), "octave": ("exit(4)", 4), "scheme": ("(exit 4)", 4), "julia": ("exit(4)", 4),
    "haskell": (":quit", None),
}
# Where using the value after a restart must fail (Lua prints nil, the shell an empty line).
UNDEFINED_FAILS = {"haskell", "r", "octave", "scheme", "julia"}
DEFINING = {
    "nodejs": "const sessionOnlyName = 1;", "lua": "sessionOnlyName = 1", "php": "$sessionOnlyName = 1;",
    "shell": "sessionOnlyName=1", "haskell": "sessionOnlyName = 1", "r": "sessionOnlyName <- 1",
    "octave": "sessionOnlyName = 1;", "scheme": "(define sessionOnlyName 1)", "julia": "sessionOnlyName = 1",
}
PREFIX = {
    "nodejs": "sessionOn", "lua": "sessionOn", "php": "$sessionOn", "shell": "echo $sessionOn",
    "haskell": "sessionOn", "r": "sessionOn", "octave": "sessionOn", "scheme": "(sessionOn", "julia": "sessionOn",
}
# Where completion must replace exactly the bare name with the bare name.
BARE_NAME_COMPLETION = {"haskell", "r", "octave", "scheme", "julia"}
BACKGROUND = {
    "nodejs": "require('child_process').spawn('sleep', ['300']); 1",
    "lua": "sleeper = io.popen('sleep 300')",
    "php": "$sleeper = proc_open('sleep 300', [], $pipes);",
    "shell": "sleep 300 &",
    "haskell": 'import System.Process\nsleeper <- spawnProcess "sleep" ["300"]',
    "r": 'sleeper <- pipe("sleep 300", open = "r")',
    "octave": "sleeper = system('sleep 300', false, 'async');",
    "scheme": '(define sleeper (let ((pid (primitive-fork))) (if (zero? pid) (execlp "sleep" "sleep" "300") pid)))',
    "julia": "sleeper = run(`sleep 300`, wait=false)",
}


def assert_clean(outputs: dict, code: str) -> None:
    """No prompt strings and no echo of the cell in what the cell printed."""
    for stream in ("stdout", "stderr"):
        text = outputs[stream]
        assert not any(text.startswith(leak) or f"\n{leak}" in text for leak in LEAKS), (stream, text)
        first_line = code.strip().splitlines()[0]
        assert first_line not in text, (stream, text)


@pytest.mark.parametrize("language", PARAMS)
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
        if cells.error_says:
            assert cells.error_says in fourth["reply"]["evalue"] + "".join(fourth["reply"]["traceback"])
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
    exit_cell, exit_code = EXITS[language]
    async with running_kernel(cells.kernel) as (km, kc):
        await run_cell(kc, cells.define)
        ended = await run_cell(kc, exit_cell)
        assert ended["reply"]["status"] == "error", ended
        assert ended["reply"]["ename"] == "SessionRestarted"
        if exit_code is not None:
            assert ended["reply"]["exit_code"] == exit_code
        assert "session restarted, state lost" in ended["stderr"]
        fresh = await run_cell(kc, cells.show_value)
        allowed = ("error",) if language in UNDEFINED_FAILS else ("ok", "error")
        assert fresh["reply"]["status"] in allowed, "a new session has no old state"
        assert "41" not in fresh["stdout"], "a new session has no old state"
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
        typed = code[reply["content"]["cursor_start"]:]
        assert any(m.startswith(typed) and "sessionOnlyName" in m for m in matches), matches
        if language in BARE_NAME_COMPLETION:
            assert "sessionOnlyName" in matches, matches
            assert typed == "sessionOn"


async def test_node_top_level_await_and_require_relative_to_cwd(tmp_path) -> None:
    require_programs("node")
    (tmp_path / "helper.js").write_text("module.exports = { twice: (x) => 2 * x };\n")
    async with running_kernel("backend-nodejs", cwd=str(tmp_path)) as (km, kc):
        waited = await run_cell(kc, "const got = await new Promise((r) => setTimeout(() => r(21), 50));")
        assert waited["reply"]["status"] == "ok"
        used = await run_cell(kc, "const helper = require('./helper'); console.log(helper.twice(got))")
        assert used["stdout"] == "42\n", used
        value = await run_cell(kc, "got + 1")
        assert value["displays"][0]["data"]["text/plain"] == "22"
        stuck = asyncio.ensure_future(run_cell(kc, "await new Promise(() => {})", timeout=60))
        await asyncio.sleep(1.5)
        await km.interrupt_kernel()
        assert (await stuck)["reply"]["ename"] == "KeyboardInterrupt"
        assert (await run_cell(kc, "console.log(got)"))["stdout"] == "21\n"


async def test_php_redefinition_is_refused_without_losing_the_session() -> None:
    require_programs("php")
    async with running_kernel("backend-php") as (km, kc):
        await run_cell(kc, "function twice($x) { return 2 * $x; }")
        again = await run_cell(kc, "function twice($x) { return 0; }")
        assert again["reply"]["status"] == "error"
        assert "Cannot redeclare function twice()" in again["reply"]["evalue"]
        assert (await run_cell(kc, "echo twice(21);"))["stdout"] == "42"


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


@pytest.mark.kernel
async def test_an_r_the_cell_starts_does_not_load_the_kernels_loader() -> None:
    """The loader is the kernel's R profile (R_PROFILE_USER); an ``Rscript`` started by a cell is a plain R."""
    require_programs("R", "Rscript")
    async with running_kernel("backend-r") as (_, kc):
        out = await run_cell(kc, "cat(system('Rscript -e \"cat(nchar(Sys.getenv(\\'R_PROFILE_USER\\')), 6 * 7)\"', "
                                 "intern = TRUE), '\\n')")
        assert out["stdout"].split() == ["0", "42"], out
