"""Node.js cells that read stdin asynchronously (issue 18): the cell asks through ``input_request`` before it
ends, as ``node file.js`` would wait for its reader; a cell waits for the timers it started; an interrupt ends
such a cell and cancels its work; a later cell that only awaits is not taken for a reader of stdin."""

from __future__ import annotations

import asyncio

import pytest

from .helpers import require_programs, run_cell, running_kernel

pytestmark = pytest.mark.kernel  # every test starts backend-nodejs

QUESTION = ("const readline = require('readline');\n"
            "const rl = readline.createInterface({input: process.stdin, output: process.stdout});\n"
            "rl.question('name? ', (a) => console.log('hi ' + a));")


async def run_recorded(kc, code: str, answers: list[str]) -> tuple[dict, list[tuple[str, str, str]]]:
    """Run a cell answering its input requests; returns the reply and (kind, text, send date) of its
    stdout streams and input requests, in the order the kernel sent them (header dates)."""
    events: list[tuple[str, str, str]] = []
    pending = list(answers)

    def on_output(msg: dict) -> None:
        if msg["header"]["msg_type"] == "stream":
            events.append((msg["content"]["name"], msg["content"]["text"], str(msg["header"]["date"])))

    def on_stdin(msg: dict) -> None:
        events.append(("input_request", msg["content"]["prompt"], str(msg["header"]["date"])))
        kc.input(pending.pop(0) if pending else "")

    reply = await kc.execute_interactive(code, timeout=60, output_hook=on_output, stdin_hook=on_stdin,
                                         allow_stdin=True)
    return reply["content"], sorted(events, key=lambda event: event[2])


async def test_readline_question_asks_before_the_cell_ends_and_the_prompt_comes_first() -> None:
    require_programs("node")
    async with running_kernel("backend-nodejs") as (km, kc):
        reply, events = await run_recorded(kc, QUESTION, ["ann"])
        assert reply["status"] == "ok", reply
        kinds = [kind for kind, _, _ in events]
        assert kinds.count("input_request") == 1, events
        asked = kinds.index("input_request")
        before = "".join(text for kind, text, _ in events[:asked] if kind == "stdout")
        after = "".join(text for kind, text, _ in events[asked:] if kind == "stdout")
        assert before == "name? ", f"the prompt should be sent before the input request: {events}"
        assert after == "hi ann\n", events
        # The interface stays usable from later cells; the promise API waits as well.
        again = await run_cell(kc, "rl.question('again? ', (a) => console.log('again ' + a))", stdin_answers=["bo"])
        assert again["stdout"] == "again? again bo\n" and again["prompts"] == [""], again
        promised = await run_cell(kc, "const rlp = require('readline/promises').createInterface("
                                      "{input: process.stdin, output: process.stdout});\n"
                                      "console.log('got ' + await rlp.question('p? ')); rlp.close();",
                                  stdin_answers=["cy"])
        assert promised["stdout"] == "p? got cy\n", promised


async def test_stdin_data_listener_and_input_after_it() -> None:
    require_programs("node")
    async with running_kernel("backend-nodejs") as (km, kc):
        once = await run_cell(kc, "process.stdin.once('data', (d) => console.log('got ' + String(d).trim())); 0",
                              stdin_answers=["bytes"])
        assert once["reply"]["status"] == "ok" and once["prompts"] == [""], once
        assert once["stdout"] == "got bytes\n", once
        # A later cell that only awaits is not asked for input (process.stdin no longer reads),
        # and the synchronous input() still reads stdin.
        waited = await run_cell(kc, "await new Promise((r) => setTimeout(r, 300)); console.log('waited')",
                                allow_stdin=True)
        assert waited["prompts"] == [] and waited["stdout"] == "waited\n", waited
        sync = await run_cell(kc, "console.log('input ' + input())", stdin_answers=["line"])
        assert sync["stdout"] == "input line\n", sync


async def test_a_cell_waits_for_its_timers_but_not_unreferenced_ones() -> None:
    require_programs("node")
    async with running_kernel("backend-nodejs") as (km, kc):
        late = await run_cell(kc, "setTimeout(() => console.log('late'), 300); 5")
        assert late["stdout"] == "late\n", "the timer's output belongs to the cell that started it"
        assert late["displays"][0]["data"]["text/plain"] == "5"
        unref = await run_cell(kc, "const t = setTimeout(() => console.log('never'), 60000); t.unref(); 6")
        assert unref["reply"]["status"] == "ok" and unref["stdout"] == "", unref
        await run_cell(kc, "clearTimeout(t)")
        failed = await run_cell(kc, "setTimeout(() => { throw new Error('boom'); }, 100); 1")
        assert failed["reply"]["status"] == "error" and failed["reply"]["evalue"] == "boom", failed


async def interrupt_after(km, kc, code: str, seconds: float) -> dict:
    """Run ``code`` (its input requests are never answered) and interrupt it after ``seconds``."""
    outputs: dict = {"stdout": "", "prompts": []}

    def on_output(msg: dict) -> None:
        if msg["header"]["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
            outputs["stdout"] += msg["content"]["text"]

    def on_stdin(msg: dict) -> None:
        outputs["prompts"].append(msg["content"]["prompt"])

    running = asyncio.ensure_future(kc.execute_interactive(code, timeout=60, output_hook=on_output,
                                                           stdin_hook=on_stdin, allow_stdin=True))
    await asyncio.sleep(seconds)
    assert not running.done(), f"the cell ended by itself: {running.result()}"
    await km.interrupt_kernel()
    outputs["reply"] = (await running)["content"]
    return outputs


async def test_interrupt_ends_a_cell_waiting_for_stdin_or_an_interval() -> None:
    require_programs("node")
    async with running_kernel("backend-nodejs") as (km, kc):
        await run_cell(kc, QUESTION.replace("rl.question", "var value = 41; void rl.question"), stdin_answers=["a"])
        asked = await interrupt_after(km, kc, "rl.question('q? ', (a) => console.log('never ' + a))", 1.5)
        assert asked["reply"]["ename"] == "KeyboardInterrupt" and asked["prompts"] == [""], asked
        ticking = await interrupt_after(km, kc, "setInterval(() => console.log('tick'), 200)", 1.0)
        assert ticking["reply"]["ename"] == "KeyboardInterrupt", ticking
        assert ticking["stdout"].startswith("tick\ntick\n"), ticking
        await asyncio.sleep(0.6)
        after = await run_cell(kc, "console.log(value)")
        assert after["stdout"] == "41\n", "the interrupt cleared the interval and kept the session"
        answered = await run_cell(kc, "rl.question('ok? ', (a) => console.log('yes ' + a))", stdin_answers=["y"])
        assert answered["stdout"] == "ok? yes y\n", "the cancelled question left the interface usable"


CLOSING_QUESTION = ("const rlc = require('readline').createInterface({input: process.stdin, output: process.stdout});\n"
                    "rlc.question('name? ', a => { console.log('hi ' + a); rlc.close(); });")


async def test_question_whose_callback_closes_the_interface_and_a_paused_data_listener() -> None:
    """Issue 19: the cell of the report (its callback closes the interface) lasts until the question is
    answered, prompt first; an interrupt ends such a cell; a 'data' listener that pauses stdin after one
    chunk ends its cell as a script would end, and a later cell that resumes stdin is asked again."""
    require_programs("node")
    async with running_kernel("backend-nodejs") as (km, kc):
        reply, events = await run_recorded(kc, CLOSING_QUESTION, ["ann"])
        assert reply["status"] == "ok", reply
        assert [(kind, text) for kind, text, _ in events] == [("stdout", "name? "), ("input_request", ""),
                                                              ("stdout", "hi ann\n")], events
        closed = await run_cell(kc, "rlc.closed")
        assert closed["displays"][0]["data"]["text/plain"] == "true", closed

        asked = await interrupt_after(km, kc, CLOSING_QUESTION.replace("rlc", "rli"), 1.5)
        assert asked["reply"]["ename"] == "KeyboardInterrupt" and asked["prompts"] == [""], asked
        assert asked["stdout"].startswith("name? ") and "hi" not in asked["stdout"], asked

        paused = await run_cell(kc, "process.stdin.on('data', (d) => { console.log('chunk ' + String(d).trim()); "
                                    "process.stdin.pause(); }); 0", stdin_answers=["one"])
        assert paused["reply"]["status"] == "ok" and paused["prompts"] == [""], paused
        assert paused["stdout"] == "chunk one\n", paused
        idle = await run_cell(kc, "await new Promise((r) => setTimeout(r, 200)); 'idle'", allow_stdin=True)
        assert idle["prompts"] == [], "a paused stdin is not read"
        resumed = await run_cell(kc, "process.stdin.resume(); 0", stdin_answers=["two"])
        assert resumed["stdout"] == "chunk two\n" and resumed["prompts"] == [""], resumed


async def test_a_cell_waits_for_its_file_reads_and_exec_programs_but_not_spawned_ones() -> None:
    """As ``node file.js`` waits for them: a file read's and an exec'd program's callbacks print in their own
    cell; a spawn()ed program (a server, say) does not keep the cell; an interrupt ends a cell waiting for
    an exec'd program."""
    require_programs("node")
    async with running_kernel("backend-nodejs") as (km, kc):
        read = await run_cell(kc, "require('fs').readFile('/proc/version', 'utf8', (e, d) => "
                                  "console.log('read ' + (d.length > 0)))")
        assert read["stdout"] == "read true\n", read
        ran = await run_cell(kc, "require('child_process').exec('sleep 0.3; echo hi', "
                                 "(e, out) => console.log('exec ' + out.trim()))")
        assert ran["stdout"] == "exec hi\n", ran
        promised = await run_cell(kc, "require('util').promisify(require('child_process').execFile)"
                                      "('echo', ['p']).then((r) => console.log('execFile ' + r.stdout.trim()))")
        assert promised["stdout"] == "execFile p\n", promised
        await run_cell(kc, "var server = require('child_process').spawn('sleep', ['60']); 'spawned'")
        alive = await run_cell(kc, "server.exitCode === null && server.kill()")
        assert alive["displays"][0]["data"]["text/plain"] == "true", "the cell ended with its program running"
        stopped = await interrupt_after(km, kc, "require('child_process').exec('sleep 60', () => "
                                                "console.log('never'))", 1.0)
        assert stopped["reply"]["ename"] == "KeyboardInterrupt" and "never" not in stopped["stdout"], stopped
        after = await run_cell(kc, "console.log('after')")
        assert after["stdout"] == "after\n", after
