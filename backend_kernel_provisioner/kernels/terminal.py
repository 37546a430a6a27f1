"""A pseudo-terminal for a session interpreter (the shell kernel's bash).

Why a terminal: on pipes, ``tty`` says "not a tty", ``stty size`` fails, programs
that need a terminal refuse to run, and C and Python programs buffer their output
until they exit. On a pseudo-terminal they behave as in a terminal window: line
buffering, a window size (``%resize`` sets it with TIOCSWINSZ, SIGWINCH included),
and a controlling terminal, so ``/dev/tty`` (``ssh`` and ``sudo`` prompts) works.

What is on the terminal: the child's stdin and stdout. Its stderr stays a pipe, so
the frontend still shows errors apart (red): on a real terminal both would merge.
The terminal's modes are those of a program's pipe as far as possible: no echo (an
answer to ``input_request`` is not printed twice) and no ``\\n`` -> ``\\r\\n`` output
translation (ONLCR off), so output bytes are exactly what programs wrote. Input stays
canonical (line by line, ``^D`` is end of file), as a reader of a terminal expects.

The kernel keeps its own descriptor of the terminal's slave side: the master never
reads EIO when the shell exits (the session ends on the process's exit instead), and
polling that descriptor tells whether a typed line is still unread.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import select
import struct
import termios
from collections.abc import Callable
from typing import Protocol

from backend_kernel_provisioner.common.childproc import PIPE, spawn

#: The window size of a new terminal (rows, columns), the classic terminal's.
DEFAULT_SIZE = (24, 80)
#: Reads of the master per wake-up: a program printing without pause cannot starve the event loop.
_READS_PER_WAKE = 16
#: Linux's IUTF8 input flag (the termios module has it from Python 3.12 on).
_IUTF8 = getattr(termios, "IUTF8", 0o40000)


class Feed(Protocol):
    """Where the terminal's output goes (an ``OutputRelay`` or the session's router)."""

    def feed(self, name: str, data: bytes) -> None: ...


async def write_all(fd: int, data: bytes, alive: Callable[[], bool]) -> None:
    """Write ``data`` to the non-blocking ``fd`` (a child's stdin pipe, a terminal's master), waiting while it
    is full; give up when the reader is gone (a write error) or ``alive()`` turns false while it waits (which
    also covers ``fd`` closed meanwhile by its owner)."""
    while data:
        try:
            written = os.write(fd, data)
        except BlockingIOError:
            await asyncio.sleep(0.02)
            if not alive():
                return
            continue
        except OSError:
            return
        data = data[written:]


class Terminal:
    """The master side of one pseudo-terminal, and the kernel's descriptor of its slave."""

    def __init__(self, rows: int = DEFAULT_SIZE[0], columns: int = DEFAULT_SIZE[1]) -> None:
        self._output: Feed | None = None
        self._name = "stdout"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._eof_sent = False
        self.master, self.slave = os.openpty()  # glibc opens the slave with O_NOCTTY: never ours
        try:
            attrs = termios.tcgetattr(self.slave)
            attrs[0] |= _IUTF8                            # iflag: erase whole UTF-8 characters
            attrs[1] &= ~termios.ONLCR                    # oflag: "\n" stays "\n"
            attrs[3] &= ~(termios.ECHO | termios.ECHONL)  # lflag: answers are not echoed
            termios.tcsetattr(self.slave, termios.TCSANOW, attrs)
            self.eof_char = bytes(attrs[6][termios.VEOF])
            self.set_size(rows, columns)
            os.set_blocking(self.master, False)
            #: What /proc/PID/fd/N of a reader of this terminal links to (reads of /dev/tty count too).
            self.reading_targets = (os.ttyname(self.slave), "/dev/tty")
        except BaseException:
            self.close()
            raise

    async def spawn(self, argv: list[str], *, cwd: str | None, env: dict[str, str] | None
                    ) -> asyncio.subprocess.Process:
        """Start ``argv`` on the terminal (stdin, stdout, controlling terminal); stderr is a pipe.
        The terminal is closed when the start fails."""
        try:
            return await spawn(argv, cwd=cwd, env=env, stdin=self.slave, stdout=self.slave, stderr=PIPE,
                               controlling_terminal=True)
        except BaseException:
            self.close()
            raise

    # -- window ---------------------------------------------------------------------------

    def set_size(self, rows: int, columns: int) -> None:
        """Set the window size (the foreground programs get SIGWINCH, as when a window is resized)."""
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))

    def size(self) -> tuple[int, int]:
        rows, columns, _, _ = struct.unpack("HHHH", fcntl.ioctl(self.master, termios.TIOCGWINSZ, bytes(8)))
        return rows, columns

    # -- output ---------------------------------------------------------------------------

    def start_reading(self, output: Feed, name: str = "stdout") -> None:
        """Feed everything the programs write to ``output`` as stream ``name``, as it comes."""
        self._output, self._name = output, name
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.master, self.read_available)

    def read_available(self) -> int:
        """Read what is there now (without blocking) and feed it; the number of bytes read.

        A read of the master also waits for bytes still on their way through the terminal
        layer (the kernel flushes them first), so after a program's write returned, this sees them.
        """
        total = 0
        for _ in range(_READS_PER_WAKE):
            if self.master < 0 or self._output is None:
                break
            try:
                data = os.read(self.master, 65536)
            except BlockingIOError:
                break
            except OSError:  # EIO: hung up (a program called vhangup); nothing more will come
                self._stop_reading()
                break
            if not data:
                self._stop_reading()
                break
            total += len(data)
            self._output.feed(self._name, data)
        return total

    def _stop_reading(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(self.master)

    # -- input ----------------------------------------------------------------------------

    def input_pending(self) -> bool:
        """A whole line typed to the terminal is still unread (polling also lets typed bytes still on
        their way arrive first, so a reader just answered is not taken for one still waiting)."""
        if self.slave < 0:
            return False
        poller = select.poll()
        poller.register(self.slave, select.POLLIN)
        return bool(poller.poll(0))

    async def type(self, data: bytes, alive: Callable[[], bool]) -> None:
        """Type ``data``, waiting while the terminal's input is full. The kernel holds the slave open, so
        typing to a terminal nobody reads any more never fails: give up once ``alive()`` is false."""
        if self.master >= 0:
            master = self.master
            await write_all(master, data, lambda: alive() and self.master == master)

    def send_eof(self) -> None:
        """End of file for a reader of the terminal (the EOF character, ``^D``), once; the terminal stays
        open, unlike closing the master, which would hang up the shell in the middle of its exit."""
        if self._eof_sent or self.master < 0:
            return
        self._eof_sent = True
        with contextlib.suppress(OSError):
            os.write(self.master, self.eof_char)

    def close(self) -> None:
        """Stop reading and close both sides (what still has the terminal open is hung up)."""
        self._stop_reading()
        for name in ("master", "slave"):
            fd = getattr(self, name, -1)
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
            setattr(self, name, -1)
