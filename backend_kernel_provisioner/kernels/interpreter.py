"""One running interpreter and its side channel: the loader protocol of the persistent sessions.

Why a loader and a side channel: the interpreter's standard input belongs to the
user's program (``input_request``), so cells travel another way. The kernel makes
two FIFOs in a private folder; a small loader script in the language (under
``kernels/loaders/``) reads one request line from the *cells* FIFO, evaluates the
cell in its persistent context and answers one JSON line on the *status* FIFO.
Cell boundaries are therefore exact, and no prompt is ever printed or scraped.

Loader protocol (all lines end with ``\\n``):

* kernel -> loader: ``<id> run <path>`` (evaluate the file's text) or
  ``<id> complete <path>`` (the file holds the code up to the cursor), or ``<id> inspect <path>`` (the
  file holds the name at the cursor, found by the kernel, and the detail level, one a line), or
  ``<id> is_complete <path>`` (parse the file's text, run nothing; only loaders listed in
  :data:`.completeness.ANSWERING_LOADERS` get it); at shutdown the end of the
  cells channel, or ``0 exit -`` for a loader that opens the channel anew for each request (a
  reader that opens a FIFO after its last writer closed waits for a writer; it never sees the end);
* loader -> kernel: ``{"status": "ready"}`` once at start, then per request
  ``{"id": id, "status": "ok", "result": "<repr>"?}``,
  ``{"id": id, "status": "error", "ename": ..., "evalue": ..., "exit_code": n?}``, or
  ``{"id": id, "status": "ok", "matches": [...], "token": "<text being completed>"}``, or
  ``{"id": id, "status": "ok", "found": true|false, "text": "<plain text>"?}`` (inspect, :mod:`.inspection`), or
  ``{"id": id, "status": "ok", "complete": "complete|incomplete|invalid", "indent": "  "?}`` (is_complete,
  :mod:`.completeness`);
  a ``run`` answer may carry ``"data": {mime: value}``, rich types of the value beside ``result``;
* loader -> kernel, unsolicited while a cell runs: ``{"display": {"data": {mime: value}, "metadata": {},
  "files": {mime: path}?, "display_id": id?, "update": true?}}`` after flushing its stdout and stderr:
  rich output, published in order with the cell's text; the loader then reads one line from the FIFO
  ``display-ack`` in the session folder before it goes on (see :mod:`.displays`).

The loader finds its channel in the environment: ``BACKEND_SESSION_CELLS``,
``BACKEND_SESSION_STATUS`` (FIFO paths) and ``BACKEND_SESSION_DIR`` (the folder;
``interrupt`` appears in it when a recipe interrupts by flag file, alone or besides SIGINT;
it holds the id of the request to interrupt, and a flag with another id is stale).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from backend_kernel_provisioner.kernels import displays
from backend_kernel_provisioner.kernels.process import ChildProcess, pump
from backend_kernel_provisioner.kernels.prompt_order import unread

log = logging.getLogger(__name__)


async def _start_child(argv: list[str], *, cwd: str, env: dict[str, str], terminal: tuple[int, int] | None
                       ) -> ChildProcess:
    """The interpreter's process, on a pseudo-terminal when asked and the system has them (a container
    without /dev/pts has none: the interpreter then runs on pipes, as the other sessions do)."""
    if terminal is not None:
        try:
            return await ChildProcess.start(argv, cwd=cwd, env=env, terminal=terminal)
        except OSError as exc:
            log.warning("no pseudo-terminal for %s (%s): it runs on pipes", argv[0], exc)
    return await ChildProcess.start(argv, cwd=cwd, env=env, stdin=True)


class SessionEnded(Exception):
    """The interpreter exited (crash, ``exit``, or killed after an interrupt)."""

    def __init__(self, returncode: int) -> None:
        super().__init__(f"the interpreter exited with code {returncode}")
        self.returncode = returncode


class SessionStartError(Exception):
    """The interpreter did not start its loader (its own messages were streamed)."""


class InterpreterSession:
    """One running interpreter: its child process, its side channel and its output pumps."""

    def __init__(self, child: ChildProcess, folder: Path, cells_fd: int, status: asyncio.StreamReader,
                 transport: asyncio.BaseTransport, pumps: list[asyncio.Task[None]]) -> None:
        self.child = child
        self.folder = folder
        self._cells_fd = cells_fd
        self._status = status
        self._transport = transport
        self._pumps = pumps
        self._exit = asyncio.ensure_future(child.proc.wait())
        self._ids = itertools.count(1)
        #: Id of the request whose answer is awaited (None between requests): an interrupt flag
        #: file names it, so a loader never takes a late interrupt for the next cell's.
        self.current: int | None = None
        #: Where output goes (``feed(name, data)``; ``display(line, folder)`` for display lines, when it has it).
        self.output: Any = None
        self.acks: displays.Acks | None = None

    @classmethod
    async def start(cls, argv: list[str], *, cwd: str, env: dict[str, str], folder: Path, output: Any,
                    timeout: float, terminal: tuple[int, int] | None = None) -> InterpreterSession:
        """Start ``argv`` with the channel in its environment; wait for the loader's ``ready``.
        With ``terminal`` (rows, columns) it runs on a pseudo-terminal of that size (:mod:`.terminal`)."""
        folder.mkdir(parents=True, exist_ok=True)
        cells, status = folder / "cells", folder / "status"
        for fifo in (cells, status):
            with contextlib.suppress(FileNotFoundError):
                fifo.unlink()
            os.mkfifo(fifo, 0o600)
        # Read-write opens never block and keep each FIFO open whatever the loader does.
        cells_fd = os.open(cells, os.O_RDWR | os.O_NONBLOCK)
        status_fd = os.open(status, os.O_RDWR | os.O_NONBLOCK)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                                    os.fdopen(status_fd, "rb", buffering=0))
        # The interpreter's temporary files (R's Rtmp* folder, ...) go in the session's folder, removed with the
        # kernel's: an interpreter stopped by a signal never removes them itself.
        temp = folder / "tmp"
        temp.mkdir(exist_ok=True)
        env = {**env, "BACKEND_SESSION_CELLS": str(cells), "BACKEND_SESSION_STATUS": str(status),
               "BACKEND_SESSION_DIR": str(folder), "TMPDIR": str(temp)}
        try:
            child = await _start_child(argv, cwd=cwd, env=env, terminal=terminal)
        except BaseException:
            os.close(cells_fd)
            transport.close()
            raise
        # The pumps outlive the cell that started the session: in an empty context, ipykernel's
        # parent lookup falls back to the latest request, so output goes to the current cell.
        pumps = [contextvars.Context().run(asyncio.ensure_future, pump(reader, name, output))
                 for reader, name in ((child.proc.stdout, "stdout"), (child.proc.stderr, "stderr"))]
        if child.terminal is not None:  # stdout is the terminal: read its master instead
            contextvars.Context().run(child.terminal.start_reading, output)
        session = cls(child, folder, cells_fd, reader, transport, pumps)
        session.output = output
        session.acks = displays.Acks(folder)
        try:
            hello = await session.receive(None, timeout)
        except SessionEnded as exc:
            session.close()
            raise SessionStartError(f"{argv[0]} exited with code {exc.returncode} before its loader was ready") \
                from None
        except asyncio.TimeoutError:
            session.close()
            raise SessionStartError(f"{argv[0]} did not start its loader within {timeout:g} s") from None
        if hello.get("status") != "ready":
            session.close()
            raise SessionStartError(f"{argv[0]}: unexpected first message from the loader: {hello}")
        return session

    @property
    def running(self) -> bool:
        return self.child.running

    @property
    def returncode(self) -> int | None:
        return self.child.proc.returncode

    async def request(self, kind: str, text: str, timeout: float | None = None) -> dict[str, Any]:
        """Send one request (the text goes through a file) and wait for its answer."""
        ident = next(self._ids)
        path = self.folder / f"{kind}-{ident}"
        path.write_text(text, encoding="utf-8")
        self.current = ident
        try:
            os.write(self._cells_fd, f"{ident} {kind} {path}\n".encode())
            return await self.receive(ident, timeout)
        finally:
            self.current = None
            with contextlib.suppress(OSError):
                path.unlink()

    async def receive(self, ident: int | None, timeout: float | None = None) -> dict[str, Any]:
        """The next status line (with ``ident``, older answers skipped); SessionEnded if the child exits."""
        async def next_answer() -> dict[str, Any]:
            while True:
                line = await self._status.readline()
                try:
                    answer = json.loads(line)
                except ValueError:
                    if line.startswith(b'{"display"'):
                        await self.show(None)  # told on stderr, and acknowledged: the loader waits for it
                    continue
                if isinstance(answer, dict) and "display" in answer and "id" not in answer:
                    await self.show(answer["display"])
                    continue
                if isinstance(answer, dict) and (ident is None or answer.get("id") == ident):
                    return answer

        reading = asyncio.ensure_future(next_answer())
        try:
            done, _ = await asyncio.wait([reading, self._exit], timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not reading.done():
                reading.cancel()
        if reading in done:
            return reading.result()
        if self._exit in done:
            raise SessionEnded(self._exit.result())
        raise asyncio.TimeoutError

    async def show(self, display: Any) -> None:
        """A display line: the output the interpreter wrote before it first, then the display itself."""
        await self.drain()
        try:
            show = getattr(self.output, "display", None)
            if show is not None:
                show(display, self.folder)
        finally:
            if self.acks is not None:
                self.acks.send()  # the loader waits for it: what it prints next comes after the display

    def _close_cells(self) -> None:
        if self._cells_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._cells_fd)
            self._cells_fd = -1

    def raise_interrupt_flag(self) -> None:
        """Create ``interrupt`` in the session folder naming the running request (atomically, so a
        loader polling it never reads it half written)."""
        staged = self.folder / "interrupt.new"
        staged.write_text(str(self.current or 0), encoding="utf-8")
        os.replace(staged, self.folder / "interrupt")

    async def drain(self, limit: float = 2.0) -> None:
        """Let the pumps take everything the interpreter wrote before it answered."""
        loop = asyncio.get_running_loop()
        end = loop.time() + limit
        terminal = self.child.terminal
        # A terminal is read here directly: what a program wrote before the loader answered is there.
        while (terminal is not None and terminal.read_available()) or self._unread() > 0:
            if loop.time() >= end:
                break
            await asyncio.sleep(0.005)
        for _ in range(3):
            await asyncio.sleep(0)

    def _unread(self) -> int:
        return unread(self.child.proc)

    async def stop(self, grace: float, announce: bool = False) -> bool:
        """End the interpreter as a script's end would (end of file on the cells channel, or with
        ``announce`` an ``exit`` request, and on its stdin), so its exit handlers run and its files are
        flushed; then :meth:`close`, which kills what is left after ``grace`` seconds (an exit handler
        that hangs). True when it exited by itself."""
        if announce and self._cells_fd >= 0:
            # The channel stays open until the interpreter is gone: closed now, with the loader between
            # two opens, the FIFO (and the request in it) would vanish and the next open wait for a writer.
            with contextlib.suppress(OSError):
                os.write(self._cells_fd, b"0 exit -\n")
        else:
            self._close_cells()
        exited = await self.child.stop(grace)
        await self.drain(limit=0.2)
        self.close()
        return exited

    def close(self) -> None:
        """Kill the interpreter's tree and release the channel."""
        self.child.kill_tree()
        for task in self._pumps:
            task.cancel()
        self.child.release()
        self._close_cells()
        if self.acks is not None:
            self.acks.close()
        self._transport.close()
        shutil.rmtree(self.folder, ignore_errors=True)
