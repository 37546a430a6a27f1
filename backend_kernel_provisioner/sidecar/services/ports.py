"""Ports: reservations that are never raced for, and readiness checks that never busy-sleep.

A reserved port stays bound (``SO_REUSEADDR``, not listening) until the service
answers on it, so no other process on the machine can be handed that port in
between; servers that set ``SO_REUSEADDR`` themselves (Python, Node, Go, sshd,
tornado, ...) can still bind it.
"""

from __future__ import annotations

import asyncio
import socket

from backend_kernel_provisioner.sidecar.services.definitions import Readiness

LOOPBACK = "127.0.0.1"


class PortInUse(OSError):
    """The requested port already has a listener."""


def reserve_port(port: int = 0, host: str = LOOPBACK) -> socket.socket:
    """Bind (without listening) ``port`` (0: a free one); raise :class:`PortInUse` when taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PortInUse(f"port {port} is in use: {exc.strerror}") from None
    return sock


async def _probe(port: int, readiness: Readiness) -> bool:
    try:
        reader, writer = await asyncio.open_connection(LOOPBACK, port)
    except OSError:
        return False
    try:
        if readiness.type != "http":
            return True
        writer.write(f"GET {readiness.path} HTTP/1.0\r\nHost: {LOOPBACK}:{port}\r\n\r\n".encode())
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 5.0)
        parts = line.split()
        return len(parts) >= 2 and parts[1].isdigit() and int(parts[1]) in readiness.status
    except (OSError, asyncio.TimeoutError):
        return False
    finally:
        writer.close()


#: Longest pause between two readiness probes, in seconds.
READINESS_POLL_CAP = 0.02


async def wait_until_ready(port: int, readiness: Readiness, timeout: float) -> bool:
    """Probe ``port`` with a backoff of 5 ms doubling to 20 ms; False after ``timeout`` seconds.

    Callers race this against the process's ``wait()``, so an early exit is seen at once.
    The cap bounds how late readiness is noticed (a refused loopback connect costs microseconds).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = 0.005
    while True:
        if await _probe(port, readiness):
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
        delay = min(delay * 2, READINESS_POLL_CAP)
