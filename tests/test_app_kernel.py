"""backend-app: hosts services, answers cells with a clear message (issue 11, acceptance 1)."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from tests.helpers import kernel_process_tree, pid_alive, run_cell, running_kernel

pytestmark = pytest.mark.kernel  # starts backend-app through running_kernel

DEFS = Path(__file__).parent / "data" / "service-defs"


async def test_app_kernel_hosts_httpd_and_explains_itself(tmp_path: Path) -> None:
    async with running_kernel(
        "backend-app", cwd=str(tmp_path), service_defs_dir=str(DEFS), autostart_services=["httpd"]
    ) as (km, kc):
        status = km.provisioner.services.status("httpd")
        assert status["status"] == "running"
        port = status["ports"][0]
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read()
        assert f"served on {port}".encode() in page

        out = await run_cell(kc, "anything at all")
        assert out["reply"]["status"] == "ok"
        assert "app kernel" in out["stdout"] and "runs no code" in out["stdout"]
        assert "httpd" in out["stdout"] and "running" in out["stdout"]
        assert "%service start NAME" in out["stdout"]

        started = await run_cell(kc, "%service start vnc-preopen")
        assert "vnc-preopen: started" in started["stdout"]
        listed = await run_cell(kc, "%services")
        assert "vnc-preopen" in listed["stdout"]
        service_pid = status["pid"]
        tree = kernel_process_tree(km.provisioner.pid)
    assert not pid_alive(service_pid)
    assert not any(pid_alive(pid) for pid in tree)
