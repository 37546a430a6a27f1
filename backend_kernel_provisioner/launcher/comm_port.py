"""gateway_provisioners' comm port: ``{"signum": N}`` and ``{"shutdown": 1}`` as plain JSON over TCP.

Its stock provisioners interrupt through it (``send_signal``), poll with signal 0,
and ask the launcher to finish with ``shutdown``. The protocol carries no
authentication (that is gateway_provisioners' design): it can only signal the
kernel's process group or ask for the exit that a kernel shutdown brings anyway.
Everything else goes through the signed channel (:mod:`.channel_server`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

MAX_REQUEST = 64 * 1024


class CommPort:
    """Listens on ``host:port``; hands each decoded request to ``on_request``."""

    def __init__(self, on_request: Callable[[dict[str, Any]], None], log: logging.Logger) -> None:
        self.on_request = on_request
        self.log = log
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self, host: str, port: int = 0) -> int:
        self._server = await asyncio.start_server(self._serve, host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            data = await asyncio.wait_for(_read_to_end(reader), 10)
            request = json.loads(data) if data else None
            if isinstance(request, dict):
                self.on_request(request)
        except (OSError, ValueError, asyncio.TimeoutError) as exc:
            self.log.debug("comm port: dropped a request: %s", exc)
        finally:
            writer.close()


async def _read_to_end(reader: asyncio.StreamReader) -> bytes:
    """The sender closes its side after writing; a request over :data:`MAX_REQUEST` bytes is refused."""
    data = b""
    while chunk := await reader.read(4096):
        data += chunk
        if len(data) > MAX_REQUEST:
            raise ValueError(f"request larger than {MAX_REQUEST} bytes")
    return data
