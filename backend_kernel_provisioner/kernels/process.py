"""Child process control shared by every backend kernel recipe.

Why here and not in the kernel: a compile-and-run recipe and a long-lived
interpreter both need the same pieces - start a child with the common recipe
(:mod:`backend_kernel_provisioner.common.childproc`), relay its output as it comes (UTF-8 decoded
incrementally, coalesced, capped), notice when it blocks reading standard input,
and kill its whole tree.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import shutil
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from backend_kernel_provisioner.common.cgroups import CGROUP_ENV
from backend_kernel_provisioner.common.childproc import DEVNULL, signal_group, spawn
from backend_kernel_provisioner.common.leftovers import LAUNCH_ENV
from backend_kernel_provisioner.kernels.blocked_reads import READ_SYSCALLS, blocked_reading, descendants
from backend_kernel_provisioner.kernels.discard import discard_rest
from backend_kernel_provisioner.kernels.prompt_order import pipe_unread, settle
from backend_kernel_provisioner.kernels.terminal import Terminal, write_all

Publish = Callable[[str, str], None]
AskInput = Callable[[str, bool], Awaitable["str | None"]]


class ProgramNotFound(Exception):
    """The program to run does not exist: the toolchain is missing."""

    def __init__(self, program: str) -> None:
        super().__init__(f"program '{program}' not found (is its toolchain installed and on PATH?)")
        self.program = program


# -- output ------------------------------------------------------------------------------


class OutputRelay:
    """Turns raw output chunks into few, whole-character stream messages, up to a cap.

    Consecutive chunks of one stream are merged and flushed every ``interval``
    seconds (or when ``chunk_size`` characters are pending), so a program printing
    megabytes yields a bounded number of messages. Past ``limit`` bytes the rest is
    discarded (the pipes are still drained) and one notice is published.
    """

    def __init__(self, publish: Publish, *, limit: int = 1_000_000, interval: float = 0.05,
                 chunk_size: int = 65536) -> None:
        self.publish = publish
        self.limit = limit
        self.interval = interval
        self.chunk_size = chunk_size
        self.total = 0
        self.discarded = 0
        self._decoders: dict[str, codecs.IncrementalDecoder] = {}
        self._pending: list[list[str]] = []
        self._pending_chars = 0
        self._timer: asyncio.TimerHandle | None = None

    @property
    def truncated(self) -> bool:
        return self.discarded > 0

    def feed(self, name: str, data: bytes) -> None:
        """Accept raw bytes read from stream ``name`` ("stdout" or "stderr")."""
        if self.limit and self.total + len(data) > self.limit:
            keep = max(self.limit - self.total, 0)
            first_cut = not self.truncated
            self.discarded += len(data) - keep
            data = data[:keep]
            self.total += keep
            self._add(name, self._decode(name, data))
            if first_cut:
                self._add("stderr", f"\n[output truncated: more than {self.limit} bytes; "
                                    "the rest of this cell's output is discarded]\n")
                self.flush()
            return
        self.total += len(data)
        self._add(name, self._decode(name, data))

    def write(self, name: str, text: str) -> None:
        """Add already-decoded text (messages of the kernel itself); not capped."""
        self._add(name, text)

    def _decode(self, name: str, data: bytes) -> str:
        decoder = self._decoders.get(name)
        if decoder is None:
            decoder = self._decoders[name] = codecs.getincrementaldecoder("utf-8")(errors="replace")
        return decoder.decode(data)

    def _add(self, name: str, text: str) -> None:
        if not text:
            return
        if self._pending and self._pending[-1][0] == name:
            self._pending[-1][1] += text
        else:
            self._pending.append([name, text])
        self._pending_chars += len(text)
        if self._pending_chars >= self.chunk_size:
            self.flush()
        elif self._timer is None:
            with contextlib.suppress(RuntimeError):
                self._timer = asyncio.get_running_loop().call_later(self.interval, self.flush)

    def flush(self) -> None:
        """Publish everything pending now (before an input request, at the end)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending, self._pending_chars = self._pending, [], 0
        for name, text in pending:
            self.publish(name, text)

    def close(self) -> None:
        """Flush, including a character left incomplete at the very end."""
        if not self.truncated:
            for name, decoder in self._decoders.items():
                self._add(name, decoder.decode(b"", final=True))
        self.flush()


async def pump(reader: asyncio.StreamReader | None, name: str, relay: OutputRelay,
               pipe: asyncio.ReadTransport | None = None) -> None:
    """Copy one pipe into the relay until end of file; with ``pipe`` (its transport), what comes after the
    relay cut the output is discarded inside the kernel (discard.py)."""
    if reader is None:
        return
    while chunk := await reader.read(65536):
        relay.feed(name, chunk)
        if pipe is not None and relay.truncated:
            await discard_rest(pipe)
            return


# -- the child ----------------------------------------------------------------------------


_found: dict[tuple[str, str | None], str] = {}


def find_program(program: str, path: str | None) -> str | None:
    """``shutil.which(program, path)``, remembered: a PATH walk costs a dozen ``stat`` calls per cell, and
    the path found before is only checked to still be an executable (a program newly installed earlier
    on PATH is seen once the one found before is gone, or PATH changes)."""
    key = (program, path)
    found = _found.get(key)
    if found is not None and os.path.isfile(found) and os.access(found, os.X_OK):
        return found
    found = shutil.which(program, path=path)
    if found is None:
        _found.pop(key, None)
    else:
        _found[key] = found
    return found


def cell_death_signal() -> int | None:
    """What a cell's program gets when the kernel dies: nothing when the launch is tracked (its cgroup and
    marked processes are killed then; see common/childproc.py for why that is faster), else SIGKILL."""
    return None if os.environ.get(CGROUP_ENV) or os.environ.get(LAUNCH_ENV) else signal.SIGKILL


class ChildProcess:
    """One child in its own session/process group, with its stdin pipe (or /dev/null), or on a terminal."""

    def __init__(self, proc: asyncio.subprocess.Process, stdin_fd: int | None,
                 terminal: Terminal | None = None) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.terminal = terminal
        self._stdin_fd = stdin_fd
        self._stdin_target = f"pipe:[{os.fstat(stdin_fd).st_ino}]" if stdin_fd is not None else ""

    @classmethod
    async def start(cls, argv: list[str], *, cwd: str | None = None, env: dict[str, str] | None = None,
                    stdin: bool = False, terminal: tuple[int, int] | None = None,
                    death_signal: int | None = signal.SIGKILL) -> ChildProcess:
        """Start ``argv``; with ``stdin`` False it reads end-of-file at once; ``terminal``: on a pty (rows, cols);
        ``death_signal``: what it gets when the kernel dies (None: left to the launch's cgroup, and faster)."""
        if terminal is not None:
            term = Terminal(*terminal)
            try:
                return cls(await term.spawn(argv, cwd=cwd, env=env), None, term)
            except FileNotFoundError as exc:
                raise ProgramNotFound(argv[0]) from exc
        read_fd = write_fd = None
        if stdin:
            read_fd, write_fd = os.pipe()
            os.set_blocking(write_fd, False)
        try:
            proc = await spawn(argv, cwd=cwd, env=env, stdin=read_fd if read_fd is not None else DEVNULL,
                               death_signal=death_signal)
        except FileNotFoundError as exc:
            if write_fd is not None:
                os.close(write_fd)
            raise ProgramNotFound(argv[0]) from exc
        finally:
            if read_fd is not None:
                os.close(read_fd)
        return cls(proc, write_fd)

    @property
    def running(self) -> bool:
        return self.proc.returncode is None

    def signal(self, signum: int) -> None:
        """Signal the child's whole process group."""
        signal_group(self.pid, signum)

    def kill_tree(self) -> None:
        """SIGKILL the process group and any descendant that left it."""
        pids = descendants(self.pid)
        self.signal(signal.SIGKILL)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        self.close_input()

    async def stop(self, grace: float, signum: int | None = None) -> bool:
        """End the child the way it ends cleanly: end of file on its stdin (and ``signum`` to its group,
        if given), so it runs its exit handlers and flushes its files; whatever of its tree is left after
        ``grace`` seconds is killed. True when it exited by itself within the grace."""
        self.close_input()
        if signum is not None and self.running:
            self.signal(signum)
        try:
            await asyncio.wait_for(asyncio.shield(self.proc.wait()), grace)
            exited = True
        except asyncio.TimeoutError:
            exited = False
        self.kill_tree()
        return exited

    def waiting_for_input(self) -> bool:
        """The child (or a descendant) is blocked reading our empty stdin pipe (or its terminal)."""
        if self.terminal is not None and self.running and not self.terminal.input_pending():
            return blocked_reading(descendants(self.pid), self.terminal.reading_targets)
        if self._stdin_fd is None or not self.running:
            return False
        if pipe_unread(self._stdin_fd) > 0:
            return False
        return blocked_reading(descendants(self.pid), self._stdin_target)

    async def write_input(self, text: str) -> None:
        """Send text to the child's stdin (a reply to an input request)."""
        data = text.encode()
        if self.terminal is not None:
            await self.terminal.type(data, lambda: self.running)
        elif self._stdin_fd is not None:
            fd = self._stdin_fd
            await write_all(fd, data, lambda: self.running and self._stdin_fd == fd)

    def close_input(self) -> None:
        """End of file for the child's stdin (on a terminal: the EOF character; the terminal stays open)."""
        if self.terminal is not None:
            self.terminal.send_eof()
        if self._stdin_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._stdin_fd)
            self._stdin_fd = None

    def release(self) -> None:
        """Close the child's terminal, once it is gone (``kill_tree`` closes a stdin pipe at once)."""
        if self.terminal is not None:
            self.terminal.close()


async def serve_stdin(child: ChildProcess, ask: AskInput, relay: OutputRelay | None = None,
                      poll: float = 0.03) -> None:
    """While the child runs: each time it blocks reading stdin, ask the frontend and feed the answer.

    ``ask(prompt, password)`` returns the line, or None for end of file.
    """
    while child.running:
        await asyncio.sleep(poll)
        if not child.waiting_for_input():
            continue
        if relay is not None:  # what the program wrote before it asked comes first (prompt_order.py)
            await settle(child.pid, child.proc, READ_SYSCALLS, child._stdin_target)
            relay.flush()
        answer = await ask("", False)
        if answer is None:
            child.close_input()
            return
        await child.write_input(answer + "\n")


@dataclass
class ProgramResult:
    """How a child ended: ``returncode`` as asyncio reports it (negative = signal)."""

    returncode: int
    truncated: bool = False

    @property
    def signal(self) -> int | None:
        return -self.returncode if self.returncode < 0 else None

    @property
    def exit_code(self) -> int:
        """Shell convention: 128 + signal number for a child killed by a signal."""
        return 128 - self.returncode if self.returncode < 0 else self.returncode


async def run_child(child: ChildProcess, relay: OutputRelay, ask: AskInput | None = None,
                    drain_timeout: float = 1.0) -> ProgramResult:
    """Relay the child's output (and serve its stdin) until it exits; then clean up its tree."""
    transport: Any = getattr(child.proc, "_transport", None)  # asyncio keeps the pipes' transports private
    pumps = [asyncio.ensure_future(pump(reader, name, relay, transport and transport.get_pipe_transport(fd)))
             for fd, name, reader in ((1, "stdout", child.proc.stdout), (2, "stderr", child.proc.stderr))]
    stdin_task = asyncio.ensure_future(serve_stdin(child, ask, relay)) if ask else None
    try:
        returncode = await child.proc.wait()
        # Grandchildren may still hold the pipes open: give them a moment, then the tree goes.
        _, still = await asyncio.wait(pumps, timeout=drain_timeout)
        child.kill_tree()
        if still:
            await asyncio.wait(still, timeout=drain_timeout)
    finally:
        if stdin_task is not None:
            stdin_task.cancel()
        child.kill_tree()
        for task in pumps:
            task.cancel()
        relay.close()
    return ProgramResult(returncode, relay.truncated)
