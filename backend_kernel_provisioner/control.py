"""The kernel → provisioner control channel.

The provisioner serves a Unix socket, inside the Jupyter server's asyncio loop,
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
import shutil
import socket
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any

SOCKET_ENV = "BACKEND_CONTROL_SOCKET"
TOKEN_ENV = "BACKEND_CONTROL_TOKEN"
MAX_REQUEST = 1 << 20

Handler = Callable[..., Any | Awaitable[Any]]


class ControlError(RuntimeError):
    """The provisioner refused or could not answer a control request."""


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
        self.folder = tempfile.mkdtemp(prefix="bkp-ctl-")  # mode 0700
        self.path = os.path.join(self.folder, "control.sock")
        self._server = await asyncio.start_unix_server(self._serve, path=self.path, limit=MAX_REQUEST)
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)
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


def call(op: str, timeout: float = 120.0, **args: Any) -> Any:
    """Synchronous client for the kernel side: send one request, return its result or raise."""
    path, token = os.environ.get(SOCKET_ENV), os.environ.get(TOKEN_ENV)
    if not path or not token:
        raise ControlError("no control channel: this kernel was not started by the backend provisioner")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
            sock.sendall(json.dumps({"token": token, "op": op, "args": args}).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError as exc:
            raise ControlError(f"control channel {path}: {exc}") from None
    try:
        reply = json.loads(data)
    except ValueError:
        raise ControlError("control channel closed without an answer") from None
    if not reply.get("ok"):
        raise ControlError(reply.get("error") or "request failed")
    return reply.get("result")
