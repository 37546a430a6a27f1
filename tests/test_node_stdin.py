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
