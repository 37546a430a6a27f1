"""The rest of a program's output once a cell's output limit has cut it: thrown away inside the kernel.

Why: a program that prints 50 MB into a cell that shows 1 MB must still have
all 50 MB read, or it blocks on a full pipe. Read through asyncio's stream
reader, every byte is copied three times through Python (about 1 ms per MB);
``splice(2)`` into ``/dev/null`` moves the pipe's pages without copying them,
which is what lets a program flood its output at nearly the speed it would
write to ``/dev/null`` itself.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

#: Bytes per splice call (the kernel moves at most a pipe's worth per call anyway).
SPLICE_CHUNK = 1 << 20

_devnull: int | None = None


def _sink() -> int:
    global _devnull
    if _devnull is None:
        _devnull = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    return _devnull


async def discard_rest(pipe: asyncio.ReadTransport) -> int:
    """Stop ``pipe`` (a subprocess's stdout or stderr transport) feeding its reader, discard everything
    still to come until end of file, then close it (its reader sees end of file); the bytes discarded.

    Where ``splice`` is refused (not a pipe), it reads and drops instead."""
    file: Any = pipe.get_extra_info("pipe")
    if file is None or pipe.is_closing():
        return 0
    fd = file.fileno()
    loop = asyncio.get_running_loop()
    finished: asyncio.Future[None] = loop.create_future()
    total = 0

    def move() -> int:
        try:
            return os.splice(fd, _sink(), SPLICE_CHUNK)
        except BlockingIOError:
            raise
        except OSError:  # EINVAL: not a pipe; read and drop instead
            return len(os.read(fd, SPLICE_CHUNK))

    def drain() -> None:
        nonlocal total
        while True:
            try:
                moved = move()
            except BlockingIOError:
                return
            except OSError:
                moved = 0
            if moved == 0:
                break
            total += moved
        loop.remove_reader(fd)
        if not finished.done():
            finished.set_result(None)

    pipe.pause_reading()
    loop.add_reader(fd, drain)
    try:
        await finished
    finally:
        loop.remove_reader(fd)
        pipe.close()
    return total
