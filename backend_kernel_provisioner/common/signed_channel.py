"""The launcher channel's wire format: ZeroMQ messages signed with the kernel's connection key.

The provisioner (a DEALER) drives the kernel-side launcher (a ROUTER) over one TCP
port announced in the launch payload. Every message is a Jupyter wire message made
by :class:`jupyter_client.session.Session` with the connection key (HMAC-SHA256), so
we inherit Jupyter's signing and its replay check: ``Session.deserialize`` refuses a
bad signature and a signature it has already seen. Its memory of signatures is bounded
(and culled at random when full), so a message must also be fresh: dated within
:data:`MAX_AGE` seconds. Only a holder of the connection key can ask anything, and a
captured message cannot be played twice.

Message types: ``request`` (``{"op", "args"}``) → ``reply`` (``{"ok", "result"|"error"}``,
parent = the request); ``event`` (a service/model event, or ``{"kernel_exit": code}``)
pushed to every peer that sent ``subscribe``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import zmq
from jupyter_client.session import Session

REQUEST, REPLY, EVENT = "request", "reply", "event"
#: Seconds a signed message stays acceptable (clocks of the two hosts may differ this much).
MAX_AGE = 300.0


def channel_session(key: bytes) -> Session:
    """A Session that signs with ``key`` and remembers every signature it accepted (replays refused)."""
    return Session(key=key, signature_scheme="hmac-sha256", username="backend-launcher")


class Refused(ValueError):
    """A message that is not signed with the key, or was seen before."""


def unpack(session: Session, frames: list[bytes], *, routed: bool) -> tuple[list[bytes], dict[str, Any]]:
    """Identities (for a ROUTER) and the checked message; :class:`Refused` when its signature is wrong or reused."""
    try:
        identities, msg_frames = session.feed_identities(frames, copy=True)
        # jupyter_client would date an undated header "now": the raw header must carry its own date.
        header = msg_frames[1] if len(msg_frames) > 1 else b"{}"
        if "date" not in json.loads(header if isinstance(header, bytes) else header.bytes):
            raise ValueError("undated message")
        message = session.deserialize(msg_frames, content=True, copy=True)  # checks signature and replay
    except Exception as exc:  # whatever a malformed message breaks, it is refused, never fatal to the channel
        raise Refused(str(exc) or type(exc).__name__) from None
    if not isinstance(message.get("content"), dict):
        raise Refused("content is not an object")
    date = message["header"].get("date")
    if not isinstance(date, datetime) or abs((datetime.now(timezone.utc) - date).total_seconds()) > MAX_AGE:
        raise Refused(f"stale or undated message (date {date!s}; accepted within {MAX_AGE:g} s)")
    if not routed:
        identities = []
    return identities, message


async def receive(session: Session, socket: Any, *, routed: bool,
                  refused: Callable[[list[bytes], str], None]) -> tuple[list[bytes], dict[str, Any]]:
    """The next message that passes :func:`unpack`'s checks (identities, message); each one refused on the way
    is handed to ``refused`` (its frames, the reason) and never returned."""
    while True:
        frames = await socket.recv_multipart()
        try:
            return unpack(session, frames, routed=routed)
        except Refused as exc:
            refused(frames, str(exc))


def send(session: Session, socket: zmq.Socket, msg_type: str, content: dict[str, Any], *,
         parent: dict[str, Any] | None = None, ident: list[bytes] | None = None) -> dict[str, Any]:
    """Sign and send one message; returns it (its ``header.msg_id`` identifies the reply)."""
    message = session.send(socket, msg_type, content, parent=parent, ident=ident)
    assert message is not None  # None only for a socket of None
    return message


def log_refused(log: logging.Logger, who: str, reason: str) -> None:
    log.warning("launcher channel: refused a message from %s: %s", who, reason)
