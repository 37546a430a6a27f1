"""The sidecar's end of the kernel's control channel (protocol: :mod:`backend_kernel_provisioner.common.control`).

The sidecar serves a Unix socket, inside its asyncio loop,
in a private 0700 folder; the kernel learns its path and a random token from
``BACKEND_CONTROL_SOCKET`` / ``BACKEND_CONTROL_TOKEN`` (services never inherit
them).  Only a process that can reach the folder (same user) *and* knows the
token (that kernel and its children) gets an answer.

Protocol: one JSON line ``{"token", "op", "args"}`` in, one JSON line
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "..."}`` out.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import json
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from backend_kernel_provisioner.common.control import MAX_REQUEST, SOCKET_ENV, TOKEN_ENV
from backend_kernel_provisioner.common.leftovers import make_private_dir, remove_private_dir

Handler = Callable[..., Any | Awaitable[Any]]


class ControlServer:
    """Answers control requests with registered handlers (``op`` → function of keyword args)."""

    def __init__(self, log: logging.Logger | None = None) -> None:
        self.log = log or logging.getLogger(__name__)
        self.handlers: dict[str, Handler] = {}
        self.token = secrets.token_hex(32)
        self.folder: str | None = None
        self.path: str | None = None
        self._server: asyncio.AbstractServer | None = None

    def register(self, op: str, handler: Handler) -> None:
        self.handlers[op] = handler

    @property
    def env(self) -> dict[str, str]:
        """What the kernel process needs to reach this server."""
        return {SOCKET_ENV: self.path or "", TOKEN_ENV: self.token} if self.path else {}

    async def start(self) -> None:
        if self._server is not None:
            return
        self.folder = make_private_dir("bkp-ctl-")  # mode 0700, with its owner record for the sweep
        self.path = os.path.join(self.folder, "control.sock")
        self._server = await asyncio.start_unix_server(self._serve, path=self.path, limit=MAX_REQUEST)
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self.folder:
            remove_private_dir(self.folder)
            self.folder = self.path = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            reply = await self._answer(await reader.readline())
            writer.write(json.dumps(reply, default=str).encode() + b"\n")
            await writer.drain()
        except (OSError, ValueError) as exc:  # a client that went away or sent too much
            self.log.debug("control connection dropped: %s", exc)
        finally:
            writer.close()

    async def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
            token, op, args = request["token"], request["op"], request.get("args") or {}
        except (ValueError, KeyError, TypeError):
            return {"ok": False, "error": "malformed request"}
        if not isinstance(token, str) or not hmac.compare_digest(token, self.token):
            return {"ok": False, "error": "bad token"}
        handler = self.handlers.get(op)
        if handler is None:
            return {"ok": False, "error": f"unknown operation {op!r} (known: {', '.join(sorted(self.handlers))})"}
        try:
            result = handler(**args)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:  # reported to the kernel, never raised into the server
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        return {"ok": True, "result": result}
