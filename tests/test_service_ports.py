"""Service ports: a server that binds without SO_REUSEADDR gets its port; concurrent starts never share one."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import textwrap

import pytest

from backend_kernel_provisioner.sidecar.services import ManagerContext, ServiceManager
from backend_kernel_provisioner.sidecar.services.ports import PortClaim, PortInUse

#: A TCP server as strict as socketserver gets: no SO_REUSEADDR, so any socket still bound to its
#: port (a reservation held by the manager) makes its bind fail with "Address already in use".
STRICT_SERVER = textwrap.dedent("""
    import socketserver, sys

    class Hello(socketserver.BaseRequestHandler):
        def handle(self):
            self.request.sendall(b"hello from " + sys.argv[1].encode() + b"\\n")

    class Strict(socketserver.TCPServer):
        allow_reuse_address = False

    with Strict(("127.0.0.1", int(sys.argv[1])), Hello) as server:
        server.serve_forever()
""")

COUNT = 20


def greeting(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        return sock.makefile().readline().strip()


@pytest.fixture
async def manager(tmp_path):
    defs, home = tmp_path / "defs", tmp_path / "home"
    defs.mkdir()
    home.mkdir()
    (home / "strict_server.py").write_text(STRICT_SERVER)
    for index in range(COUNT):
        definition = {"command": ["{runtime_path}", "{home}/strict_server.py", "{ports[0]}"]}
        (defs / f"strict-{index}.json").write_text(json.dumps(definition))
    m = ServiceManager(ManagerContext(home=str(home), runtime_path=sys.executable, defs_dir=str(defs),
                                      kernel_id="k-ports", env=dict(os.environ)))
    yield m
    await m.close()


async def test_a_server_without_reuseaddr_starts_and_answers(manager) -> None:
    result = await manager.start_service({"name": "strict-0"})
    assert result["status"] == "started", result
    port = result["ports"][0]
    assert await asyncio.to_thread(greeting, port) == f"hello from {port}"
    assert "Address already in use" not in manager.read_log("strict-0")


async def test_twenty_concurrent_starts_get_twenty_ports(manager) -> None:
    results = await asyncio.gather(*(manager.start_service({"name": f"strict-{i}"}) for i in range(COUNT)))
    assert all(r["status"] == "started" for r in results), [r for r in results if r["status"] != "started"]
    ports = [r["ports"][0] for r in results]
    assert len(set(ports)) == COUNT, f"ports handed out twice: {sorted(ports)}"
    answers = await asyncio.gather(*(asyncio.to_thread(greeting, port) for port in ports))
    assert answers == [f"hello from {port}" for port in ports]


def test_a_claimed_port_is_not_claimed_again_until_released() -> None:
    first = PortClaim.take()
    try:
        with pytest.raises(PortInUse, match="already given to another service"):
            PortClaim.take(first.port)
        others = [PortClaim.take() for _ in range(50)]
        assert first.port not in {c.port for c in others}
        for claim in others:
            claim.release()
    finally:
        first.release()
    again = PortClaim.take(first.port)  # free once released, and nothing is bound to it meanwhile
    again.release()
    with socket.socket() as strict:  # no SO_REUSEADDR: fails if anything still holds the port
        strict.bind(("127.0.0.1", first.port))
