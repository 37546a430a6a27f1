"""The kernel → provisioner control channel: a private Unix socket with a token."""

from __future__ import annotations

import asyncio
import os
import stat

import pytest

from backend_kernel_provisioner.common.control import SOCKET_ENV, TOKEN_ENV, ControlError, call
from backend_kernel_provisioner.sidecar.control import ControlServer


@pytest.fixture
async def server(monkeypatch):
    srv = ControlServer()
    srv.register("add", lambda a, b: a + b)

    async def slow_echo(text):
        await asyncio.sleep(0.01)
        return {"echo": text}

    srv.register("echo", slow_echo)
    srv.register("boom", lambda: 1 / 0)
    await srv.start()
    for key, value in srv.env.items():
        monkeypatch.setenv(key, value)
    yield srv
    await srv.close()


async def test_calls_reach_handlers(server):
    assert await asyncio.to_thread(call, "add", a=2, b=3) == 5
    assert await asyncio.to_thread(call, "echo", text="hé") == {"echo": "hé"}


async def test_errors_are_reported_not_raised_in_the_server(server):
    with pytest.raises(ControlError, match="ZeroDivisionError"):
        await asyncio.to_thread(call, "boom")
    with pytest.raises(ControlError, match="unknown operation 'nope'"):
        await asyncio.to_thread(call, "nope")
    assert await asyncio.to_thread(call, "add", a=1, b=1) == 2  # still serving


async def test_wrong_token_is_refused(server, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "0" * 64)
    with pytest.raises(ControlError, match="bad token"):
        await asyncio.to_thread(call, "add", a=1, b=2)


async def test_socket_lives_in_a_private_folder(server):
    folder = os.path.dirname(server.path)
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert stat.S_ISSOCK(os.stat(server.path).st_mode)
    await server.close()
    assert not os.path.exists(folder)


def test_without_a_channel_the_client_says_so(monkeypatch):
    monkeypatch.delenv(SOCKET_ENV, raising=False)
    with pytest.raises(ControlError, match="not started by the backend provisioner"):
        call("list")
