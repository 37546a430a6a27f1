"""backend-rserver: cells run in one session of a (stand-in) remote R server over real HTTP."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from .helpers import run_cell, running_kernel
from .rserver_standin import StandinRServer

pytestmark = pytest.mark.kernel  # every test starts backend-rserver through running_kernel


@pytest.fixture
def rserver() -> Iterator[StandinRServer]:
    server = StandinRServer(access_key="ak-test", secret_key="sk-test").start()
    yield server
    server.stop()


def options(server: StandinRServer, **extra) -> dict:
    return {"server_url": server.url, "access_key": "ak-test", "secret_key": "sk-test", **extra}


async def test_two_cells_share_one_remote_session_which_is_deleted_at_shutdown(rserver: StandinRServer) -> None:
    async with running_kernel("backend-rserver", kernel_options=options(rserver)) as (_km, kc):
        first = await run_cell(kc, "x <- 41")
        assert first["reply"]["status"] == "ok" and first["reply"]["exit_code"] == 0
        second = await run_cell(kc, "print(x + 1)\nmessage('to stderr')")
        assert second["reply"]["status"] == "ok", second
        assert second["stdout"] == "[1] 42\n"
        assert second["stderr"] == "to stderr\n"
        assert len(rserver.created) == 1
        session_id = rserver.created[0]
        executes = [path for method, path, code in rserver.calls if path.endswith("/execute") and code == 200]
        assert executes == [f"/sessions/{session_id}/execute"] * 2
        assert rserver.deleted == []
    assert rserver.deleted == [session_id]
    assert rserver.sessions == {}


async def test_r_errors_are_error_replies(rserver: StandinRServer) -> None:
    async with running_kernel("backend-rserver", kernel_options=options(rserver)) as (_km, kc):
        out = await run_cell(kc, "cat('before')\nprint(undefined_thing)")
        assert out["stdout"] == "before"
        assert out["reply"]["status"] == "error" and out["reply"]["exit_code"] == 1
        assert out["reply"]["ename"] == "RError"
        assert "object 'undefined_thing' not found" in out["reply"]["evalue"]
        assert out["errors"] and "undefined_thing" in out["errors"][0]["evalue"]


async def test_expired_token_is_refreshed_and_the_cell_repeated(rserver: StandinRServer) -> None:
    async with running_kernel("backend-rserver", kernel_options=options(rserver)) as (_km, kc):
        assert (await run_cell(kc, "y <- 7"))["reply"]["status"] == "ok"
        issued = rserver.tokens_issued
        rserver.expire_tokens()
        out = await run_cell(kc, "print(y * 2)")
        assert out["reply"]["status"] == "ok", out
        assert out["stdout"] == "[1] 14\n"
        assert rserver.tokens_issued == issued + 1
        assert rserver.statuses("POST", "/sessions/").count(401) == 1
        assert len(rserver.created) == 1  # still the same session


async def test_token_is_renewed_before_it_expires() -> None:
    server = StandinRServer(access_key="ak-test", secret_key="sk-test", token_ttl=1.0).start()
    try:
        async with running_kernel("backend-rserver",
                                  kernel_options=options(server, token_refresh_margin=0.5)) as (_km, kc):
            assert (await run_cell(kc, "z <- 1"))["reply"]["status"] == "ok"
            issued = server.tokens_issued
            await asyncio.sleep(1.2)  # past the token's lifetime
            out = await run_cell(kc, "print(z)")
            assert out["stdout"] == "[1] 1\n"
            assert server.tokens_issued > issued
            assert 401 not in [code for method, path, code in server.calls if path != "/auth/token"]
    finally:
        server.stop()


async def test_interrupt_stops_waiting_and_the_session_keeps_its_state(rserver: StandinRServer) -> None:
    async with running_kernel("backend-rserver", kernel_options=options(rserver)) as (km, kc):
        assert (await run_cell(kc, "kept <- 5"))["reply"]["status"] == "ok"
        cell = asyncio.ensure_future(run_cell(kc, "Sys.sleep(120)"))
        for _ in range(600):
            if any(s.running for s in rserver.sessions.values()):
                break
            await asyncio.sleep(0.05)
        await km.interrupt_kernel()
        out = await asyncio.wait_for(cell, 60)
        assert out["reply"]["status"] == "error" and out["reply"]["ename"] == "KeyboardInterrupt"
        assert rserver.interrupted == rserver.created
        after = await run_cell(kc, "print(kept)")
        assert after["stdout"] == "[1] 5\n"


async def test_configuration_errors_name_the_problem(rserver: StandinRServer) -> None:
    async with running_kernel("backend-rserver") as (_km, kc):
        out = await run_cell(kc, "x <- 1")
        assert out["reply"]["status"] == "error" and "server_url" in out["reply"]["evalue"]

    async with running_kernel("backend-rserver", kernel_options={**options(rserver), "secret_key": "wrong"}) as (_km, kc):
        out = await run_cell(kc, "x <- 1")
        assert out["reply"]["status"] == "error"
        assert "rejected the credentials" in out["reply"]["evalue"] and "ak-test" in out["reply"]["evalue"]

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{closed_port}"
    async with running_kernel("backend-rserver", kernel_options={**options(rserver), "server_url": url}) as (_km, kc):
        out = await run_cell(kc, "x <- 1")
        assert out["reply"]["status"] == "error" and url in out["reply"]["evalue"]
        assert "unreachable" in out["reply"]["evalue"]
