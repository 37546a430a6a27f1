"""Interrupts of cells blocked on stdin or on a subprocess (issue 15, "Interrupt").

Every interrupted cell must end with exactly one reply: status ``error``, ename
``KeyboardInterrupt``, exit code 130; nothing after the blocking call may run; the
interpreter keeps its state; and the next cell gets its reply. The interrupt is sent
only once the kernel is really blocked: after its ``input_request``, or once the
``sleep`` the cell started shows up in the kernel's process tree.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from .helpers import kernel_process_tree, require_programs, run_cell, running_kernel

pytestmark = pytest.mark.kernel  # every test starts a real kernel


@dataclass(frozen=True)
class Cells:
    """One language's cells; ``show`` prints the value ``define`` set, as ``shown``."""

    kernel: str
    program: str
    define: str
    show: str
    read_then_print: str   # reads a line of stdin, then prints "after"
    sleep_then_print: str  # runs `sleep 100` as a subprocess, then prints "after"
    shown: str = "41"


LANGUAGES = {
    "python": Cells("backend-python", "python3", "value = 41", "print(value)",
                    "name = input()\nprint('after')",
                    "import subprocess\nsubprocess.run(['sleep', '100'])\nprint('after')"),
    "r": Cells("backend-r", "R", "value <- 41", 'cat(value, "\\n")',
               'name <- readline()\ncat("after\\n")',
               'system("sleep 100")\ncat("after\\n")'),
    "lua": Cells("backend-lua", "lua5.4", "value = 41", "print(value)",
                 "local name = io.read()\nprint('after')",
                 "os.execute('sleep 100')\nprint('after')"),
    "shell": Cells("backend-shell", "bash", "value=41", "echo $value",
                   "read -r name\necho after",
                   "sleep 100\necho after"),
    "nodejs": Cells("backend-nodejs", "node", "var value = 41", "console.log(value)",
                    "var name = input()\nconsole.log('after')",
                    "require('child_process').execSync('sleep 100')\nconsole.log('after')"),
    "php": Cells("backend-php", "php", "$value = 41;", 'echo $value, "\\n";',
                 '$name = fgets(STDIN);\necho "after\\n";',
                 'system("sleep 100");\necho "after\\n";'),
    "octave": Cells("backend-octave", "octave-cli", "value = 41;", "disp(value)",
                    "name = input('', 's');\ndisp('after')",
                    "system('sleep 100');\ndisp('after')"),
    "scheme": Cells("backend-scheme", "guile", "(define value 41)", "(display value)(newline)",
                    '(define name (read-line))\n(display "after")(newline)',
                    '(system "sleep 100")\n(display "after")(newline)'),
}
PARAMS = [pytest.param(name, id=name) for name in LANGUAGES]


async def interrupted_cell(km, kc, code: str, *, blocked) -> dict:
    """Run ``code``, interrupt the kernel once ``blocked(km, prompted)`` is true, return its outputs."""
    prompted = asyncio.Event()
    outputs: dict = {"stdout": "", "stderr": "", "errors": []}

    def on_output(msg: dict) -> None:
        kind, content = msg["header"]["msg_type"], msg["content"]
        if kind == "stream":
            outputs[content["name"]] += content["text"]
        elif kind == "error":
            outputs["errors"].append(content)

    def on_stdin(msg: dict) -> None:
        if msg["header"]["msg_type"] == "input_request":
            prompted.set()  # never answered: the interrupt must end the read

    running = asyncio.ensure_future(kc.execute_interactive(
        code, timeout=60, output_hook=on_output, stdin_hook=on_stdin, allow_stdin=True))
    for _ in range(600):  # hang guard: 30 s
        if running.done() or await blocked(km, prompted):
            break
        await asyncio.sleep(0.05)
    assert not running.done(), f"the cell ended before it blocked: {running.result()['content']}"
    await km.interrupt_kernel()
    outputs["reply"] = (await running)["content"]
    return outputs


async def waits_for_input(km, prompted: asyncio.Event) -> bool:
    return prompted.is_set()


async def runs_sleep(km, prompted: asyncio.Event) -> bool:
    for pid in kernel_process_tree(km.provisioner.pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if fh.read().split(b"\0")[:2] == [b"sleep", b"100"]:
                    return True
        except OSError:
            continue
    return False


def assert_interrupted(outputs: dict) -> None:
    reply = outputs["reply"]
    assert reply["status"] == "error", outputs
    assert reply["ename"] == "KeyboardInterrupt", outputs
    assert reply["exit_code"] == 130, outputs
    assert "after" not in outputs["stdout"], f"the cell went on after the interrupt: {outputs}"
    assert "session restarted" not in outputs["stderr"], f"the interrupt lost the session: {outputs}"


async def assert_state_kept(kc, cells: Cells) -> None:
    shown = await run_cell(kc, cells.show, timeout=30)  # hang guard: the next cell must get its reply
    assert shown["reply"]["status"] == "ok", shown
    assert shown["stdout"].strip() == cells.shown, f"the interrupt lost the state: {shown}"


@pytest.mark.parametrize("language", PARAMS)
async def test_interrupt_while_blocked_on_stdin_ends_the_cell_and_keeps_state(language: str) -> None:
    cells = LANGUAGES[language]
    require_programs(cells.program)
    async with running_kernel(cells.kernel) as (km, kc):
        assert (await run_cell(kc, cells.define))["reply"]["status"] == "ok"
        for _ in range(2):  # the second read follows an interrupted one
            assert_interrupted(await interrupted_cell(km, kc, cells.read_then_print, blocked=waits_for_input))
            await assert_state_kept(kc, cells)


@pytest.mark.parametrize("language", PARAMS)
async def test_interrupt_of_a_subprocess_ends_the_cell_and_keeps_state(language: str) -> None:
    cells = LANGUAGES[language]
    require_programs(cells.program)
    async with running_kernel(cells.kernel) as (km, kc):
        assert (await run_cell(kc, cells.define))["reply"]["status"] == "ok"
        outputs = await interrupted_cell(km, kc, cells.sleep_then_print, blocked=runs_sleep)
        assert_interrupted(outputs)
        await assert_state_kept(kc, cells)


R_HISTORIES = {
    "printed": 'print("something")',
    "errored": 'stop("boom")',
    "plotted": "plot(1:3)",
    "read a line": 'name <- readline()',
}


async def test_r_readline_interrupt_after_any_history() -> None:
    """The R session's outcome used to depend on the cells before: restart, or `ok` and a dead next cell."""
    cells = LANGUAGES["r"]
    require_programs(cells.program)
    async with running_kernel(cells.kernel) as (km, kc):
        assert (await run_cell(kc, cells.define))["reply"]["status"] == "ok"
        assert_interrupted(await interrupted_cell(km, kc, cells.read_then_print, blocked=waits_for_input))
        for before in R_HISTORIES.values():
            answers = ["typed"] if "readline" in before else None
            await run_cell(kc, before, timeout=30, stdin_answers=answers)
            outputs = await interrupted_cell(km, kc, cells.read_then_print, blocked=waits_for_input)
            assert_interrupted(outputs)
            await assert_state_kept(kc, cells)
        assert_interrupted(await interrupted_cell(km, kc, cells.read_then_print, blocked=waits_for_input))
        assert_interrupted(await interrupted_cell(km, kc, cells.read_then_print, blocked=waits_for_input))
        await assert_state_kept(kc, cells)


async def test_python_input_interrupt_hides_the_kernels_own_frames() -> None:
    """ipykernel's raw_input frames made the first KeyboardInterrupt traceback slow to build (the
    traceback renderer parses kernelbase.py); the interrupt shows the user's frame instead."""
    cells = LANGUAGES["python"]
    async with running_kernel(cells.kernel) as (km, kc):
        assert (await run_cell(kc, cells.define))["reply"]["status"] == "ok"
        outputs = await interrupted_cell(km, kc, cells.read_then_print, blocked=waits_for_input)
        assert_interrupted(outputs)
        assert outputs["reply"]["evalue"] == "Interrupted by user"
        traceback = "\n".join(outputs["reply"]["traceback"])
        assert "kernelbase.py" not in traceback, traceback
        await assert_state_kept(kc, cells)
        again = await run_cell(kc, "name = input('who? ')\nprint('hi', name)", stdin_answers=["ada"])
        assert again["stdout"] == "hi ada\n" and again["prompts"] == ["who? "], again


LUA_BLOCKING = {
    "stdin method": ("local line = io.stdin:read('l')\nprint('after')", waits_for_input),
    "io.lines loop": ("for line in io.lines() do print('line', line) end\nprint('after')", waits_for_input),
    "popen read": ("local pipe = io.popen('sleep 100')\npipe:read('a')\nprint('after')", runs_sleep),
    "popen close": ("local pipe = io.popen('sleep 100')\npipe:close()\nprint('after')", runs_sleep),
}


async def test_lua_interrupt_stops_every_blocking_call_where_it_returns() -> None:
    """Lua's count hook never runs inside a blocking C call, so each such call checks the interrupt
    when it returns. A pcall may swallow the interrupt (as in Lua's own REPL), but the cell still
    ends as interrupted, and a late flag never reaches the next cell."""
    cells = LANGUAGES["lua"]
    require_programs(cells.program)
    async with running_kernel(cells.kernel) as (km, kc):
        assert (await run_cell(kc, cells.define))["reply"]["status"] == "ok"
        for name, (code, blocked) in LUA_BLOCKING.items():
            outputs = await interrupted_cell(km, kc, code, blocked=blocked)
            assert_interrupted(outputs)
            assert "line" not in outputs["stdout"], (name, outputs)
            await assert_state_kept(kc, cells)
        swallowed = await interrupted_cell(km, kc, "pcall(os.execute, 'sleep 100')\nprint('caught')",
                                           blocked=runs_sleep)
        assert swallowed["stdout"] == "caught\n", swallowed
        assert swallowed["reply"]["ename"] == "KeyboardInterrupt" and swallowed["reply"]["exit_code"] == 130
        read = await run_cell(kc, "print('hi ' .. io.read())", stdin_answers=["world"])
        assert read["stdout"] == "hi world\n", read
        await assert_state_kept(kc, cells)


# More ways each language waits for a command (or stdin) than the parametrized tests use. Octave's
# and Guile's system() ignore SIGINT while they wait and Guile's system* leaves it ignored in the
# command itself, so their loaders check the kernel's interrupt flag when the call returns; an
# Octave try/catch cannot swallow the interrupt, and `clear all` does not remove the check. (A
# Guile `catch #t`, like a Lua pcall, may swallow it; fgetl(stdin) never returns on a pipe.)
BLOCKING_CALLS = {
    "octave": [
        "[status, out] = system('sleep 100');\ndisp('after')",
        "unix('sleep 100');\ndisp('after')",
        "try\n  system('sleep 100');\ncatch\n  disp('line caught');\nend\ndisp('after')",
        "clear all\nvalue = 41;\nsystem('sleep 100');\ndisp('after')",
    ],
    "scheme": [
        '(system* "sleep" "100")\n(display "after")(newline)',
        '(use-modules (ice-9 popen))\n(define pipe (open-input-pipe "sleep 100"))\n(read-line pipe)\n'
        '(display "after")(newline)',
        '(read-line (current-input-port))\n(display "after")(newline)',
    ],
    "php": [
        'exec("sleep 100");\necho "after\\n";',
        'shell_exec("sleep 100");\necho "after\\n";',
        'passthru("sleep 100");\necho "after\\n";',
        '$pipe = popen("sleep 100", "r");\nfgets($pipe);\necho "after\\n";',
    ],
    "nodejs": [
        "require('child_process').spawnSync('sleep', ['100'])\nconsole.log('after')",
        "require('child_process').execFileSync('sleep', ['100'])\nconsole.log('after')",
        "try { require('child_process').execSync('sleep 100') } catch (e) { console.log('line caught') }\n"
        "console.log('after')",
    ],
}


@pytest.mark.parametrize("language", [pytest.param(name, id=name) for name in BLOCKING_CALLS])
async def test_interrupt_stops_every_blocking_call_where_it_returns(language: str) -> None:
    """Each call stops the cell where it returns: one KeyboardInterrupt reply, no "line"/"after"."""
    cells = LANGUAGES[language]
    require_programs(cells.program)
    async with running_kernel(cells.kernel) as (km, kc):
        assert (await run_cell(kc, cells.define))["reply"]["status"] == "ok"
        for code in BLOCKING_CALLS[language]:
            blocked = waits_for_input if "input-port" in code else runs_sleep
            outputs = await interrupted_cell(km, kc, code, blocked=blocked)
            assert_interrupted(outputs)
            assert "line" not in outputs["stdout"], (code, outputs)
            await assert_state_kept(kc, cells)
