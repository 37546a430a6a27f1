"""Ports: claims that two services never share, and readiness checks that never busy-sleep.

A claimed port is checked free and then left unbound, so a server that binds
without ``SO_REUSEADDR`` (``socketserver.TCPServer`` with
``allow_reuse_address = False``, many custom apps) gets it; holding it bound
until the service answered made such servers fail with "Address already in
use". What keeps two services of this process from being handed one port is
the claim itself, held until the service stops. Another process may still
take a free port between the claim and the service's bind, as with any port
picked ahead of time (jupyter_client's own ports included); the kernel's
choice of a free port is random enough that two sidecars rarely meet.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import ClassVar

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
    """The requested port already has a listener, or another service of this process has it."""


class PortClaim:
    """One port handed to one service until :meth:`release`; nothing is left bound to it."""

    #: (host, port) of every claim of this process not yet released.
    _held: ClassVar[set[tuple[str, int]]] = set()

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    @classmethod
    def take(cls, port: int = 0, host: str = LOOPBACK) -> PortClaim:
        """Claim ``port`` (0: a free one, chosen by the kernel); :class:`PortInUse` when it is taken."""
        for _ in range(100):
            found = _free_port(port, host)
            if (host, found) not in cls._held:
                cls._held.add((host, found))
                return cls(host, found)
            if port:
                raise PortInUse(f"port {port} is already given to another service")
        raise PortInUse(f"no free port found on {host}")

    def release(self) -> None:
        self._held.discard((self.host, self.port))


def _free_port(port: int, host: str) -> int:
    """Bind and close at once: ``port`` when nothing listens on it, or a free port for 0.

    A chosen port (``SO_REUSEADDR``) only needs to have no listener; a port the kernel picks is
    picked without ``SO_REUSEADDR``, so it has no lingering connection either and a server that
    does not set the option can bind it too.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        if port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise PortInUse(f"port {port} is in use: {exc.strerror}") from None
        return int(sock.getsockname()[1])


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
