"""Ports: reservations that are never raced for, and readiness checks that never busy-sleep.

A reserved port stays bound (``SO_REUSEADDR``, not listening) until the service
answers on it, so no other process on the machine can be handed that port in
between; servers that set ``SO_REUSEADDR`` themselves (Python, Node, Go, sshd,
tornado, ...) can still bind it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from backend_kernel_provisioner.sidecar.services.definitions import Readiness

LOOPBACK = "127.0.0.1"


def check_bind_address(value: str) -> str:
    """``value`` as a canonical IP address to listen on; ValueError naming it otherwise.

    Only IP literals: a host name could resolve to another address later, and the
    point of the setting is to know exactly where a service listens.
    """
    try:
        return str(ipaddress.ip_address(str(value).strip()))
    except ValueError:
        raise ValueError(f"bind address {value!r} is not an IPv4 or IPv6 address "
                         "(use 127.0.0.1 for this machine only, or the address of one interface)") from None


def probe_address(bind_address: str) -> str:
    """Where to connect to reach a listener on ``bind_address`` (the wildcard: loopback)."""
    address = ipaddress.ip_address(bind_address)
    if address.is_unspecified:
        return "::1" if address.version == 6 else LOOPBACK
    return bind_address


class PortInUse(OSError):
    """The requested port already has a listener."""


def reserve_port(port: int = 0, host: str = LOOPBACK) -> socket.socket:
    """Bind (without listening) ``port`` (0: a free one); raise :class:`PortInUse` when taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PortInUse(f"port {port} is in use: {exc.strerror}") from None
    return sock


async def _probe(port: int, readiness: Readiness, host: str = LOOPBACK) -> bool:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    try:
        if readiness.type != "http":
            return True
        writer.write(f"GET {readiness.path} HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n".encode())
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


async def wait_until_ready(port: int, readiness: Readiness, timeout: float, host: str = LOOPBACK) -> bool:
    """Probe ``port`` with a backoff of 5 ms doubling to 20 ms; False after ``timeout`` seconds.

    Callers race this against the process's ``wait()``, so an early exit is seen at once.
    The cap bounds how late readiness is noticed (a refused loopback connect costs microseconds).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = 0.005
    while True:
        if await _probe(port, readiness, host):
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
        delay = min(delay * 2, READINESS_POLL_CAP)
