"""The kernel → sidecar control channel: its protocol and the kernel-side client.

The sidecar serves a Unix socket in a private 0700 folder
(:mod:`backend_kernel_provisioner.sidecar.control`); the kernel learns its path
and a random token from ``BACKEND_CONTROL_SOCKET`` / ``BACKEND_CONTROL_TOKEN``
(services never inherit them).

Protocol: one JSON line ``{"token", "op", "args"}`` in, one JSON line
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "..."}`` out.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any

SOCKET_ENV = "BACKEND_CONTROL_SOCKET"
TOKEN_ENV = "BACKEND_CONTROL_TOKEN"
MAX_REQUEST = 1 << 20


class ControlError(RuntimeError):
    """The sidecar refused or could not answer a control request."""


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
