"""One life of a kernel, ours or a peer's: every measurement of the peer table, in one start-to-shutdown.

A life starts the kernel (timed to kernel_info and to the first cell's reply),
runs trivial cells, takes the idle memory of its process tree, prints many
lines, tries the behaviours (error, stdin, completion, inspect), interrupts a
busy loop and a read of stdin (timed from the interrupt to the cell's reply,
then checks that a variable set before is still there), and shuts the kernel
down. A kernel that does not answer a step within a limit is a finding ("no
reply within N s"), not a failure of the run: the kernel and every process it
started are killed, a new one is started, and the life goes on with the next
step. Only a start or a first cell that fails ends a life.
"""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import time
from dataclasses import dataclass, field
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from measure import process_tree, tree_rss
from peers import Cells

#: How long a cell may take before the kernel counts as not answering.
CELL_LIMIT = 120.0
#: How long after an interrupt a reply may take before the kernel counts as not stopping.
INTERRUPT_LIMIT = 10.0
#: tslab aborts every cell for this long after an error (jupyter.js: execQueue.reset(200)); plus a margin.
ABORT_WINDOW = 0.3
#: How long a read of stdin may go without an input_request before it is interrupted all the same.
READ_PATIENCE = 5.0
#: Wait after the loop's "spin" (or after the input_request) before interrupting: the cell is really busy.
SETTLE = 0.3


#: A problem that ended a life (a start or a first cell that failed): it concerns every measure after it.
LIFE_ENDED = "life ended"


class NoReply(Exception):
    """The kernel did not answer in time: it is left for dead and killed."""


class NotBusy(Exception):
    """A cell meant to block ended by itself: nothing to interrupt (noted, the kernel goes on)."""


@dataclass
class Life:
    """What one life measured; None where a step was not reached or does not apply."""

    kernel: str
    start_info: float | None = None
    start_first: float | None = None
    trivial: list[float] = field(default_factory=list)
    rss: float | None = None
    lines: float | None = None
    lines_seen: int = 0
    lines_late: int = 0  # of those, lines that came after the cell's reply (a frontend still shows them)
    interrupt: float | None = None         # busy loop: interrupt → reply
    interrupt_state: bool | None = None
    stdin_interrupt: float | None = None   # read of stdin: interrupt → reply
    stdin_state: bool | None = None
    behaviour: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # each "<step>: <what happened>"
    leftovers: int = 0


async def _execute(kc, code: str, *, limit: float = CELL_LIMIT, stdin=None) -> tuple[dict, str, list[str]]:
    """Run a cell: its reply content, what it printed to stdout, and the kinds of iopub messages it sent.

    No cell is ever queued behind another here (``stop_on_error=False``). tslab aborts every cell that
    arrives within 200 ms after an error, by design; a user never types that fast, so an aborted cell is
    sent once more after that window."""
    printed: list[str] = []
    kinds: list[str] = []

    def on_output(msg: dict) -> None:
        kinds.append(msg["header"]["msg_type"])
        if msg["header"]["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
            printed.append(msg["content"]["text"])

    for attempt in range(2):
        sent = time.perf_counter()
        try:
            reply = await kc.execute_interactive(code, timeout=limit, output_hook=on_output, stdin_hook=stdin,
                                                 allow_stdin=stdin is not None, stop_on_error=False)
        except TimeoutError as exc:
            raise NoReply(f"no reply within {limit:g} s") from exc
        # an abort at once, not one that ends an interrupted cell (bash_kernel's reply to an interrupt)
        if reply["content"]["status"] != "abort" or attempt or time.perf_counter() - sent > ABORT_WINDOW:
            break
        await asyncio.sleep(ABORT_WINDOW)
    return reply["content"], "".join(printed), kinds


async def _late_output(kc, quiet: float = 0.5) -> str:
    """stdout a kernel sent after its reply and its idle status, until ``quiet`` seconds pass without any."""
    late: list[str] = []
    while True:
        try:
            msg = await kc.get_iopub_msg(timeout=quiet)
        except queue.Empty:
            return "".join(late)
        if msg["header"]["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
            late.append(msg["content"]["text"])


async def _interrupted(km, kc, code: str, *, wait_for: str) -> float:
    """Start ``code``, interrupt once it printed "spin" (or asked for input), time the interrupt → reply.

    NotBusy when the cell ended by itself first (a read that got end of file); NoReply when the interrupt
    did not end it."""
    busy = asyncio.Event()
    printed: list[str] = []

    def on_output(msg: dict) -> None:
        if msg["header"]["msg_type"] == "stream":
            printed.append(msg["content"]["text"])
            if wait_for == "spin" and "spin" in "".join(printed):
                busy.set()

    def on_stdin(msg: dict) -> None:
        if msg["header"]["msg_type"] == "input_request":
            busy.set()  # never answered: the interrupt must end the read

    cell = asyncio.ensure_future(kc.execute_interactive(
        code, timeout=CELL_LIMIT + INTERRUPT_LIMIT, output_hook=on_output, stdin_hook=on_stdin,
        allow_stdin=True, stop_on_error=False))
    waiter = asyncio.ensure_future(busy.wait())
    # a program may compile first; a read that sends no input_request is interrupted after a while anyway
    patience = CELL_LIMIT if wait_for == "spin" else READ_PATIENCE
    await asyncio.wait([cell, waiter], timeout=patience, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if cell.done():
        content = cell.result()["content"]
        ended = " ".join(str(part) for part in (content["status"], content.get("ename")) if part)
        raise NotBusy(f"the cell ended before it was interrupted ({ended})")
    await asyncio.sleep(SETTLE)
    begin = time.perf_counter()
    await km.interrupt_kernel()
    try:
        await asyncio.wait_for(cell, INTERRUPT_LIMIT)
    except (TimeoutError, asyncio.TimeoutError) as exc:
        raise NoReply(f"no reply within {INTERRUPT_LIMIT:g} s of the interrupt") from exc
    return time.perf_counter() - begin


async def _state_kept(kc, cells: Cells, life: Life) -> bool | None:
    """Whether the value set before the interrupt is still there."""
    if not cells.stateful:
        return None
    _, printed, _ = await _execute(kc, cells.show, limit=30)
    return printed.strip() == "41"


async def _behaviour(km, kc, cells: Cells, found: dict[str, str]) -> None:
    """yes / no (what happened instead) for error, stdin, completion and inspect, into ``found``."""
    reply, _, kinds = await _execute(kc, cells.error, limit=60)
    found["error"] = ("yes" if reply["status"] == "error" else
                      f"no (status {reply['status']}{', an error message' if 'error' in kinds else ''})")
    await asyncio.sleep(ABORT_WINDOW)  # as a user would: tslab aborts what comes within 200 ms of an error
    try:
        completion = await kc.complete(cells.complete, len(cells.complete), reply=True, timeout=30)
        matches = completion["content"].get("matches", [])
        found["completion"] = ("yes" if any(match.endswith(cells.completes_to) for match in matches) else
                               f"no ({len(matches)} matches, none {cells.completes_to!r})")
    except TimeoutError:
        found["completion"] = "no (no reply within 30 s)"
    try:
        inspected = await kc.inspect(cells.inspect, len(cells.inspect), 0, reply=True, timeout=30)
        found["inspect"] = "yes" if inspected["content"].get("found") else "no (found: false)"
    except TimeoutError:
        found["inspect"] = "no (no reply within 30 s)"
    found["stdin"] = "no (no input_request; the read did not stop at an interrupt)"  # unless it answers
    found["stdin"] = await _stdin_behaviour(km, kc, cells)


async def _stdin_behaviour(km, kc, cells: Cells) -> str:
    """Whether a read of stdin asks the frontend (input_request); a read that does not is interrupted."""
    if cells.read is None:
        return "no (no way to read stdin)"
    asked: list[dict] = []

    def answer(msg: dict) -> None:
        if msg["header"]["msg_type"] == "input_request":
            asked.append(msg)
            kc.input("world")

    cell = asyncio.ensure_future(_execute(kc, cells.read, limit=CELL_LIMIT, stdin=answer))
    done, _ = await asyncio.wait([cell], timeout=READ_PATIENCE)
    if done:
        cell.result()
        return "yes" if asked else "no (no input_request)"
    await km.interrupt_kernel()
    try:
        await asyncio.wait_for(cell, INTERRUPT_LIMIT)
    except (TimeoutError, asyncio.TimeoutError) as exc:
        raise NoReply("a read of stdin without input_request did not stop at an interrupt") from exc
    return "no (no input_request; the cell waited)" if not asked else "no (no reply after the answer)"


def _reap(tree: set[int], life: Life) -> None:
    """Kill what is left of a kernel's process tree (a peer's interpreter, a busy program) and count it."""
    for other in tree:
        try:
            with open(f"/proc/{other}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
            os.kill(other, signal.SIGKILL)
            life.leftovers += 1
        except (OSError, IndexError):
            continue


def _tree(km) -> set[int]:
    pid = getattr(km.provisioner, "pid", None) if km.provisioner else None
    return process_tree(pid) if pid else set()


async def _shutdown(km, kc, life: Life, *, now: bool) -> None:
    """Shut down, then reap what the kernel left running."""
    tree = _tree(km)
    kc.stop_channels()
    try:
        await asyncio.wait_for(km.shutdown_kernel(now=now), 30)
    except Exception as exc:  # a peer that hangs in shutdown must not stop the run
        life.problems.append(f"shutdown: {type(exc).__name__}: {exc}")
        await km.shutdown_kernel(now=True)
    await asyncio.sleep(0.5)
    _reap(tree, life)


class Session:
    """A kernel for one life; a step it does not answer is recorded and the kernel is started anew."""

    def __init__(self, kernel: str, cells: Cells, life: Life) -> None:
        self.km = AsyncKernelManager(kernel_name=kernel)
        self.kc: Any = None
        self.cells, self.life = cells, life

    async def start(self) -> float:
        begin = time.perf_counter()
        await self.km.start_kernel()
        self.kc = self.km.client()
        self.kc.start_channels()
        await self.kc.wait_for_ready(timeout=CELL_LIMIT)
        return time.perf_counter() - begin

    async def step(self, name: str, work) -> None:
        """Run ``work(km, kc)``; when the kernel does not answer, note it and restart the kernel (killed)."""
        try:
            await work(self.km, self.kc)
        except NotBusy as exc:
            self.life.problems.append(f"{name}: {exc}")
        except NoReply as exc:
            self.life.problems.append(f"{name}: {exc}")
            tree = _tree(self.km)
            await self.km.restart_kernel(now=True)
            await self.kc.wait_for_ready(timeout=CELL_LIMIT)
            _reap(tree - _tree(self.km), self.life)
            if self.cells.define:
                await _execute(self.kc, self.cells.define)

    async def stop(self, now: bool) -> None:
        if self.kc is not None:
            await _shutdown(self.km, self.kc, self.life, now=now)
        elif self.km.has_kernel:
            await self.km.shutdown_kernel(now=True)

    async def interrupts(self) -> None:
        """A busy loop, then a read of stdin: each interrupted and timed, then whether the state is kept."""
        cells, life = self.cells, self.life

        async def busy(km, kc) -> None:
            life.interrupt = await _interrupted(km, kc, cells.loop, wait_for="spin")
            life.interrupt_state = await _state_kept(kc, cells, life)

        async def read(km, kc) -> None:
            life.stdin_interrupt = await _interrupted(km, kc, cells.read or "", wait_for="input_request")
            life.stdin_state = await _state_kept(kc, cells, life)

        await self.step("interrupt of a busy loop", busy)
        if cells.read is not None:
            await self.step("interrupt of a read", read)


async def one_life(kernel: str, cells: Cells, *, lines: int, trivial_repeats: int, behaviour: bool) -> Life:
    """Start ``kernel``, measure everything, shut it down."""
    life = Life(kernel)
    session = Session(kernel, cells, life)
    failed = False
    try:
        life.start_info = await session.start()
        kc = session.kc
        begin = time.perf_counter() - life.start_info
        reply, _, _ = await _execute(kc, cells.trivial)
        life.start_first = time.perf_counter() - begin
        if reply["status"] != "ok":
            raise RuntimeError(f"the trivial cell failed: {reply.get('ename')}: {reply.get('evalue')}")
        for _ in range(trivial_repeats):
            start = time.perf_counter()
            await _execute(kc, cells.trivial)
            life.trivial.append(time.perf_counter() - start)
        await asyncio.sleep(1.0)  # idle: the kernel has settled after its first cells
        life.rss = float(tree_rss(getattr(session.km.provisioner, "pid", 0)))
        if cells.define:
            await _execute(kc, cells.define)

        async def printed_lines(km, kc) -> None:
            start = time.perf_counter()
            _, printed, _ = await _execute(kc, cells.lines.format(n=lines), limit=10 + lines / 500)
            life.lines = time.perf_counter() - start
            late = await _late_output(kc)
            life.lines_seen = len((printed + late).splitlines())
            life.lines_late = len(late.splitlines())

        async def behaviours(km, kc) -> None:
            await _behaviour(km, kc, cells, life.behaviour)

        await session.step("printed lines", printed_lines)
        if behaviour:  # a read without input_request that no interrupt ends costs a restart, before the interrupts
            await session.step("behaviour", behaviours)
        await session.interrupts()
    except Exception as exc:  # NoReply of a start or a first cell too: the life ends here
        failed = True
        life.problems.append(f"{LIFE_ENDED}: {type(exc).__name__}: {exc}")
    finally:
        await session.stop(now=failed)
    return life


async def interrupt_life(kernel: str, cells: Cells) -> Life:
    """Only the interrupts (a kernel without a peer here): busy loop, then a read of stdin."""
    life = Life(kernel)
    session = Session(kernel, cells, life)
    failed = False
    try:
        await session.start()
        if cells.define:
            await _execute(session.kc, cells.define)
        await session.interrupts()
    except Exception as exc:
        failed = True
        life.problems.append(f"{LIFE_ENDED}: {type(exc).__name__}: {exc}")
    finally:
        await session.stop(now=failed)
    return life
