"""Neighbours on the same host: the intrinsic sshd and ttyd listen where the platform says, ttyd asks for a login.

Issue 15. The services run through the real :class:`ServiceManager` (and once
through a real kernel's provisioner). Where they listen is read from the
kernel's own tables (``/proc/PID/net/tcp*`` for the service's sockets), so the
check holds on a machine with loopback only; when the machine has another
IPv4 address, connecting to it is tried as well.

ttyd is not packaged for Debian 12, so unless a real ``ttyd`` is installed a
stand-in takes its place on PATH: it implements the two ttyd options under test
as ttyd documents them (``--interface``: listen there, else on every interface;
``--credential user:password``: HTTP basic authentication, else none), so the
tests check that the recipe asks ttyd for both. The same tests run against the
terminado web terminal the recipe falls back to when no ttyd is on PATH.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from traitlets import TraitError

from backend_kernel_provisioner.server.traits import BackendProvisionerTraits
from backend_kernel_provisioner.sidecar.services import ManagerContext, ServiceManager

from .helpers import running_kernel

TTYD_STANDIN = textwrap.dedent("""\
    import base64, http.server, sys
    args = sys.argv[1:]
    def option(name):
        return args[args.index(name) + 1] if name in args else None
    port, interface, credential = int(option("--port")), option("--interface") or "", option("--credential")
    expected = "Basic " + base64.b64encode(credential.encode()).decode() if credential else None
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if expected and self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="ttyd"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = b"<html><body>ttyd stand-in</body></html>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
    http.server.HTTPServer((interface, port), Handler).serve_forever()
""")


def other_ipv4() -> str | None:
    """An IPv4 address of this machine that is not loopback, or None."""
    try:
        out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        out = ""
    for line in out.splitlines():
        parts = line.split()
        if "inet" in parts:
            address = parts[parts.index("inet") + 1].split("/")[0]
            if not ipaddress.ip_address(address).is_loopback:
                return address
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:  # no packet is sent by connect()
        try:
            sock.connect(("192.0.2.1", 9))
            address = sock.getsockname()[0]
        except OSError:
            return None
    return None if ipaddress.ip_address(address).is_loopback else address


def _hex_address(text: str) -> str:
    raw = bytes.fromhex(text)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1]))
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    address = ipaddress.IPv6Address(words)
    return str(address.ipv4_mapped or address)


def listening_addresses(pid: int) -> set[tuple[str, int]]:
    """``(address, port)`` of every TCP socket of ``pid`` in the LISTEN state."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:
                address, port = fields[1].split(":")
                found.add((_hex_address(address), int(port, 16)))
    return found


def connects(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(5)
        return sock.connect_ex((host, port)) == 0


def http_status(url: str, credential: tuple[str, str] | None = None) -> int:
    request = urllib.request.Request(url)
    if credential is not None:
        token = base64.b64encode(f"{credential[0]}:{credential[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@pytest.fixture
async def manager(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    m = ServiceManager(ManagerContext(home=str(home), env={**os.environ, "HOME": str(home)}))
    yield m
    await m.close()


@pytest.fixture(params=["stand-in", "real", "terminado"])
def ttyd_path(request, tmp_path) -> str:
    """PATH with the real ttyd (skipped when absent), the stand-in first, or no ttyd (our terminado fallback)."""
    if request.param == "terminado":
        empty = tmp_path / "no-ttyd"
        empty.mkdir()
        return str(empty)
    if request.param == "real":
        if shutil.which("ttyd") is None:
            pytest.skip("ttyd is not installed (Debian 12 has no package)")
        return os.environ["PATH"]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ttyd").write_text(f"#!{sys.executable}\n{TTYD_STANDIN}")
    (bin_dir / "ttyd").chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ['PATH']}"


def require_sshd(result: dict) -> None:
    if result.get("not_available"):
        pytest.skip(result["error"])
    assert result["status"] == "started", result


# -- sshd -------------------------------------------------------------------------------------


async def test_sshd_listens_on_loopback_only_by_default(manager):
    result = await manager.start_service({"name": "sshd", "port": free_port()})
    require_sshd(result)
    port = result["ports"][0]
    assert result["host"] == "127.0.0.1"
    assert listening_addresses(manager.status("sshd")["pid"]) == {("127.0.0.1", port)}
    other = other_ipv4()
    if other is not None:
        assert not connects(other, port), f"sshd answers on {other}:{port}"
    assert connects("127.0.0.1", port)


async def test_sshd_listens_on_the_configured_address_only(manager):
    other = other_ipv4()
    if other is None:
        pytest.skip("this machine has no IPv4 address besides loopback")
    manager.configure(bind_address=other)
    result = await manager.start_service({"name": "sshd", "port": free_port(other)})
    require_sshd(result)
    port = result["ports"][0]
    assert (result["host"], manager.status("sshd")["host"]) == (other, other)
    assert listening_addresses(manager.status("sshd")["pid"]) == {(other, port)}
    reader, writer = await asyncio.open_connection(other, port)
    banner = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    assert banner.startswith(b"SSH-2.0-")
    assert not connects("127.0.0.1", port)


# -- ttyd -------------------------------------------------------------------------------------


async def test_ttyd_listens_on_loopback_and_asks_for_the_reported_credential(manager, ttyd_path):
    manager.configure(env={**manager.context.env, "PATH": ttyd_path})
    result = await manager.start_service({"name": "ttyd", "port": free_port()})
    assert result["status"] == "started", (result, manager.read_log("ttyd"))
    port = result["ports"][0]
    credential = (result["credential"]["username"], result["credential"]["password"])
    assert len(credential[1]) >= 32
    assert listening_addresses(manager.status("ttyd")["pid"]) == {("127.0.0.1", port)}
    other = other_ipv4()
    if other is not None:
        assert not connects(other, port), f"ttyd answers on {other}:{port}"

    url = f"http://127.0.0.1:{port}/"
    assert await asyncio.to_thread(http_status, url) == 401
    assert await asyncio.to_thread(http_status, url, (credential[0], "wrong")) == 401
    assert await asyncio.to_thread(http_status, url, credential) == 200

    # The platform reads the same credential and address from get_apps and the status.
    (app,) = manager.get_apps("ttyd")
    assert app["credential"] == result["credential"] and (app["host"], app["ports"]) == ("127.0.0.1", [port])
    assert manager.status("ttyd")["credential"] == result["credential"]

    # One credential per kernel: kept when ttyd starts again, another kernel has its own.
    await manager.shutdown_service("ttyd")
    assert manager.get_apps("ttyd") == []
    again = await manager.start_service({"name": "ttyd", "port": free_port()})
    assert again["credential"] == result["credential"]
    other_manager = ServiceManager(ManagerContext())
    try:
        assert other_manager.credential != manager.credential
    finally:
        await other_manager.close()


async def test_ttyd_on_the_configured_address(manager, ttyd_path):
    other = other_ipv4()
    if other is None:
        pytest.skip("this machine has no IPv4 address besides loopback")
    manager.configure(env={**manager.context.env, "PATH": ttyd_path}, bind_address=other)
    result = await manager.start_service({"name": "ttyd", "port": free_port(other)})
    assert result["status"] == "started", (result, manager.read_log("ttyd"))
    port = result["ports"][0]
    assert result["host"] == other
    assert listening_addresses(manager.status("ttyd")["pid"]) == {(other, port)}
    credential = (result["credential"]["username"], result["credential"]["password"])
    assert await asyncio.to_thread(http_status, f"http://{other}:{port}/") == 401
    assert await asyncio.to_thread(http_status, f"http://{other}:{port}/", credential) == 200
    assert not connects("127.0.0.1", port)


# -- the setting --------------------------------------------------------------------------------


def test_bind_address_setting_takes_ip_addresses_only(monkeypatch):
    assert BackendProvisionerTraits().service_bind_address == "127.0.0.1"
    assert BackendProvisionerTraits(service_bind_address=" 0.0.0.0 ").service_bind_address == "0.0.0.0"
    with pytest.raises(TraitError, match="service_bind_address: bind address 'example.com' is not an IPv4"):
        BackendProvisionerTraits(service_bind_address="example.com")
    monkeypatch.setenv("BACKEND_SERVICE_BIND_ADDRESS", "::1")
    assert BackendProvisionerTraits().service_bind_address == "::1"
    monkeypatch.setenv("BACKEND_SERVICE_BIND_ADDRESS", "eth0")
    with pytest.raises(TraitError, match="BACKEND_SERVICE_BIND_ADDRESS: bind address 'eth0'"):
        BackendProvisionerTraits().service_bind_address  # noqa: B018


@pytest.mark.kernel
async def test_provisioner_passes_its_bind_address_to_the_intrinsic_services(tmp_path):
    other = other_ipv4()
    if other is None:
        pytest.skip("this machine has no IPv4 address besides loopback")
    home = tmp_path / "home"
    home.mkdir()
    port = free_port(other)
    async with running_kernel("backend-python", intrinsic_services=[f"sshd:{port}"], service_bind_address=other,
                              env={**os.environ, "HOME": str(home)}) as (km, _kc):
        status = km.provisioner.services.status("sshd")
        if status["status"] == "not-available":
            pytest.skip(status["error"])
        assert (status["status"], status["host"]) == ("running", other), status
        assert listening_addresses(status["pid"]) == {(other, port)}
