"""Acceptance of the persistent-session kernels (Node.js, Lua, PHP, shell) through jupyter_client:
state lasts across cells, errors keep it, stdin through input_request, interrupts keep the session,
and no prompt or echo of the input leaks into the output."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from .helpers import kernel_process_tree, pid_alive, require_programs, run_cell, running_kernel


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
}

PARAMS = [pytest.param(name, id=name) for name in LANGUAGES]
LEAKS = ("> ", "$ ", "php >", "node>", "__bk", "BACKEND_SESSION")


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
        assert second["stdout"] == "41\n"
        assert_clean(second, cells.show_value)

        third = await run_cell(kc, cells.call)
        assert third["stdout"] == "42\n"

        fourth = await run_cell(kc, cells.error)
        assert fourth["reply"]["status"] == "error"
        assert fourth["reply"]["exit_code"] != 0
        assert fourth["errors"], "an error message is published"
        assert "session restarted" not in fourth["stderr"]
        after_error = await run_cell(kc, cells.show_value)
        assert after_error["stdout"] == "41\n", "the error lost the session's state"

        read = await run_cell(kc, cells.read, stdin_answers=["world"])
        assert read["prompts"] == [""], read
        assert read["stdout"] == "hi world\n"
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
            assert stopped["reply"]["ename"] == "KeyboardInterrupt"
            assert stopped["stdout"] == "spin\n"
            assert "session restarted" not in stopped["stderr"], "the interrupt lost the session"

        after = await run_cell(kc, cells.call)
        assert after["stdout"] == "42\n", "the interrupt lost the session's state"


@pytest.mark.parametrize("language", PARAMS)
async def test_interpreter_exit_restarts_the_session_with_a_notice(language: str) -> None:
    cells = LANGUAGES[language]
    require_programs(cells.program)
    exits = {"nodejs": "process.exit(4)", "lua": "os.exit(4)", "php": "exit(4);", "shell": "exit 4"}
    async with running_kernel(cells.kernel) as (km, kc):
        await run_cell(kc, cells.define)
        ended = await run_cell(kc, exits[language])
        assert ended["reply"]["status"] == "error"
        assert ended["reply"]["exit_code"] == 4
        assert "session restarted, state lost" in ended["stderr"]
        fresh = await run_cell(kc, cells.show_value)
        assert fresh["reply"]["status"] in ("ok", "error")
        assert "41" not in fresh["stdout"], "a new session has no old state"
        again = await run_cell(kc, cells.define + "\n")
        assert again["reply"]["status"] == "ok"
        assert (await run_cell(kc, cells.call))["stdout"] == "42\n"


@pytest.mark.parametrize("language", PARAMS)
async def test_completion_offers_names_defined_in_the_session(language: str) -> None:
    cells = LANGUAGES[language]
    require_programs(cells.program)
    defining = {"nodejs": "const sessionOnlyName = 1;", "lua": "sessionOnlyName = 1",
                "php": "$sessionOnlyName = 1;", "shell": "sessionOnlyName=1"}
    prefix = {"nodejs": "sessionOn", "lua": "sessionOn", "php": "$sessionOn", "shell": "echo $sessionOn"}
    async with running_kernel(cells.kernel) as (km, kc):
        await run_cell(kc, defining[language])
        code = prefix[language]
        reply = await kc.complete(code, len(code), reply=True, timeout=30)
        matches = reply["content"]["matches"]
        start = reply["content"]["cursor_start"]
        assert any(code[start:] + m[len(code[start:]):] == m and "sessionOnlyName" in m for m in matches), matches


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
    background = {"nodejs": "require('child_process').spawn('sleep', ['300']); 1",
                  "lua": "sleeper = io.popen('sleep 300')", "php": "$sleeper = proc_open('sleep 300', [], $pipes);",
                  "shell": "sleep 300 &"}
    async with running_kernel(cells.kernel) as (km, kc):
        started = await run_cell(kc, background[language])
        assert started["reply"]["status"] == "ok", started
        tree = kernel_process_tree(km.provisioner.process.pid)
        assert len(tree) >= 3, "kernel, interpreter and the background sleep should be running"
    for _ in range(100):
        if not any(pid_alive(pid) for pid in tree):
            break
        await asyncio.sleep(0.1)
    assert [pid for pid in tree if pid_alive(pid)] == []
