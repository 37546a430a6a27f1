"""Services through real kernels: provisioner hooks, restarts, shutdown, magics, server death."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from .helpers import pid_alive, require_programs, run_cell, running_kernel
from .test_services import fetch, port_open

pytestmark = pytest.mark.kernel  # every test starts a kernel (running_kernel, or a server subprocess that starts one)

DATA = Path(__file__).parent / "data"
DEFS = str(DATA / "service-defs")
BAD = str(DATA / "bad-service-defs")


async def wait_gone(pids, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while any(pid_alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def test_autostart_survives_restart_and_stops_with_shutdown(tmp_path):
    async with running_kernel("backend-python", service_defs_dir=DEFS, autostart_services=["httpd"],
                              cwd=str(tmp_path)) as (km, kc):
        services = km.provisioner.services
        status = services.status("httpd")
        assert status["status"] == "running", status
        pid, port = status["pid"], status["ports"][0]
        assert (tmp_path / "public" / "index.html").exists()  # home is the kernel's cwd
        assert f"served on {port}" in await asyncio.to_thread(fetch, f"http://127.0.0.1:{port}/")
        kernel_pid = km.provisioner.pid
        await km.restart_kernel()
        await kc.wait_for_ready(timeout=60)
        assert km.provisioner.pid != kernel_pid
        assert km.provisioner.services is services
        assert services.status("httpd")["pid"] == pid and pid_alive(pid)
        assert f"served on {port}" in await asyncio.to_thread(fetch, f"http://127.0.0.1:{port}/")
        extra = await services.start_service({"name": "probe-version"})
        assert extra["status"] == "started"
        extra_pid = services.status("probe-version")["pid"]
        assert (await run_cell(kc, "print('up')"))["stdout"] == "up\n"
    assert await wait_gone([pid, extra_pid])
    assert not port_open(port)


async def test_bad_definitions_leave_the_kernel_working(tmp_path):
    async with running_kernel("backend-python", service_defs_dir=BAD, autostart_services=["unknown-field"],
                              cwd=str(tmp_path)) as (km, kc):
        result = km.provisioner.sidecar.autostart_results["unknown-field"]
        assert result["status"] == "failed" and "unknown-field.json" in result["error"]
        for name, problem in [("malformed", "invalid JSON"), ("bad-action", "format_disk"),
                              ("no-command", "'command' is required")]:
            result = await km.provisioner.services.start_service({"name": name})
            assert result["status"] == "failed" and f"{name}.json" in result["error"] and problem in result["error"]
        assert km.provisioner.services.get_apps() == []
        assert (await run_cell(kc, "print(6 * 7)"))["stdout"] == "42\n"


async def test_api_events_logs_and_private_env(tmp_path):
    async with running_kernel("backend-python", service_defs_dir=DEFS, cwd=str(tmp_path)) as (km, kc):
        prov = km.provisioner
        events = prov.subscribe_events()
        result = await prov.services.start_service({"name": "httpd", "port": None, "ports": [], "protocol": "http",
                                                    "options": {"arguments": {}, "envs": {}}})
        assert result["status"] == "started"
        seen = []
        while not seen or seen[-1]["status"] != "running":
            event = await asyncio.wait_for(anext(events), 30)
            if event["name"] == "httpd":
                seen.append(event)
        assert [e["status"] for e in seen] == ["starting", "running"]
        assert {"event", "name", "status", "exit_code", "restarts", "time"} <= set(seen[-1])
        pid = prov.services.status("httpd")["pid"]
        env = Path(f"/proc/{pid}/environ").read_bytes()
        assert b"BACKEND_CONTROL_TOKEN" not in env and b"BACKEND_KERNEL_LANGUAGE=python" in env
        reply = await run_cell(kc, "import os; print('BACKEND_CONTROL_TOKEN' in os.environ)")
        assert reply["stdout"] == "True\n"
        assert "Serving HTTP" in prov.services.read_log("httpd", tail=20)
        await prov.services.shutdown_service("httpd")
        assert (await asyncio.wait_for(anext(events), 30))["status"] == "stopped"


async def test_magics_in_backend_python(tmp_path):
    async with running_kernel("backend-python", service_defs_dir=DEFS, cwd=str(tmp_path)) as (km, kc):
        apps = await run_cell(kc, "%apps")
        assert "httpd" in apps["stdout"] and "{protocol}://{host}:{port}/" in apps["stdout"]
        started = await run_cell(kc, "%service start httpd --env HTTPD_GREETING=hi")
        assert started["stdout"].startswith("service httpd: started on port"), started
        port = int(started["stdout"].split()[-1])
        assert f"served on {port}" in await asyncio.to_thread(fetch, f"http://127.0.0.1:{port}/")
        listing = await run_cell(kc, "%services")
        line = next(ln for ln in listing["stdout"].splitlines() if ln.startswith("httpd"))
        assert "running" in line and str(port) in line
        refused = await run_cell(kc, "%service start tensorboard --arg --evil=1")
        assert refused["reply"]["status"] == "error" and refused["reply"]["exit_code"] == 1
        assert "'--evil' is not allowed" in refused["reply"]["evalue"]
        log = await run_cell(kc, "%service log httpd 50")
        assert "httpd will serve" in log["stdout"]
        stopped = await run_cell(kc, "%service stop httpd")
        assert stopped["stdout"] == "service httpd: stopped\n"
        assert not port_open(port)


def test_server_sigterm_leaves_no_service(tmp_path):
    """A real server process with a kernel and a service is SIGTERMed: nothing stays."""
    code = textwrap.dedent(f"""
        import asyncio
        from jupyter_client.manager import AsyncKernelManager
        async def main():
            km = AsyncKernelManager(kernel_name="backend-python")
            await km.start_kernel(service_defs_dir={DEFS!r}, autostart_services=["httpd"], cwd={str(tmp_path)!r})
            status = km.provisioner.services.status("httpd")
            print(status["pid"], status["ports"][0], km.provisioner.pid, flush=True)
            await asyncio.sleep(600)
        asyncio.run(main())
    """)
    temp = tmp_path / "tmp"  # the server's temp folder: its control and service folders are made there
    temp.mkdir()
    server = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "TMPDIR": str(temp)})
    try:
        service_pid, port, kernel_pid = map(int, server.stdout.readline().split())
        assert any(p.name.startswith("bkp-services-") for p in temp.iterdir())
        assert pid_alive(service_pid) and port_open(port)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        assert asyncio.run(wait_gone([service_pid], timeout=20)), "service outlived its server"
        deadline = time.monotonic() + 10  # the leader goes first; the reaper then stops its group
        while port_open(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not port_open(port), "a process of the service's group still listens"
        deadline = time.monotonic() + 20
        while list(temp.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(temp.iterdir()) == [], "the dead server's folders and connection file were left"
    finally:
        if server.poll() is None:
            server.kill()
    # The kernel itself notices its parent is gone (ipykernel's parent poller); don't leave it around.
    if not asyncio.run(wait_gone([kernel_pid], 10)):
        os.kill(kernel_pid, signal.SIGKILL)


async def test_restart_policy_from_provisioner_config(tmp_path):
    policies = {"httpd": {"restart": {"policy": "on-failure", "backoff": 0.05}, "readiness": {"type": "http"}}}
    async with running_kernel("backend-python", service_defs_dir=DEFS, autostart_services=["httpd"],
                              service_policies=policies, cwd=str(tmp_path)) as (km, kc):
        services = km.provisioner.services
        events = services.subscribe()
        first = services.status("httpd")
        os.kill(first["pid"], signal.SIGKILL)
        statuses = []
        while not statuses or statuses[-1]["status"] != "running" or len(statuses) < 2:
            event = await asyncio.wait_for(anext(events), 30)
            statuses.append(event)
        assert "backoff" in [e["status"] for e in statuses] and statuses[-1]["restarts"] == 1
        second = services.status("httpd")
        assert second["pid"] != first["pid"] and second["ports"] == first["ports"]
        assert "served on" in await asyncio.to_thread(fetch, f"http://127.0.0.1:{second['ports'][0]}/")
    assert await wait_gone([second["pid"]])


async def test_magics_in_our_own_kernels(tmp_path):
    """%apps / %service / %services in a kernel of our framework (backend-c), via kernels/magics.py."""
    require_programs("gcc")
    async with running_kernel("backend-c", service_defs_dir=DEFS, cwd=str(tmp_path)) as (km, kc):
        apps = await run_cell(kc, "%apps")
        assert "httpd" in apps["stdout"], apps
        started = await run_cell(kc, "%service start httpd")
        assert started["stdout"].startswith("service httpd: started on port"), started
        port = int(started["stdout"].split()[-1])
        assert "running" in (await run_cell(kc, "%services"))["stdout"]
        refused = await run_cell(kc, "%service start tensorboard --arg --evil=1")
        assert refused["reply"]["exit_code"] == 1 and "'--evil' is not allowed" in refused["stderr"]
        assert (await run_cell(kc, "%service stop httpd"))["stdout"] == "service httpd: stopped\n"
        assert not port_open(port)
