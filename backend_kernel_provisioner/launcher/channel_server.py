"""The launcher's end of the signed channel (wire format: :mod:`backend_kernel_provisioner.common.signed_channel`).

A ZeroMQ ROUTER on the port announced in the launch payload. Requests run
concurrently (a slow service start does not hold up an interrupt or a
heartbeat); every peer that asked ``subscribe`` gets each event. Messages that
are unsigned, signed with another key, replayed or stale are refused, counted
and logged, never answered.

The channel is also the launcher's lease: :attr:`last_contact` is the time of
the last accepted message. A launcher whose provisioner went silent (its
server was killed, the network is gone) shuts down instead of orphaning the
kernel and its services.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import zmq
import zmq.asyncio

from backend_kernel_provisioner.common.signed_channel import (
    EVENT,
    REPLY,
    REQUEST,
    channel_session,
    log_refused,
    receive,
    send,
)

Handler = Callable[..., Any | Awaitable[Any]]


class ChannelServer:
    """Answers signed requests with registered handlers (``op`` → function of keyword args)."""

    def __init__(self, key: bytes, log: logging.Logger) -> None:
        self.session = channel_session(key)
        self.log = log
        self.handlers: dict[str, Handler] = {"ping": lambda: "pong", "subscribe": lambda: []}
        self.subscribers: list[list[bytes]] = []
        self.refused = 0
        self.last_contact = time.monotonic()
        self.contacted = False
        self.port = 0
        self._socket: zmq.asyncio.Socket | None = None
        self._serving: asyncio.Task | None = None
        self._answers: set[asyncio.Task] = set()
        self._current_peer: list[bytes] = []

    def register(self, op: str, handler: Handler) -> None:
        self.handlers[op] = handler

    async def start(self, host: str, port: int = 0) -> int:
        socket = zmq.asyncio.Context.instance().socket(zmq.ROUTER)
        socket.linger = 1000
        if port:
            socket.bind(f"tcp://{host}:{port}")
            self.port = port
        else:
            self.port = socket.bind_to_random_port(f"tcp://{host}")
        self._socket = socket
        self._serving = asyncio.create_task(self._serve())
        return self.port

    def publish(self, event: dict[str, Any]) -> None:
        """Push ``event`` to every subscriber (never blocks: ZeroMQ queues it)."""
        if self._socket is None:
            return
        for ident in self.subscribers:
            send(self.session, self._socket, EVENT, event, ident=ident)

    async def close(self) -> None:
        if self._serving is not None:
            self._serving.cancel()
            await asyncio.gather(self._serving, return_exceptions=True)
            self._serving = None
        if self._answers:  # let replies in flight (the shutdown's own) go out
            await asyncio.wait(self._answers, timeout=5)
        if self._socket is not None:
            self._socket.close(linger=1000)
            self._socket = None

    # -- serving ---------------------------------------------------------------------------

    async def _serve(self) -> None:
        assert self._socket is not None
        while True:
            ident, message = await receive(self.session, self._socket, routed=True, refused=self._refuse)
            self.last_contact = time.monotonic()
            self.contacted = True
            if message["msg_type"] != REQUEST:
                continue
            task = asyncio.create_task(self._answer(ident, message))
            self._answers.add(task)
            task.add_done_callback(self._answers.discard)

    def _refuse(self, frames: list[bytes], reason: str) -> None:
        self.refused += 1
        log_refused(self.log, _peer_name(frames), reason)

    async def _answer(self, ident: list[bytes], message: dict[str, Any]) -> None:
        content = message["content"]  # an object: unpack refuses anything else
        op, args = content.get("op"), content.get("args") or {}
        handler = self.handlers.get(op) if isinstance(op, str) else None
        if handler is None:
            reply = {"ok": False, "error": f"unknown operation {op!r} (known: {', '.join(sorted(self.handlers))})"}
        elif not isinstance(args, dict):
            reply = {"ok": False, "error": "args must be an object"}
        else:
            try:
                if op == "subscribe" and ident not in self.subscribers:  # its handler returns the current state
                    self.subscribers.append(ident)
                result = handler(**args)
                if inspect.isawaitable(result):
                    result = await result
                reply = {"ok": True, "result": result}
            except Exception as exc:  # reported to the provisioner, never fatal for the launcher
                self.log.debug("channel op %s failed", op, exc_info=True)
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        if self._socket is not None:
            send(self.session, self._socket, REPLY, reply, parent=message, ident=ident)

    def silent_for(self) -> float:
        """Seconds since the last accepted message."""
        return time.monotonic() - self.last_contact


def _peer_name(frames: list[bytes]) -> str:
    """The ROUTER identity of the sender (hex), for the log."""
    return f"peer {frames[0].hex()}" if frames else "an unknown peer"
