"""The shell kernel runs bash on a pseudo-terminal (issue 18): ``tty`` names a terminal, ``stty size`` and
programs that want a terminal work, ``%resize`` sets the window size (TIOCSWINSZ), output arrives as it is
written, stdin still goes through ``input_request`` (without echo), interrupts keep the shell's state, and
stderr stays apart (a pipe)."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from .helpers import require_programs, run_cell, running_kernel

pytestmark = pytest.mark.kernel  # every test starts backend-shell


async def test_the_shell_is_on_a_terminal_of_the_default_size() -> None:
    require_programs("bash", "stty", "tty", "python3")
    async with running_kernel("backend-shell") as (km, kc):
        shown = await run_cell(kc, 'tty; stty size; echo "$LINES $COLUMNS"')
        assert shown["reply"]["status"] == "ok", shown
        name, size, variables = shown["stdout"].splitlines()
        assert re.fullmatch(r"/dev/pts/\d+", name), shown
        assert size == "24 80" and variables == "24 80", shown
        ttys = await run_cell(kc, 'python3 -c "import os; print(os.isatty(0), os.isatty(1), os.isatty(2))"')
        assert ttys["stdout"] == "True True False\n", "stdin and stdout on the terminal, stderr a pipe"
        # Output bytes are what the program wrote: no "\r\n" (ONLCR is off); errors stay on stderr.
        printed = await run_cell(kc, "printf 'a\\nb\\n'; ls /no/such/folder")
        assert printed["stdout"] == "a\nb\n", printed
        assert "No such file or directory" in printed["stderr"] and printed["reply"]["status"] == "error"
        # /dev/tty is the controlling terminal (ssh and sudo prompt there).
        assert (await run_cell(kc, "echo via-tty > /dev/tty"))["stdout"] == "via-tty\n"


async def test_programs_that_need_a_terminal_run() -> None:
    require_programs("bash", "top", "head", "python3")
    async with running_kernel("backend-shell") as (km, kc):
        top = await run_cell(kc, "top -b -n1 | head -1")
        assert top["reply"]["status"] == "ok", top
        assert top["stdout"].startswith("top - "), top
        size = await run_cell(kc, "python3 -c 'import os; print(tuple(os.get_terminal_size()))'")
        assert size["stdout"] == "(80, 24)\n", size  # on a pipe: OSError, inappropriate ioctl


async def test_resize_sets_the_window_size_and_it_outlives_a_restart() -> None:
    require_programs("bash", "stty")
    async with running_kernel("backend-shell") as (km, kc):
        resized = await run_cell(kc, '%resize 40 132\nstty size; echo "$LINES $COLUMNS"')
        assert resized["reply"]["status"] == "ok", resized
        assert resized["stdout"].splitlines()[-2:] == ["40 132", "40 132"], resized
        # The shell's programs were told (SIGWINCH reaches the terminal's foreground group).
        await run_cell(kc, "trap 'echo resized > /dev/null; winched=yes' WINCH")
        await run_cell(kc, "%resize 30 100")
        assert (await run_cell(kc, 'stty size; echo "$winched"'))["stdout"] == "30 100\nyes\n"
        ended = await run_cell(kc, "exit 3")
        assert ended["reply"]["ename"] == "SessionRestarted", ended
        again = await run_cell(kc, 'stty size; echo "$LINES $COLUMNS"')
        assert again["stdout"] == "30 100\n30 100\n", "a new session starts at the size %resize set"
        too_big = await run_cell(kc, "%resize 70000 80")
        assert too_big["reply"]["status"] == "error" and "usage" in too_big["stderr"]


async def test_output_arrives_as_it_is_written() -> None:
    """Python buffers a pipe until it exits, not a terminal: each line comes while the program runs
    (PYTHONUNBUFFERED, which would hide the difference, is removed)."""
    require_programs("bash", "python3")
    arrivals: list[tuple[float, str]] = []

    def on_output(msg: dict) -> None:
        if msg["header"]["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
            arrivals.append((time.monotonic(), msg["content"]["text"]))

    code = 'env -u PYTHONUNBUFFERED python3 -c "\nimport time\nfor i in range(3):\n    print(i)\n    time.sleep(1)"'
    async with running_kernel("backend-shell") as (km, kc):
        reply = await kc.execute_interactive(code, timeout=60, output_hook=on_output, allow_stdin=False)
        ended = time.monotonic()
    assert reply["content"]["status"] == "ok", reply
    assert "".join(text for _, text in arrivals) == "0\n1\n2\n"
    assert len(arrivals) >= 3, f"the lines came together, not as written: {arrivals}"
    assert ended - arrivals[0][0] > 1.5, "the first line should come about 2 s before the program ends"


async def test_stdin_goes_through_input_request_without_echo() -> None:
    require_programs("bash", "python3")
    async with running_kernel("backend-shell") as (km, kc):
        read = await run_cell(kc, 'read -r name; echo "hi $name"', stdin_answers=["world"])
        assert read["prompts"] == [""] and read["stdout"] == "hi world\n", read
        # read -s (no echo) and -p (a prompt) need a terminal; bash writes the prompt to stderr.
        secret = await run_cell(kc, 'read -s -p "password: " pw; echo "length ${#pw}"', stdin_answers=["s3cret"])
        assert secret["stdout"] == "length 6\n" and secret["stderr"] == "password: ", secret
        python = await run_cell(kc, "python3 -c 'print(\"got\", input())'", stdin_answers=["abc"])
        assert python["stdout"] == "got abc\n", python
        tty = await run_cell(kc, 'read -r answer < /dev/tty; echo "tty $answer"', stdin_answers=["yes"])
        assert tty["prompts"] == [""] and tty["stdout"] == "tty yes\n", "a read of /dev/tty asks too"


async def test_interrupt_keeps_the_shell_and_its_variables() -> None:
    require_programs("bash", "sleep")
    async with running_kernel("backend-shell") as (km, kc):
        await run_cell(kc, "value=41")
        sleeping = asyncio.ensure_future(run_cell(kc, "sleep 100; echo after", timeout=60))
        await asyncio.sleep(1.5)
        assert not sleeping.done()
        await km.interrupt_kernel()
        stopped = await sleeping  # not a session restart (3 s later), not the 100 s
        assert stopped["reply"]["ename"] == "KeyboardInterrupt", stopped
        assert "after" not in stopped["stdout"] and "session restarted" not in stopped["stderr"], stopped
        assert (await run_cell(kc, "echo $value; tty"))["stdout"].startswith("41\n/dev/pts/")


async def test_pagers_print_instead_of_waiting_for_keys(tmp_path) -> None:
    """git pages its output on a terminal: with more than a screen, less would wait for keys."""
    require_programs("bash", "git")
    async with running_kernel("backend-shell") as (km, kc):
        code = (f"cd {tmp_path} && git init -q && for i in $(seq 40); do git -c user.name=A -c user.email=a@b "
                "commit -q --allow-empty -m \"commit $i\"; done && git log --format=%s")
        logged = await run_cell(kc, code, timeout=60)
        assert logged["reply"]["status"] == "ok", logged
        assert logged["stdout"].splitlines() == [f"commit {i}" for i in range(40, 0, -1)], logged
