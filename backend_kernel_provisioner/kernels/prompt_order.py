"""What a program wrote before it asked for input reaches the frontend before the input box.

Why: a program that prints a prompt and then reads stdin expects the prompt on the screen first. Between
its write and our ``input_request`` three things can hold the prompt back, and each has its step here:

* the program's own output buffer: C's stdio keeps a prompt without a newline in its buffer when stdout
  is a pipe (glibc flushes stdout before reading stdin only when both are terminals). C and C++ programs
  are linked with a small handler (:mod:`.stdio_prompt`) that flushes stdout on a signal; the kernel
  sends that signal to the very thread that sleeps reading stdin and waits until it reads again;
* the pipes and our stream readers: what the program wrote may still be in the pipe, or read but not yet
  handed to the relay (Java's and Go's prompts are written at once, yet came after the input request in
  2 of 3 runs): :func:`drain` waits until both pipes and readers are empty;
* ipykernel's IOPub thread: stream messages are sent by a thread of their own while ``input_request``
  goes out on the stdin channel at once: :func:`iopub_sent` waits until the thread sent what came before.

Only the standard library here: :mod:`.process` calls :func:`settle` from its stdin server.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import os
import signal
import struct
import termios
from collections.abc import Collection
from typing import Any

#: The signal on which a program linked with the stdio handler flushes stdout (a real-time signal: no
#: program expects it, and a queued real-time signal is never lost).
FLUSH_SIGNAL = signal.SIGRTMAX - 2
#: Set in a program's environment (to the signal number) when the kernel wants it to install the handler:
#: a program linked with it and run elsewhere behaves as if it was not.
FLUSH_SIGNAL_ENV = "BACKEND_PROMPT_FLUSH_SIGNAL"

_LIBC = ctypes.CDLL(None, use_errno=True)
_TGKILL = getattr(_LIBC, "tgkill", None)  # glibc >= 2.30


def _read(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read().decode(errors="replace")
    except OSError:
        return ""


def _mask(status: str, field: str) -> int:
    """A signal mask line of /proc/.../status (``SigCgt:\\t0000000000004a02``) as an int (0 when absent)."""
    for line in status.splitlines():
        if line.startswith(field + ":"):
            with contextlib.suppress(ValueError):
                return int(line.split()[1], 16)
    return 0


def _bit(signum: int) -> int:
    return 1 << (signum - 1)


def _in_read(pid: int, tid: int, read_syscalls: Collection[int], targets: Collection[str]) -> bool:
    """Thread ``tid`` sleeps in a read of a file descriptor linked to one of ``targets`` (its stdin)."""
    fields = _read(f"/proc/{pid}/task/{tid}/syscall").split()
    if len(fields) < 2 or not fields[0].isdigit() or int(fields[0]) not in read_syscalls:
        return False
    try:
        return os.readlink(f"/proc/{pid}/fd/{int(fields[1], 16)}") in targets
    except (OSError, ValueError):
        return False


def flush_readers(pid: int, read_syscalls: Collection[int], targets: Collection[str]) -> list[int]:
    """Signal each thread of ``pid`` that reads stdin to flush its stdout, when ``pid`` was started to
    install the handler and has it installed; the threads signalled (they run the handler next)."""
    marker = f"{FLUSH_SIGNAL_ENV}={FLUSH_SIGNAL}"
    if _TGKILL is None or marker not in _read(f"/proc/{pid}/environ").split("\0"):
        return []
    if not _mask(_read(f"/proc/{pid}/status"), "SigCgt") & _bit(FLUSH_SIGNAL):
        return []
    signalled = []
    with contextlib.suppress(OSError):
        for name in os.listdir(f"/proc/{pid}/task"):
            tid = int(name)
            blocked = _mask(_read(f"/proc/{pid}/task/{tid}/status"), "SigBlk") & _bit(FLUSH_SIGNAL)
            if not blocked and _in_read(pid, tid, read_syscalls, targets) and _TGKILL(pid, tid, FLUSH_SIGNAL) == 0:
                signalled.append(tid)
    return signalled


def _flushed(pid: int, tid: int, read_syscalls: Collection[int], targets: Collection[str]) -> bool:
    """The signal was taken (no longer pending) and the thread reads stdin again (its handler returned),
    or the thread is gone."""
    status = _read(f"/proc/{pid}/task/{tid}/status")
    if not status or "State:\tZ" in status:
        return True
    if _mask(status, "SigPnd") & _bit(FLUSH_SIGNAL):
        return False
    return _in_read(pid, tid, read_syscalls, targets)


async def flush_stdio(pid: int, read_syscalls: Collection[int], targets: Collection[str],
                      limit: float = 1.0) -> None:
    """Have the program's stdio buffer written to its stdout pipe (see :func:`flush_readers`), waiting at
    most ``limit`` seconds (a handler blocked on a full pipe waits for our readers, which run meanwhile)."""
    threads = flush_readers(pid, read_syscalls, targets)
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while threads and loop.time() < end:
        await asyncio.sleep(0.002)
        threads = [tid for tid in threads if not _flushed(pid, tid, read_syscalls, targets)]


def pipe_unread(fd: int) -> int:
    """Bytes waiting in a pipe (FIONREAD); 0 when the pipe is closed."""
    try:
        return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, struct.pack("i", 0)))[0]
    except OSError:
        return 0


def unread(proc: asyncio.subprocess.Process) -> int:
    """Bytes the program wrote that our stream readers have not handed on yet: still in its stdout and
    stderr pipes, or in the readers' buffers (asyncio keeps both out of its public API)."""
    total = 0
    transport: Any = getattr(proc, "_transport", None)
    for fd, reader in ((1, proc.stdout), (2, proc.stderr)):
        total += len(getattr(reader, "_buffer", b""))
        pipe = transport.get_pipe_transport(fd) if transport is not None else None
        file = pipe.get_extra_info("pipe") if pipe is not None else None
        if file is not None:
            with contextlib.suppress(OSError, ValueError):
                total += pipe_unread(file.fileno())
    return total


async def drain(proc: asyncio.subprocess.Process, limit: float = 1.0) -> None:
    """Let the output pumps take everything the program wrote so far (at most ``limit`` seconds)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while unread(proc) > 0 and loop.time() < end:
        await asyncio.sleep(0.002)
    for _ in range(3):  # a pump woken by its reader feeds the relay on its next turn
        await asyncio.sleep(0)


async def settle(pid: int, proc: asyncio.subprocess.Process, read_syscalls: Collection[int],
                 stdin_target: str) -> None:
    """Before asking for input: the program's buffered output flushed (C, C++), then all of it read."""
    if stdin_target:
        await flush_stdio(pid, read_syscalls, (stdin_target,))
    await drain(proc)


async def iopub_sent(kernel: Any, timeout: float = 2.0) -> None:
    """Wait until ipykernel's IOPub thread has sent every message published before (as ipykernel's own
    ``input()`` flushes its streams before it asks), so a frontend gets the prompt before the input box."""
    thread = getattr(kernel, "iopub_thread", None)
    if thread is None or not getattr(thread, "thread", None) or not thread.thread.is_alive():
        return
    loop = asyncio.get_running_loop()
    sent: asyncio.Future[None] = loop.create_future()

    def done() -> None:
        if not sent.done():
            sent.set_result(None)

    def mark() -> None:  # runs in the IOPub thread, after the sends queued before it
        with contextlib.suppress(RuntimeError):  # our loop is closing
            loop.call_soon_threadsafe(done)

    thread.schedule(mark)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(sent, timeout)
