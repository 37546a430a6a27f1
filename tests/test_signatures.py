"""A local neighbour who can reach a kernel's ports but lacks its key gets nothing run.

jupyter_client signs every message with the connection key (HMAC-SHA256); our
kernels keep ipykernel's check. This test forges execute requests (wrong key,
no signature) on the shell port of a real kernel and shows none of them ran.
"""

from __future__ import annotations

import asyncio

import pytest
import zmq
import zmq.asyncio
from jupyter_client.session import Session

from .helpers import run_cell, running_kernel

pytestmark = pytest.mark.kernel


@pytest.mark.parametrize("kernel_name", ["backend-shell", "backend-python"])
async def test_forged_requests_are_not_run(kernel_name, tmp_path):
    async with running_kernel(kernel_name) as (km, kc):
        info = km.get_connection_info()
        assert isinstance(info["key"], bytes) and len(info["key"]) >= 32
        marker = tmp_path / "forged-ran"
        code = f"open({str(marker)!r}, 'w').close()" if kernel_name == "backend-python" else f"touch {marker}"
        context = zmq.asyncio.Context.instance()
        sock = context.socket(zmq.DEALER)
        sock.linger = 0
        sock.connect(f"{info['transport']}://{info['ip']}:{info['shell_port']}")
        try:
            for forger in (Session(key=b"not-the-key"), Session(key=b"")):
                msg = forger.msg("execute_request", {"code": code, "silent": False, "store_history": False,
                                                     "user_expressions": {}, "allow_stdin": False})
                forger.send(sock, msg)
            await asyncio.sleep(0.5)  # let the forged frames arrive before the real cells
            for _ in range(2):
                outputs = await run_cell(kc, "echo alive" if kernel_name == "backend-shell" else "print('alive')")
                assert outputs["reply"]["status"] == "ok" and "alive" in outputs["stdout"]
        finally:
            sock.close()
        assert not marker.exists(), "a request signed with the wrong key (or unsigned) was executed"
        real = await run_cell(kc, code)
        assert real["reply"]["status"] == "ok" and marker.exists(), "the control: a signed request runs"
