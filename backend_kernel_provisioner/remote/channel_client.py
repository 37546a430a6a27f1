"""The provisioner's end of the launcher's signed channel (wire format: :mod:`..common.signed_channel`).

One DEALER per kernel. Requests wait for their own reply (matched by message
id); events are handed to ``on_event`` in the order the launcher sent them. A
heartbeat keeps the launcher's lease and tells us when the launcher is gone:
after ``lost_after`` seconds without any reply, every pending request fails at
once instead of waiting for its timeout.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
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


class LauncherError(RuntimeError):
    """The launcher refused a request, failed it, or is gone."""


class LauncherChannel:
    """Signed requests to one launcher, its events, and the heartbeat that keeps its lease."""

    def __init__(self, host: str, port: int, key: bytes, *, log: logging.Logger,
                 on_event: Callable[[dict[str, Any]], None], heartbeat: float = 1.0, lost_after: float = 10.0) -> None:
        self.address = f"tcp://{host}:{port}"
        self.session = channel_session(key)
        self.log = log
        self.on_event = on_event
        self.heartbeat = heartbeat
        self.lost_after = lost_after
        self.last_reply = time.monotonic()
        self.lost = False
        self._unanswered = 0  # heartbeats sent since the launcher last said anything
        self._socket: zmq.asyncio.Socket | None = None
        self._pending: dict[str, asyncio.Future] = {}
        self._tasks: list[asyncio.Task] = []

    def connect(self) -> None:
        socket = zmq.asyncio.Context.instance().socket(zmq.DEALER)
        socket.linger = 0
        socket.connect(self.address)
        self._socket = socket
        self.last_reply = time.monotonic()
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._beat())]

    @property
    def alive(self) -> bool:
        return self._socket is not None and not self.lost

    async def call(self, op: str, timeout: float = 60.0, **args: Any) -> Any:
        """Send one signed request; its result, or :class:`LauncherError`."""
        if self._socket is None or self.lost:
            raise LauncherError(f"the launcher at {self.address} is gone")
        message = send(self.session, self._socket, REQUEST, {"op": op, "args": args})
        msg_id = message["header"]["msg_id"]
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        try:
            reply = await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            raise LauncherError(f"the launcher did not answer {op!r} within {timeout:g} s") from None
        finally:
            self._pending.pop(msg_id, None)
        if not reply.get("ok"):
            raise LauncherError(f"{op}: {reply.get('error') or 'failed'}")
        return reply.get("result")

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self._fail_pending("the channel was closed")
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    # -- background ------------------------------------------------------------------------

    async def _read(self) -> None:
        assert self._socket is not None
        while True:
            _, message = await receive(self.session, self._socket, routed=False,
                                       refused=lambda _frames, reason: log_refused(self.log, self.address, reason))
            self.last_reply = time.monotonic()
            self._unanswered = 0
            if message["msg_type"] == REPLY:
                future = self._pending.get(message["parent_header"].get("msg_id", ""))
                if future is not None and not future.done():
                    future.set_result(message["content"])
            elif message["msg_type"] == EVENT:
                try:
                    self.on_event(message["content"])
                except Exception:  # a consumer's bug must not stop the channel
                    self.log.exception("launcher event handler failed")

    async def _beat(self) -> None:
        """A ping every ``heartbeat``; the launcher is taken as gone when it has been silent for ``lost_after``
        *and* that many seconds' worth of pings went unanswered: a stall of this process's own event loop
        (the replies wait, unread, in the socket) is not the launcher's silence."""
        needed = max(1, int(self.lost_after / self.heartbeat))
        while True:
            await asyncio.sleep(self.heartbeat)
            if self._socket is not None:
                send(self.session, self._socket, REQUEST, {"op": "ping", "args": {}})
                self._unanswered += 1
            silent = time.monotonic() - self.last_reply > self.lost_after and self._unanswered > needed
            if silent and not self.lost:
                self.lost = True
                self.log.warning("launcher at %s silent for %.0f s: taken as gone", self.address, self.lost_after)
                self._fail_pending("the launcher stopped answering")

    def _fail_pending(self, why: str) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(LauncherError(why))
