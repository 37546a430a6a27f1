"""A real HTTP server on loopback that a test can tell to answer, fail, hang or go away."""

from __future__ import annotations

import asyncio
from collections import Counter


class ProbeServer:
    """Answers every request with ``status`` (``None`` = hang until released); counts requests."""

    def __init__(self) -> None:
        self.status: int | None = 200
        self.port = 0
        self.requests: Counter[int | None] = Counter()  # by the status mode they met
        self.paths: list[str] = []
        self._server: asyncio.base_events.Server | None = None
        self._release = asyncio.Event()
        self._handlers: set[asyncio.Task] = set()

    async def start(self) -> ProbeServer:
        """Listen (again) on 127.0.0.1; the first start picks a free port, restarts reuse it."""
        self._release = asyncio.Event()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Stop listening and drop open connections (hanging ones included)."""
        self._release.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._handlers):
            task.cancel()

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._handlers.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.paths.append(head.split(b" ", 2)[1].decode())
            status = self.status
            self.requests[status] += 1
            if status is None:
                await self._release.wait()
                return
            body = b"" if status in (204, 304) else b"ok\n"
            writer.write(
                f"HTTP/1.1 {status} X\r\n{_length(status, body)}Connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._handlers.discard(task)
            writer.close()


def _length(status: int, body: bytes) -> str:
    """A 204 must carry no Content-Length (clients refuse it)."""
    return "" if status == 204 else f"Content-Length: {len(body)}\r\n"
