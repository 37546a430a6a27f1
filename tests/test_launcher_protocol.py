"""The launcher's protocol pieces, each against the real other end (no language kernel is started).

* The launch payload is decoded by gateway_provisioners' own ``ResponseManager``
  (a fresh instance with its own RSA key pair and listening socket), both directly
  and through its listener, as the server receives it.
* The signed channel: a real :class:`ChannelServer` and a real
  :class:`LauncherChannel` on loopback; refused messages (another key, a replay,
  stale, unsigned, tampered, garbage) are built with jupyter_client's ``Session``
  and sent from a raw DEALER socket, and an op with a side effect shows that
  their handler never ran.
* The comm port, fed by gateway_provisioners' own ``_send_listener_request``.
* Ports and the kernel's connection file, loaded back by jupyter_client.
* The command line's refusals, and a real launcher process that ends itself when
  its lease runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import zmq
import zmq.asyncio
from gateway_provisioners.remote_provisioner import RemoteProvisionerBase
from gateway_provisioners.response_manager import ResponseManager
from jupyter_client.blocking import BlockingKernelClient

from backend_kernel_provisioner.common.signed_channel import MAX_AGE, REQUEST, channel_session, unpack
from backend_kernel_provisioner.launcher.channel_server import ChannelServer
from backend_kernel_provisioner.launcher.cli import parse_options
from backend_kernel_provisioner.launcher.comm_port import MAX_REQUEST, CommPort
from backend_kernel_provisioner.launcher.connection import (
    KERNEL_PORTS,
    parse_port_range,
    select_ports,
    write_kernel_connection_file,
)
from backend_kernel_provisioner.launcher.payload import encrypt_payload, parse_address, send_payload
from backend_kernel_provisioner.remote.channel_client import LauncherChannel, LauncherError

LOOPBACK = "127.0.0.1"
LOG_NAME = "tests.launcher_protocol"
#: A bound for waits on things that happen in milliseconds (never asserted as a duration).
PATIENCE = 30.0


async def eventually(check: Callable[[], bool], what: str, timeout: float = PATIENCE) -> None:
    """Wait until ``check()`` holds; fail naming ``what`` if it never does."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            pytest.fail(f"never happened: {what}")
        await asyncio.sleep(0.01)


def connection_info(kernel_id: str) -> dict[str, Any]:
    """What the launcher announces: jupyter_client's fields plus gateway_provisioners' and ours."""
    return {
        "shell_port": 40001, "iopub_port": 40002, "stdin_port": 40003, "hb_port": 40004, "control_port": 40005,
        "ip": "192.0.2.7", "key": str(uuid.uuid4()), "transport": "tcp", "signature_scheme": "hmac-sha256",
        "kernel_name": "", "pid": 4242, "pgid": 4242, "comm_port": 40006, "backend_port": 40007,
        "kernel_id": kernel_id,
    }


# -- the launch payload ----------------------------------------------------------------------------


@pytest.fixture
async def response_manager() -> AsyncIterator[ResponseManager]:
    """gateway_provisioners' ResponseManager: a new instance (not the process singleton), stopped afterwards.

    It binds this machine's public address at GP_RESPONSE_PORT (8877) or, when that
    is taken (another test run's manager), the next free port of its own retry list,
    so it never conflicts. It is made inside the event loop, as in a server, for its
    tornado PeriodicCallback.
    """
    manager = ResponseManager()
    try:
        yield manager
    finally:
        manager.stop_response_manager()


async def test_payload_decodes_with_gateway_provisioners_decoder(response_manager: ResponseManager) -> None:
    info = connection_info(str(uuid.uuid4()))
    data = encrypt_payload(info, response_manager.public_key)
    # the ResponseManager decodes what it read from the socket as text
    decoded = response_manager._decode_payload(data.decode())
    assert decoded == {**info, "key": info["key"].encode()}


async def test_payload_reaches_the_response_manager_listener(response_manager: ResponseManager) -> None:
    """The whole server side: its socket, its read-until-EOF loop, its decoder and its registry."""
    kernel_id = str(uuid.uuid4())
    info = connection_info(kernel_id)
    response_manager.register_event(kernel_id)
    await send_payload(response_manager.response_address, info, response_manager.public_key)

    async def arrived() -> dict[str, Any]:
        while True:  # its own wait is a few milliseconds long: the provisioner polls it like this
            try:
                return await response_manager.get_connection_info(kernel_id)
            except asyncio.TimeoutError:
                continue

    received = await asyncio.wait_for(arrived(), PATIENCE)
    assert received == {**info, "key": info["key"].encode()}


async def test_send_payload_writes_one_payload_then_ends_its_side(response_manager: ResponseManager) -> None:
    """A plain TCP server gets the payload bytes and then EOF (the ResponseManager reads until EOF)."""
    got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got.set_result(await reader.read())  # read() returns only at EOF
        writer.close()

    server = await asyncio.start_server(serve, LOOPBACK, 0)
    port = server.sockets[0].getsockname()[1]
    info = connection_info(str(uuid.uuid4()))
    try:
        await send_payload(f"{LOOPBACK}:{port}", info, response_manager.public_key)
        data = await asyncio.wait_for(got, PATIENCE)
    finally:
        server.close()
        await server.wait_closed()
    assert data == data.strip() and data  # base64 text, nothing around it
    assert response_manager._decode_payload(data.decode()) == {**info, "key": info["key"].encode()}
    # a fresh AES key per payload: the same info never gives the same bytes twice
    assert encrypt_payload(info, response_manager.public_key) != data


def test_parse_address() -> None:
    assert parse_address("10.0.0.5:8877") == ("10.0.0.5", 8877)
    assert parse_address("gateway.example:9000") == ("gateway.example", 9000)
    assert parse_address("fe80::1:8877") == ("fe80::1", 8877)  # gateway_provisioners writes IPv6 without brackets


@pytest.mark.parametrize("address", ["10.0.0.5", "10.0.0.5:", ":8877", "10.0.0.5:port", "", "10.0.0.5:-1"])
def test_parse_address_errors_name_the_option_and_value(address: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_address(address)
    assert str(caught.value) == f"--response-address must be HOST:PORT, got {address!r}"


# -- the signed channel ----------------------------------------------------------------------------


class Served:
    """A real ChannelServer on loopback with ops whose side effects show whether (and how often) they ran."""

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.server = ChannelServer(key, logging.getLogger(LOG_NAME))
        self.runs = 0
        self.release = asyncio.Event()
        self.server.register("count", self.count)
        self.server.register("add", lambda a, b: a + b)
        self.server.register("fail", self.fail)
        self.server.register("wait", self.wait)

    def count(self) -> int:
        self.runs += 1
        return self.runs

    def fail(self, why: str) -> None:
        raise ValueError(why)

    async def wait(self) -> str:
        await self.release.wait()
        return "released"

    @property
    def port(self) -> int:
        return self.server.port


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    served = Served(str(uuid.uuid4()).encode())
    await served.server.start(LOOPBACK)
    try:
        yield served
    finally:
        served.release.set()
        await served.server.close()


@contextlib.asynccontextmanager
async def client(port: int, key: bytes, on_event: Callable[[dict[str, Any]], None] = lambda event: None,
                 ) -> AsyncIterator[LauncherChannel]:
    """A real LauncherChannel (the provisioner's end), connected; always closed."""
    channel = LauncherChannel(LOOPBACK, port, key, log=logging.getLogger(LOG_NAME), on_event=on_event)
    channel.connect()
    try:
        yield channel
    finally:
        await channel.close()


@contextlib.contextmanager
def dealer(port: int) -> Iterator[zmq.asyncio.Socket]:
    """A raw DEALER socket: sends exactly the frames a test made (the way an attacker would)."""
    sock = zmq.asyncio.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(f"tcp://{LOOPBACK}:{port}")
    try:
        yield sock
    finally:
        sock.close(linger=0)


def request_frames(key: bytes, op: str, edit: Callable[[dict[str, Any]], None] | None = None,
                   ) -> tuple[str, list[bytes]]:
    """A request signed with ``key`` by jupyter_client's Session (after ``edit`` changed the message)."""
    session = channel_session(key)
    message = session.msg(REQUEST, {"op": op, "args": {}})
    if edit is not None:
        edit(message)
    return message["header"]["msg_id"], session.serialize(message)


async def reply_to(sock: zmq.asyncio.Socket, key: bytes) -> dict[str, Any]:
    """The next message on a raw DEALER, checked with the key."""
    frames = await asyncio.wait_for(sock.recv_multipart(), PATIENCE)
    _, message = unpack(channel_session(key), frames, routed=False)
    return message


async def test_call_returns_the_result(served: Served) -> None:
    async with client(served.port, served.key) as channel:
        assert await channel.call("add", a=2, b=3) == 5
        assert await channel.call("count") == 1
        assert await channel.call("ping") == "pong"
    assert served.runs == 1 and served.server.refused == 0 and served.server.contacted


async def test_a_failing_handler_comes_back_as_launcher_error(served: Served) -> None:
    async with client(served.port, served.key) as channel:
        with pytest.raises(LauncherError, match=r"^fail: ValueError: the disk is full$"):
            await channel.call("fail", why="the disk is full")
        with pytest.raises(LauncherError, match=r"^nope: unknown operation 'nope' \(known: add, count, fail, ping"):
            await channel.call("nope")
        with pytest.raises(LauncherError, match=r"^add: TypeError: .*unexpected keyword argument 'c'"):
            await channel.call("add", a=1, b=2, c=3)
        assert await channel.call("count") == 1  # the server survived all three


async def test_a_slow_request_does_not_hold_up_others(served: Served) -> None:
    async with client(served.port, served.key) as channel:
        slow = asyncio.create_task(channel.call("wait"))
        assert await channel.call("count") == 1  # answered while "wait" is still waiting
        assert not slow.done()
        served.release.set()
        assert await slow == "released"


async def test_events_reach_subscribers_only(served: Served) -> None:
    events: list[dict[str, Any]] = []
    async with client(served.port, served.key, on_event=events.append) as channel:
        served.server.publish({"event": "before-subscribe"})  # nobody subscribed: dropped
        assert await channel.call("subscribe") == []
        served.server.publish({"event": "service-started", "key": "service:web"})
        served.server.publish({"event": "kernel-exit", "exit_code": 0})
        await eventually(lambda: len(events) == 2, "two events delivered")
        assert await channel.call("subscribe") == []  # subscribing twice does not double the events
        served.server.publish({"event": "third"})
        await eventually(lambda: len(events) == 3, "the third event delivered")
        assert await channel.call("count") == 1
    assert events == [{"event": "service-started", "key": "service:web"}, {"event": "kernel-exit", "exit_code": 0},
                      {"event": "third"}]


async def test_a_client_with_another_key_gets_no_answer(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=LOG_NAME):
        async with client(served.port, str(uuid.uuid4()).encode()) as channel:
            with pytest.raises(LauncherError, match=r"did not answer 'count' within 2 s"):
                await channel.call("count", timeout=2)
    assert served.runs == 0
    assert served.server.refused >= 1  # the request (and maybe heartbeats)
    assert not served.server.contacted  # refused messages do not keep the lease
    refusals = [r.getMessage() for r in caplog.records if r.name == LOG_NAME and r.levelno == logging.WARNING]
    assert refusals and all(
        m.startswith("launcher channel: refused a message from peer ") and "Invalid Signature" in m for m in refusals
    ), refusals


async def test_a_replayed_request_is_refused(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    msg_id, frames = request_frames(served.key, "count")
    with caplog.at_level(logging.WARNING, logger=LOG_NAME), dealer(served.port) as sock:
        await sock.send_multipart(frames)
        first = await reply_to(sock, served.key)
        assert first["parent_header"]["msg_id"] == msg_id and first["content"] == {"ok": True, "result": 1}
        await sock.send_multipart(frames)  # the captured message, played again
        await eventually(lambda: served.server.refused == 1, "the replay refused")
        fresh_id, fresh = request_frames(served.key, "count")
        await sock.send_multipart(fresh)
        after = await reply_to(sock, served.key)  # the next reply answers the fresh request: none for the replay
    assert after["parent_header"]["msg_id"] == fresh_id and after["content"] == {"ok": True, "result": 2}
    assert served.runs == 2 and served.server.refused == 1
    assert any("Duplicate Signature" in r.getMessage() for r in caplog.records if r.name == LOG_NAME)


def _dated(seconds: float) -> Callable[[dict[str, Any]], None]:
    def edit(message: dict[str, Any]) -> None:
        message["header"]["date"] = datetime.now(timezone.utc) + timedelta(seconds=seconds)
    return edit


def _misdated(message: dict[str, Any]) -> None:
    message["header"]["date"] = "yesterday"


def _frames(key: bytes, edit: Callable[[dict[str, Any]], None] | None = None) -> list[bytes]:
    return request_frames(key, "count", edit)[1]


def _tampered(key: bytes) -> list[bytes]:
    frames = _frames(key)
    frames[-1] = json.dumps({"op": "add", "args": {"a": 1, "b": 1}}).encode()  # the content after signing
    return frames


def _undated(message: dict[str, Any]) -> None:
    del message["header"]["date"]  # jupyter_client would date it "now" while reading it


def _resigned(key: bytes, replace: Callable[[list[bytes]], None]) -> list[bytes]:
    """A correctly signed message whose header/parent/metadata/content frames ``replace`` changed."""
    session = channel_session(key)
    frames = _frames(key)
    parts = frames[2:6]
    replace(parts)
    return [frames[0], session.sign(parts), *parts]


def _list_content(parts: list[bytes]) -> None:
    parts[3] = b"[1, 2]"


def _numeric_version(parts: list[bytes]) -> None:
    header = json.loads(parts[0])
    header["version"] = 5
    parts[0] = json.dumps(header).encode()


#: Messages the server must refuse: how each is made from the right key, and the reason it logs.
REFUSED: dict[str, tuple[Callable[[bytes], list[bytes]], str]] = {
    "stale": (lambda key: _frames(key, _dated(-(MAX_AGE + 60))), "stale or undated message"),
    "from the future": (lambda key: _frames(key, _dated(MAX_AGE + 60)), "stale or undated message"),
    "dated with no date": (lambda key: _frames(key, _misdated), "stale or undated message (date yesterday;"),
    "unsigned": (lambda key: _frames(b""), "Unsigned Message"),
    "another key": (lambda key: _frames(b"not-" + key), "Invalid Signature"),
    "tampered": (_tampered, "Invalid Signature"),
    "not a Jupyter message": (lambda key: [b"count"], "not in list"),
    "undated": (lambda key: _frames(key, _undated), "undated message"),
    "signed, content a list": (lambda key: _resigned(key, _list_content), "content is not an object"),
    "signed, a numeric version": (lambda key: _resigned(key, _numeric_version), "split"),
}


@pytest.mark.parametrize("kind", list(REFUSED))
async def test_refused_messages_never_run(served: Served, caplog: pytest.LogCaptureFixture, kind: str) -> None:
    make, reason = REFUSED[kind]
    with caplog.at_level(logging.WARNING, logger=LOG_NAME), dealer(served.port) as sock:
        await sock.send_multipart(make(served.key))
        await eventually(lambda: served.server.refused == 1, f"the {kind} message refused")
        assert not served.server.contacted  # a refused message is no contact (the lease is not renewed)
        fresh_id, fresh = request_frames(served.key, "count")
        await sock.send_multipart(fresh)
        reply = await reply_to(sock, served.key)  # the first reply on this socket: none for the refused one
    assert reply["parent_header"]["msg_id"] == fresh_id and reply["content"] == {"ok": True, "result": 1}
    assert served.runs == 1  # only the fresh request ran
    warnings = [r.getMessage() for r in caplog.records if r.name == LOG_NAME and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and reason in warnings[0], warnings


# -- gateway_provisioners' comm port ------------------------------------------------------------------


@pytest.fixture
async def comm_port() -> AsyncIterator[tuple[CommPort, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    port = CommPort(received.append, logging.getLogger(LOG_NAME))
    await port.start(LOOPBACK)
    try:
        yield port, received
    finally:
        await port.close()


def gp_sender(port: int) -> Callable[..., Awaitable[None]]:
    """gateway_provisioners' own ``_send_listener_request``, run for a provisioner whose comm port is ``port``.

    The method only reads ``comm_ip``, ``comm_port``, ``kernel_id`` and ``log`` of
    its provisioner, so a stand-in holding those runs GP's exact client code
    (JSON bytes, then close; ``shutdown(SHUT_WR)`` first for a shutdown).
    """
    provisioner = SimpleNamespace(comm_ip=LOOPBACK, comm_port=port, kernel_id="k-1",
                                  log=logging.getLogger(LOG_NAME))

    async def send(request: dict[str, Any], shutdown_socket: bool = False) -> None:
        await RemoteProvisionerBase._send_listener_request(provisioner, request,
                                                           shutdown_socket=shutdown_socket)
    return send


async def send_raw(port: int, data: bytes) -> None:
    """Send ``data``, end our side, and wait until the comm port has dealt with it (it closes the connection)."""
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    try:
        writer.write(data)
        await writer.drain()
        writer.write_eof()
        await asyncio.wait_for(reader.read(), PATIENCE)
    except ConnectionResetError:  # closed with our bytes unread (the oversized request): dealt with too
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionResetError):
            await writer.wait_closed()


async def test_comm_port_receives_gateway_provisioners_requests(
        comm_port: tuple[CommPort, list[dict[str, Any]]]) -> None:
    port, received = comm_port
    send = gp_sender(port.port)
    await send({"signum": 2})  # send_signal's request
    await eventually(lambda: len(received) == 1, "the signal request handed on")
    await send({"shutdown": 1}, shutdown_socket=True)  # shutdown_requested's
    await eventually(lambda: len(received) == 2, "the shutdown request handed on")
    assert received == [{"signum": 2}, {"shutdown": 1}]


async def test_comm_port_ignores_garbage(comm_port: tuple[CommPort, list[dict[str, Any]]]) -> None:
    port, received = comm_port
    oversized = json.dumps({"signum": 2, "padding": "x" * 2 * MAX_REQUEST}).encode()
    just_over = json.dumps({"signum": 2, "padding": "x" * MAX_REQUEST}).encode()  # within one extra read
    for garbage in (b"not json", b"[1, 2]", b'"signum"', b"", b"\xff\xfe{", b'{"signum": 2', oversized, just_over):
        await send_raw(port.port, garbage)
    assert received == []
    await gp_sender(port.port)({"signum": 15})  # still serving
    await eventually(lambda: received == [{"signum": 15}], "a request after the garbage handed on")


# -- ports and the connection file --------------------------------------------------------------------


def test_select_ports_in_a_range() -> None:
    ports = select_ports(7, (40000, 41000), LOOPBACK)
    assert len(set(ports)) == 7 and all(40000 <= p <= 41000 for p in ports), ports
    anywhere = select_ports(3, (0, 0), LOOPBACK)
    assert len(set(anywhere)) == 3 and all(p > 0 for p in anywhere), anywhere


def test_select_ports_fails_clearly_when_the_range_is_full() -> None:
    with contextlib.ExitStack() as stack:
        held = select_ports(1, (0, 0), LOOPBACK)[0]
        sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        sock.bind((LOOPBACK, held))
        with pytest.raises(RuntimeError, match=rf"^no free port in {held}\.\.{held} after 50 attempts$"):
            select_ports(1, (held, held), LOOPBACK)


def test_parse_port_range() -> None:
    assert parse_port_range("40000..41000") == (40000, 41000)
    assert parse_port_range("0..0") == (0, 0)
    assert parse_port_range("") == (0, 0) and parse_port_range(None) == (0, 0)


def test_a_range_from_port_zero_is_refused() -> None:
    with pytest.raises(ValueError, match=r"LOW must be a port \(1..65535\), or use 0..0 for any port"):
        parse_port_range("0..5000")  # 0 would bind a random port outside the range


@pytest.mark.parametrize("text", ["40000", "40000-41000", "41000..40000", "a..b", "-1..5", "40000..", "..41000"])
def test_parse_port_range_errors(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_port_range(text)
    assert str(caught.value) == f"--port-range must be LOW..HIGH, got {text!r}"


def test_connection_file_loads_in_jupyter_client(tmp_path: Path) -> None:
    path = tmp_path / "kernel-1.json"
    info = write_kernel_connection_file(str(path), LOOPBACK, (40000, 41000))
    assert oct(path.stat().st_mode & 0o777) == "0o600"  # the key is a secret
    kernel_client = BlockingKernelClient()
    kernel_client.load_connection_file(str(path))
    assert isinstance(kernel_client.session.key, bytes) and kernel_client.session.key == info["key"].encode()
    assert len(kernel_client.session.key) >= 32
    assert kernel_client.session.signature_scheme == "hmac-sha256" and kernel_client.transport == "tcp"
    assert kernel_client.ip == LOOPBACK
    ports = [getattr(kernel_client, name) for name in KERNEL_PORTS]
    assert ports == [info[name] for name in KERNEL_PORTS]
    assert len(set(ports)) == 5 and all(40000 <= p <= 41000 for p in ports), ports
    other = write_kernel_connection_file(str(tmp_path / "kernel-2.json"), LOOPBACK, (0, 0))
    assert other["key"] != info["key"]  # a fresh key per kernel


# -- the command line --------------------------------------------------------------------------------

REQUIRED = ["--kernel-id", "k-1", "--response-address", "10.0.0.5:8877", "--public-key", "MIGf"]
KERNEL = ["--", "python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]


def test_parse_options_keeps_the_kernel_argv() -> None:
    options, level = parse_options([*REQUIRED, "--port-range", "40000..41000", "--ip", "127.0.0.1",
                                    "--lease-timeout", "3", "--log-level", "DEBUG", *KERNEL])
    assert options.kernel_argv == KERNEL[1:]
    assert (options.kernel_id, options.response_address, options.public_key) == ("k-1", "10.0.0.5:8877", "MIGf")
    assert options.port_range == (40000, 41000) and options.ip == "127.0.0.1" and options.lease_timeout == 3.0
    assert level == "DEBUG"
    # options after "--" belong to the kernel, "--" included
    options, _ = parse_options([*REQUIRED, "--", "sh", "-c", "exec x --ip 1", "--", "--port-range", "x"])
    assert options.kernel_argv == ["sh", "-c", "exec x --ip 1", "--", "--port-range", "x"]
    assert options.port_range == (0, 0) and options.ip == "0.0.0.0"


@pytest.mark.parametrize(("argv", "message"), [
    (REQUIRED, "the kernel's command is missing: add -- and the kernelspec's argv"),
    ([*REQUIRED, "--"], "the kernel's command is missing"),
    ([*REQUIRED, "--port-range", "41000..40000", *KERNEL], "--port-range must be LOW..HIGH, got '41000..40000'"),
    ([*REQUIRED, "--ip", "localhost", *KERNEL], "bind address 'localhost' is not an IPv4 or IPv6 address"),
    ([*REQUIRED, "--transport-encryption", "required", *KERNEL],
     "--transport-encryption 'required' is not supported by this launcher"),
    ([*REQUIRED, "--lease-timeout", "0", *KERNEL], "--lease-timeout must be positive"),
    ([*REQUIRED, "--ip", "::1", *KERNEL], "--ip ::1: the launcher listens on IPv4 addresses only"),
    (REQUIRED[2:] + KERNEL, "the following arguments are required: --kernel-id"),
])
def test_parse_options_refusals(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        parse_options(argv)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: backend-kernel-launcher") and f"backend-kernel-launcher: error: {message}" in err


# -- a real launcher process and its lease --------------------------------------------------------------


def processes_mentioning(marker: str) -> list[int]:
    """Pids whose command line contains ``marker``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


async def test_launcher_announces_then_ends_when_its_lease_runs_out(
        response_manager: ResponseManager, tmp_path: Path) -> None:
    """Announce to a response address, answer the channel, and exit alone once the provisioner is silent.

    The kernel is never started (no start-kernel call); its argv carries a marker so
    that any process left behind would be found.
    """
    marker = f"bkp-lease-test-{uuid.uuid4()}"
    kernel_id = str(uuid.uuid4())
    payloads: asyncio.Queue[bytes] = asyncio.Queue()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await payloads.put(await reader.read())
        writer.close()

    server = await asyncio.start_server(serve, LOOPBACK, 0)
    address = f"{LOOPBACK}:{server.sockets[0].getsockname()[1]}"
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    log_path = tmp_path / "launcher.log"
    argv = [sys.executable, "-m", "backend_kernel_provisioner.launcher", "--kernel-id", kernel_id,
            "--response-address", address, "--public-key", response_manager.public_key, "--ip", LOOPBACK,
            "--lease-timeout", "1", "--stop-grace", "1", "--",
            "python", "-c", f"import time; time.sleep(60)  # {marker}"]
    with open(log_path, "wb") as log:
        proc = await asyncio.create_subprocess_exec(*argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                                    env={**os.environ, "TMPDIR": str(private_tmp)})
    try:
        data = await asyncio.wait_for(payloads.get(), PATIENCE)
        info = response_manager._decode_payload(data.decode())
        assert info["kernel_id"] == kernel_id and info["pid"] == proc.pid and info["ip"] == LOOPBACK
        assert isinstance(info["key"], bytes) and {"backend_port", "comm_port", *KERNEL_PORTS} <= set(info)
        async with client(info["backend_port"], info["key"]) as channel:
            assert await channel.call("kernel-status") == {"pid": None, "running": False, "exit_code": None}
            assert await channel.call("stats") == {"refused": 0, "pid": proc.pid}
        # now silent: the launcher must end by itself
        code = await asyncio.wait_for(proc.wait(), 60)
    finally:
        server.close()
        await server.wait_closed()
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
    log_text = log_path.read_text()
    assert code == 0, log_text
    assert "has been silent" in log_text and "stopping: lease expired" in log_text, log_text
    assert processes_mentioning(marker) == []
    assert list(private_tmp.iterdir()) == []  # its private folder (connection file) removed
