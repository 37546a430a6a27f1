"""Remote kernels through ``backend-distributed-provisioner`` on "another host": localhost over SSH (issue 16).

The host is 127.0.0.2 with a private sshd (:mod:`tests.remote_host`), which
gateway_provisioners does not take for this machine, so the launcher really
starts over SSH (``nohup``, parent 1), not as a child of this process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from backend_kernel_provisioner.agent import AgentKernel
from backend_kernel_provisioner.common.childproc import proc_stat
from tests.helpers import require_programs
from tests.remote_host import SshHost, session_processes
from tests.remote_host import ssh_host as ssh_host  # the session fixture
from tests.test_agent_services import C_INPUT, echo_model, next_event
from tests.test_model_service import free_port

pytestmark = pytest.mark.kernel

DATA = Path(__file__).parent / "data"
REMOTE = "backend-distributed-provisioner"


@pytest.fixture(autouse=True)
def _launcher_logs_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """gateway_provisioners writes each launcher's log to /tmp/kernel-<id>.log and never removes it."""
    import gateway_provisioners.distributed

    monkeypatch.setattr(gateway_provisioners.distributed, "kernel_log_dir", str(tmp_path))


def remote_options(host: SshHost, **extra: Any) -> dict[str, Any]:
    """Keywords that send a kernel to ``host`` (root is allowed here: the tests run as root)."""
    return {
        "provisioner": REMOTE, "remote_hosts": [host.host], "ssh_port": host.port, "ssh_key_file": host.key_file,
        "ssh_known_hosts_file": host.known_hosts_file, "ssh_user": host.user, "unauthorized_users": set(),
        "launcher_python": sys.executable, "lease_timeout": 10.0, **extra,
    }


def launchers_and_kernels(host: SshHost) -> list[str]:
    """What runs through the test sshd (launcher, kernels, services, reapers), zombies aside:
    ``pid (parent) command line``."""
    found = []
    for pid in session_processes(host):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            stat = proc_stat(pid)
        except OSError:
            continue
        found.append(f"{pid} ({stat[1][1] if stat else '?'}) {cmdline[:300]}")
    return found


async def wait_until_none_left(host: SshHost, deadline: float = 30.0) -> list[str]:
    """What is still running after ``deadline`` seconds (polling; the empty list as soon as all are gone)."""
    end = time.monotonic() + deadline
    while True:
        left = launchers_and_kernels(host)
        if not left or time.monotonic() > end:
            return left
        await asyncio.sleep(0.2)


def parent_of(pid: int) -> int:
    stat = proc_stat(pid)
    assert stat is not None, f"process {pid} is gone"
    return int(stat[1][1])


async def interrupt_keeps_state(kernel: AgentKernel) -> list:
    await kernel.execute("i1", "query", "kept = 41 + 1")
    busy = await kernel.execute("i2", "query", "while True:\n    pass", flush_timeout=0.5)
    assert busy["status"] == "continued"
    await kernel.interrupt()
    stopped = await kernel.execute("i2", "continue", "", flush_timeout=30)
    after = await kernel.execute("i3", "query", "print(kept)")
    return [stopped["status"], after["console"]]


async def the_acceptance_sequence(**options: Any) -> dict[str, Any]:
    """C with scanf input, a Node.js cell, a Python interrupt with state kept, restart, shutdown."""
    results: dict[str, Any] = {}
    async with await AgentKernel.start("c", **options) as c_kernel:
        waiting = await c_kernel.execute("c1", "query", C_INPUT)
        done = await c_kernel.execute("c1", "input", "lemon")
        results["c"] = [waiting["status"], waiting["console"], done["status"], done["exitCode"], done["console"]]
    async with await AgentKernel.start("nodejs", **options) as node:
        ran = await node.execute("n1", "query", "const xs = [1, 2, 3];\nconsole.log(xs.map(x => x * 2).join(','));")
        results["node"] = [ran["status"], ran["exitCode"], ran["console"]]
    async with await AgentKernel.start("python", **options) as python:
        results["interrupt"] = await interrupt_keeps_state(python)
        await python.execute("p1", "query", "before = 'set'")
        await python.restart()
        after = await python.execute("p2", "query", "print('before' in globals())")
        results["restart"] = after["console"]
    return results


async def test_same_results_as_the_local_provisioner(ssh_host: SshHost) -> None:
    require_programs("gcc", "node")
    local = await the_acceptance_sequence()
    remote = await the_acceptance_sequence(**remote_options(ssh_host))
    assert remote == local
    assert remote["c"][2:] == ["finished", 0, [["stdout", "got lemon\n"]]]
    assert remote["interrupt"][1] == [["stdout", "42\n"]]
    assert remote["restart"] == [["stdout", "False\n"]]  # a restart is a new interpreter
    assert await wait_until_none_left(ssh_host) == []


async def test_the_kernel_runs_on_the_remote_host(ssh_host: SshHost) -> None:
    async with await AgentKernel.start("shell", **remote_options(ssh_host)) as kernel:
        ran = await kernel.execute("r1", "query", 'echo "$SSH_CONNECTION"; echo $PPID')
        lines = ran["console"][0][1].split()
        assert ssh_host.host in lines and str(ssh_host.port) in lines  # started through the test sshd
        provisioner = kernel.provisioner
        assert provisioner.kernel_pid in session_processes(ssh_host)
        launcher = parent_of(provisioner.kernel_pid)
        assert launcher != os.getpid()
        assert parent_of(launcher) == 1  # nohup'd by gateway_provisioners, not our child


async def test_services_and_models_run_next_to_the_kernel(ssh_host: SshHost, tmp_path: Path) -> None:
    port = free_port()
    model = echo_model(port, tmp_path)
    options = remote_options(ssh_host, service_defs_dir=str(DATA / "service-defs"))
    async with await AgentKernel.start("python", cwd=str(tmp_path), **options) as kernel:
        provisioner = kernel.provisioner
        launcher = parent_of(provisioner.kernel_pid)
        events = kernel.events()

        started = await kernel.start_service({"name": "httpd", "protocol": "http", "options": {}})
        assert started["status"] == "started", started
        page = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{started['ports'][0]}/").read())
        assert f"served on {started['ports'][0]}".encode() in page
        await next_event(events, lambda e: e.get("name") == "httpd" and e.get("status") == "running")

        assert (await kernel.start_model_service(model))["status"] == "started"
        healthy = await next_event(events, lambda e: e.get("event") == "model-service-status")
        assert healthy["model_name"] == "echo-model" and healthy["is_healthy"] is True
        assert provisioner.model_health() == {"echo-model": True}

        service_pid = (await provisioner.services.status("httpd"))["pid"]
        model_pid = (await provisioner.services.status(f"echo-model-{port}"))["pid"]
        for pid in (service_pid, model_pid):  # children of the launcher, on the kernel's side
            assert parent_of(pid) == launcher
            assert pid in session_processes(ssh_host)

        await kernel.restart()
        await next_event(events, lambda e: e.get("event") == "kernel-restarted")
        assert parent_of(provisioner.kernel_pid) == launcher  # only the kernel child was replaced
        assert (await provisioner.services.status("httpd"))["pid"] == service_pid
        assert (await provisioner.services.status(f"echo-model-{port}"))["pid"] == model_pid
        again = await kernel.execute("r1", "query", "print('after restart')")
        assert again["console"] == [["stdout", "after restart\n"]]
        listed = await kernel.execute("r2", "query", "%services")  # the magics reach the sidecar next to them
        assert "httpd" in listed["console"][0][1] and "running" in listed["console"][0][1]

        os.kill(model_pid, signal.SIGKILL)
        unhealthy = await next_event(events, lambda e: e.get("event") == "model-service-status" and not e["is_healthy"])
        assert unhealthy["model_name"] == "echo-model"
    assert await wait_until_none_left(ssh_host) == []


async def test_a_lost_launcher_is_replaced_on_restart_and_its_events_flow(ssh_host: SshHost) -> None:
    """The kernel's host lost its launcher (SIGKILL): poll() says so, a restart starts a new launcher over
    SSH, and the events of its services still reach the subscribers made before."""
    options = remote_options(ssh_host, service_defs_dir=str(DATA / "service-defs"), lease_timeout=2.0)
    async with await AgentKernel.start("shell", **options) as kernel:
        provisioner = kernel.provisioner
        events = kernel.events()
        first = parent_of(provisioner.kernel_pid)
        os.kill(first, signal.SIGKILL)
        while await provisioner.poll() is None:
            await asyncio.sleep(0.1)
        assert await provisioner.poll() == -1  # the launcher itself is gone
        await kernel.restart()
        second = parent_of(provisioner.kernel_pid)
        assert second != first and parent_of(second) == 1
        started = await kernel.start_service({"name": "httpd", "protocol": "http", "options": {}})
        assert started["status"] == "started", started
        await next_event(events, lambda e: e.get("name") == "httpd" and e.get("status") == "running")
        ran = await kernel.execute("r1", "query", "echo back")
        assert ran["console"] == [["stdout", "back\n"]]
    assert await wait_until_none_left(ssh_host) == []


async def test_a_refused_user_gets_a_clear_error(ssh_host: SshHost) -> None:
    options = remote_options(ssh_host)
    options["unauthorized_users"] = {os.environ.get("KERNEL_USERNAME") or __import__("getpass").getuser()}
    with pytest.raises(PermissionError, match="unauthorized_users"):
        await AgentKernel.start("shell", **options)
    assert await wait_until_none_left(ssh_host, deadline=2) == []


async def test_an_unknown_host_key_is_refused(ssh_host: SshHost, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    options = remote_options(ssh_host, ssh_known_hosts_file=str(empty))
    with pytest.raises(RuntimeError, match=r"cannot log in to .*127\.0\.0\.2.*not found in known_hosts"):
        await AgentKernel.start("shell", **options)
    assert await wait_until_none_left(ssh_host, deadline=2) == []


async def test_a_bad_signature_is_refused_by_a_live_launcher(ssh_host: SshHost) -> None:
    from backend_kernel_provisioner.remote.channel_client import LauncherChannel, LauncherError

    async with await AgentKernel.start("shell", **remote_options(ssh_host)) as kernel:
        provisioner = kernel.provisioner
        port = provisioner.connection_info["backend_port"]
        forger = LauncherChannel(ssh_host.host, port, b"not-the-connection-key", log=provisioner.log,
                                 on_event=lambda event: None)
        forger.connect()
        try:
            with pytest.raises(LauncherError):
                await forger.call("kill-kernel", timeout=2)
        finally:
            await forger.close()
        assert (await provisioner.channel.call("stats"))["refused"] >= 1
        ran = await kernel.execute("r1", "query", "echo still here")  # the forged kill did nothing
        assert ran["console"] == [["stdout", "still here\n"]]


async def test_nothing_left_after_shutdown_during_start(ssh_host: SshHost) -> None:
    from jupyter_client.manager import AsyncKernelManager

    from backend_kernel_provisioner.agent.kernel import _choose_provisioner, _spec_manager

    options = remote_options(ssh_host)
    km = AsyncKernelManager(kernel_name="backend-python", kernel_spec_manager=_spec_manager())
    _choose_provisioner(km, options.pop("provisioner"))
    start = asyncio.create_task(km.start_kernel(**options))
    while not any(str(km.kernel_id) in found for found in launchers_and_kernels(ssh_host)):
        await asyncio.sleep(0.05)  # until this kernel's launcher runs on the "remote" host
    await km.shutdown_kernel(now=True)
    with pytest.raises(Exception):  # noqa: B017 - how the start fails is jupyter_client's affair (its ready future)
        await start
    assert await wait_until_none_left(ssh_host) == []


async def test_a_cancelled_start_leaves_nothing(ssh_host: SshHost) -> None:
    start = asyncio.create_task(AgentKernel.start("python", **remote_options(ssh_host)))
    while not any("backend_kernel_provisioner.launcher" in found for found in launchers_and_kernels(ssh_host)):
        await asyncio.sleep(0.05)
    start.cancel()
    with pytest.raises(asyncio.CancelledError):
        await start
    assert await wait_until_none_left(ssh_host) == []


SERVER_SCRIPT = textwrap.dedent("""
    import asyncio, json, sys
    from backend_kernel_provisioner.agent import AgentKernel

    async def main():
        options = json.loads(sys.argv[1])
        options["unauthorized_users"] = set()
        kernel = await AgentKernel.start("shell", **options)
        started = await kernel.start_service({"name": "httpd", "protocol": "http", "options": {}})
        assert started["status"] == "started", started
        print("ready", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
""")


async def test_nothing_left_after_the_server_is_killed(ssh_host: SshHost, tmp_path: Path) -> None:
    import json

    options = remote_options(ssh_host, service_defs_dir=str(DATA / "service-defs"), lease_timeout=2.0)
    options.pop("unauthorized_users")
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SERVER_SCRIPT, json.dumps(options), stdout=subprocess.PIPE,
        cwd=str(Path(__file__).parent.parent), env={**os.environ, "GP_KERNEL_LOG_DIR": str(tmp_path)})
    try:
        assert server.stdout is not None
        line = await asyncio.wait_for(server.stdout.readline(), 120)
        assert line.strip() == b"ready"
        running = launchers_and_kernels(ssh_host)
        assert any("backend_kernel_provisioner.launcher" in c for c in running)
        assert any("http.server" in c or "httpd" in c for c in running) or len(running) >= 3
        server.send_signal(signal.SIGKILL)
        await server.wait()
        assert await wait_until_none_left(ssh_host) == []  # the launcher's lease ran out
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()


async def test_limits_hold_on_the_kernel_host_and_an_oom_death_is_told(ssh_host: SshHost) -> None:
    """Issue 20: the launcher makes the kernel's cgroup on its host; a death by OOM reaches the agent's
    event stream and the restarted kernel's first cell, as for a local kernel."""
    from backend_kernel_provisioner.common.cgroups import detect_layout

    if detect_layout() is None:
        pytest.skip("no cgroup hierarchy with a memory controller on this machine")
    async with await AgentKernel.start("python", **remote_options(ssh_host, memory_limit="200M")) as kernel:
        events = kernel.events()
        limit = await kernel.execute("l1", "query", "import os\nprint(os.environ.get('MEM_LIMIT'))")
        if limit["console"] == [["stdout", "None\n"]]:
            pytest.skip("the launcher could not make a cgroup on the kernel's host (see its log)")
        assert limit["console"] == [["stdout", f"{200 << 20}\n"]]
        await kernel.execute("l2", "query", "hog = bytearray(600 << 20)")
        oom = await next_event(events, lambda e: e.get("type") == "oom")
        assert "out of memory" in oom["message"] and "200 MiB" in oom["message"]
        await kernel.restart()
        first = await kernel.execute("l3", "query", "print('after')")
        text = "".join(item[1] for item in first["console"] if isinstance(item[1], str))
        assert "out of memory" in text and "after" in text
