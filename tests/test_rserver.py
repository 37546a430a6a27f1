"""backend-rserver speaks Microsoft R Server / ML Server's operationalization API (issue 18).

Every test starts the real kernel through jupyter_client, configured as the
runner was (``MRS_ENDPOINT``, ``MRS_USERNAME``, ``MRS_PASSWORD``), against
tests/rserver_standin.py: that API on a loopback port, running cells in a real
R process per session, checking bearer tokens and expiring them.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator

import pytest

from .helpers import require_programs, run_cell, running_kernel
from .rserver_standin import StandinMRS

pytestmark = pytest.mark.kernel  # every test starts backend-rserver through running_kernel


def mrs_env(server: StandinMRS | None, **variables: str) -> dict[str, str]:
    """The test's environment without any R Server settings, plus the runner's variables for ``server``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MRS_", "BACKEND_RSERVER_"))}
    if server is not None:
        env.update(MRS_ENDPOINT=server.url, MRS_USERNAME=server.username, MRS_PASSWORD=server.password)
    env.update(variables)
    return env


@pytest.fixture
def server() -> Iterator[StandinMRS]:
    require_programs("Rscript")
    standin = StandinMRS(username="analyst", password="s3cret").start()
    yield standin
    standin.stop()
    assert all(s.process.poll() is not None for s in standin.created), "an R process of the stand-in outlived it"


def calls(server: StandinMRS, method: str, path_end: str) -> list:
    return [c for c in server.calls if c.method == method and c.path.endswith(path_end)]


async def test_cells_share_one_session_and_shutdown_deletes_it_then_revokes_the_refresh_token(
        server: StandinMRS) -> None:
    async with running_kernel("backend-rserver", env=mrs_env(server)) as (_km, kc):
        first = await run_cell(kc, "x <- 41")
        assert first["reply"]["status"] == "ok" and first["stdout"] == ""
        second = await run_cell(kc, "x + 1\ncat('printed\\n')\nmessage('a message')")
        assert second["reply"]["status"] == "ok", second
        assert second["stdout"] == "[1] 42\nprinted\na message\n"  # consoleOutput, its \r\n made \n
        session_id = next(iter(server.sessions))
    assert server.sequence() == [
        "POST /login 200",
        "POST /sessions 201",
        "POST /sessions/{id}/execute 200",
        "POST /sessions/{id}/execute 200",
        "DELETE /sessions/{id} 200",
        "DELETE /login/refreshToken 200",
    ]
    login = server.calls[0]
    assert login.body == {"username": "analyst", "password": "s3cret"}
    assert {c.bearer for c in server.calls[1:]} == {login.answer["access_token"]}
    assert calls(server, "POST", "/execute")[0].body == {"code": "x <- 41"}
    assert server.deleted == [session_id] and server.sessions == {}
    assert calls(server, "DELETE", "/login/refreshToken")[0].query == {"refreshToken": login.answer["refresh_token"]}
    assert server.revoked == [login.answer["refresh_token"]]


async def test_an_r_error_is_an_error_reply_after_the_output_before_it(server: StandinMRS) -> None:
    async with running_kernel("backend-rserver", env=mrs_env(server)) as (_km, kc):
        out = await run_cell(kc, "cat('before\\n')\nprint(undefined_thing)\ncat('after\\n')")
        assert out["stdout"] == "before\n"
        reply = out["reply"]
        assert reply["status"] == "error" and reply["exit_code"] == 1 and reply["ename"] == "RError"
        assert reply["evalue"] == "Error in print(undefined_thing) : object 'undefined_thing' not found"
        assert out["errors"] and out["errors"][0]["evalue"] == reply["evalue"]
        execute = calls(server, "POST", "/execute")[0]
        assert execute.answer["success"] is False and execute.answer["errorMessage"] == reply["evalue"]
        again = await run_cell(kc, "cat('still here\\n')")
        assert again["reply"]["status"] == "ok" and again["stdout"] == "still here\n"


async def test_an_expired_access_token_is_refreshed_before_the_next_cell() -> None:
    require_programs("Rscript")
    server = StandinMRS(token_ttl=2.0).start()
    try:
        async with running_kernel("backend-rserver", env=mrs_env(server)) as (_km, kc):
            assert (await run_cell(kc, "y <- 7"))["reply"]["status"] == "ok"
            await asyncio.sleep(2.2)  # past the token's expires_in
            out = await run_cell(kc, "y * 2")
            assert out["reply"]["status"] == "ok", out
            assert out["stdout"] == "[1] 14\n"
        refreshes = calls(server, "POST", "/login/refreshToken")
        assert refreshes and all(c.status == 200 for c in refreshes)
        assert 401 not in [c.status for c in server.calls], server.sequence()
        assert len(server.deleted) == 1 and len(calls(server, "POST", "/login")) == 1
        last = refreshes[-1].answer
        assert calls(server, "DELETE", "/sessions/" + server.deleted[0])[0].bearer == last["access_token"]
        assert calls(server, "DELETE", "/login/refreshToken")[0].query == {"refreshToken": last["refresh_token"]}
    finally:
        server.stop()


async def test_a_token_the_server_drops_early_is_refreshed_and_the_cell_repeated(server: StandinMRS) -> None:
    async with running_kernel("backend-rserver", env=mrs_env(server)) as (_km, kc):
        assert (await run_cell(kc, "z <- 3"))["reply"]["status"] == "ok"
        server.expire_access_tokens()
        out = await run_cell(kc, "z * 5")
        assert out["reply"]["status"] == "ok" and out["stdout"] == "[1] 15\n"
        assert server.sequence()[-3:] == [
            "POST /sessions/{id}/execute 401", "POST /login/refreshToken 200", "POST /sessions/{id}/execute 200"]
        assert len(server.sessions) == 1


async def test_a_refused_refresh_token_logs_in_again(server: StandinMRS) -> None:
    async with running_kernel("backend-rserver", env=mrs_env(server)) as (_km, kc):
        assert (await run_cell(kc, "w <- 2"))["reply"]["status"] == "ok"
        server.revoke_refresh_tokens()
        server.expire_access_tokens()
        out = await run_cell(kc, "w + 1")
        assert out["reply"]["status"] == "ok" and out["stdout"] == "[1] 3\n"
        assert server.sequence()[-4:] == ["POST /sessions/{id}/execute 401", "POST /login/refreshToken 401",
                                          "POST /login 200", "POST /sessions/{id}/execute 200"]


async def test_refused_refresh_token_and_login_is_a_clear_error(server: StandinMRS) -> None:
    async with running_kernel("backend-rserver", env=mrs_env(server)) as (_km, kc):
        assert (await run_cell(kc, "v <- 1"))["reply"]["status"] == "ok"
        server.revoke_refresh_tokens()
        server.expire_access_tokens()
        server.password = "changed"
        reply = (await run_cell(kc, "v"))["reply"]
        assert reply["status"] == "error" and reply["ename"] == "RServerError"
        assert f"R Server at {server.url} rejected the refresh token" in reply["evalue"]
        assert "rejected the login of user 'analyst'" in reply["evalue"]


async def test_a_wrong_password_is_a_clear_error_naming_the_endpoint(server: StandinMRS) -> None:
    async with running_kernel("backend-rserver", env=mrs_env(server, MRS_PASSWORD="wrong-password")) as (_km, kc):
        out = await run_cell(kc, "x <- 1")
        reply = out["reply"]
        assert reply["status"] == "error" and reply["ename"] == "RServerError"
        assert reply["evalue"].startswith(f"R Server at {server.url} rejected the login of user 'analyst' (HTTP 401")
        assert "MRS_PASSWORD" in reply["evalue"] and "wrong-password" not in reply["evalue"]
        assert out["stdout"] == ""
    assert server.sessions == {} and server.deleted == []
    assert {c.path for c in server.calls} == {"/login"}  # nothing to delete at shutdown


async def test_kernel_options_name_the_server_and_an_unreachable_one_is_a_clear_error(server: StandinMRS) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{closed_port}"
    async with running_kernel("backend-rserver", env=mrs_env(server, MRS_ENDPOINT=url)) as (_km, kc):
        reply = (await run_cell(kc, "x <- 1"))["reply"]
        assert reply["status"] == "error" and reply["ename"] == "RServerError"
        assert reply["evalue"].startswith(f"R Server at {url} is unreachable (POST /login")
    options = {"server_url": server.url, "username": "analyst", "password": "s3cret"}
    async with running_kernel("backend-rserver", env=mrs_env(None), kernel_options=options) as (_km, kc):
        out = await run_cell(kc, "cat(R.version$language, '\\n')")
        assert out["reply"]["status"] == "ok" and out["stdout"] == "R \n"


async def test_the_default_endpoint_is_localhost() -> None:
    async with running_kernel("backend-rserver", env=mrs_env(None)) as (_km, kc):
        info = await kc.kernel_info(reply=True, timeout=30)
        assert info["content"]["language_info"]["version"] == "Microsoft R Server at http://localhost"


async def test_interrupt_cancels_the_execution_and_the_session_keeps_its_state(server: StandinMRS) -> None:
    async with running_kernel("backend-rserver", env=mrs_env(server)) as (km, kc):
        assert (await run_cell(kc, "kept <- 5"))["reply"]["status"] == "ok"
        cell = asyncio.ensure_future(run_cell(kc, "cat('started\\n')\nSys.sleep(120)\ncat('never\\n')"))
        for _ in range(600):
            if server.executing():
                break
            await asyncio.sleep(0.05)
        await km.interrupt_kernel()
        out = await asyncio.wait_for(cell, 60)
        assert out["reply"]["status"] == "error" and out["reply"]["ename"] == "KeyboardInterrupt"
        assert out["stdout"] == "started\n"  # the cancelled execution's answer still shows its output
        assert [c.status for c in calls(server, "POST", "/cancel")] == [200]
        assert next(iter(server.sessions.values())).cancelled == 1
        after = await run_cell(kc, "kept")
        assert after["reply"]["status"] == "ok" and after["stdout"] == "[1] 5\n"


async def test_a_session_the_server_lost_is_reopened_by_the_next_cell(server: StandinMRS) -> None:
    async with running_kernel("backend-rserver", env=mrs_env(server)) as (_km, kc):
        assert (await run_cell(kc, "u <- 1"))["reply"]["status"] == "ok"
        lost = next(iter(server.sessions))
        server.sessions.pop(lost).close()  # the server dropped it (a timeout, a restart)
        reply = (await run_cell(kc, "u"))["reply"]
        assert reply["status"] == "error" and f"no longer has session {lost}" in reply["evalue"]
        out = await run_cell(kc, "exists('u')")
        assert out["reply"]["status"] == "ok" and out["stdout"] == "[1] FALSE\n"
        assert len(server.sessions) == 1 and lost not in server.sessions
        assert len(calls(server, "POST", "/login")) == 1  # the login is kept


async def test_console_output_is_cut_at_the_output_limit(server: StandinMRS) -> None:
    async with running_kernel("backend-rserver", env=mrs_env(server), kernel_options={"output_limit": 100}) as (_km, kc):
        out = await run_cell(kc, "cat(strrep('x', 5000))")
        assert out["reply"]["status"] == "ok"
        assert out["stdout"] == "x" * 100
        assert "[output truncated: more than 100 bytes" in out["stderr"]


async def test_completion_is_answered_while_a_remote_cell_runs(server: StandinMRS) -> None:
    """As in every kernel (tests/test_introspection_beside_cell.py): the request does not wait for the cell."""
    async with running_kernel("backend-rserver", env=mrs_env(server)) as (km, kc):
        assert (await run_cell(kc, "kept <- 5"))["reply"]["status"] == "ok"
        cell = asyncio.ensure_future(run_cell(kc, "Sys.sleep(120)"))
        for _ in range(600):
            if server.executing():
                break
            await asyncio.sleep(0.05)
        msg_id = kc.complete("pri", 3)
        while (reply := await kc.get_shell_msg(timeout=30))["parent_header"].get("msg_id") != msg_id:
            pass
        assert reply["content"]["status"] == "ok" and "print" in reply["content"]["matches"]
        assert not cell.done() and server.executing(), "the remote cell should still be running"
        await km.interrupt_kernel()
        await asyncio.wait_for(cell, 60)
