"""Kernels in real containers through ``backend-docker-provisioner`` (issue 17, acceptance 1).

Podman with runc, driven through its Docker-compatible API (``podman system
service``; :mod:`tests.podman_host`), from our kernel image built from Debian
packages and our wheel. The kernel, its launcher, its services and model
servers run in the container; this process reaches them at the container's
bridge address.
"""

from __future__ import annotations

import asyncio
import os
import sys
import urllib.request
from pathlib import Path
from typing import Any

import docker
import pytest

from backend_kernel_provisioner.agent import AgentKernel
from tests.podman_host import PodmanApi
from tests.podman_host import podman_api as podman_api  # the session fixture
from tests.test_agent_services import C_INPUT, next_event
from tests.test_remote_kernels import interrupt_keeps_state

pytestmark = pytest.mark.kernel

DATA = Path(__file__).parent / "data"
DOCKER = "backend-docker-provisioner"
MODEL_PORT = 18080


@pytest.fixture
def docker_host(podman_api: PodmanApi, monkeypatch: pytest.MonkeyPatch) -> PodmanApi:
    """gateway_provisioners' Docker client reads ``DOCKER_HOST`` when a provisioner is made."""
    monkeypatch.setenv("DOCKER_HOST", podman_api.docker_host)
    return podman_api


def container_options(podman: PodmanApi, **extra: Any) -> dict[str, Any]:
    """Keywords that put a kernel in a container of our image (root may start kernels: the tests run as root;
    the kernel itself runs as uid 1000 in the container)."""
    return {
        "provisioner": DOCKER, "image_name": podman.image, "unauthorized_users": set(), "lease_timeout": 10.0,
        "mounts": [f"{DATA / 'container-service-defs'}:/srv/service-defs:ro"], "service_defs_dir": "/srv/service-defs",
        **extra,
    }


def model_in_container(port: int) -> dict[str, Any]:
    """An HTTP server in the kernel's container whose health check probes ``/``."""
    return {
        "name": "echo-model",
        "model_path": "/home/kernel",
        "service": {
            "pre_start_actions": [],
            "start_command": ["python", "-m", "http.server", "--bind", "0.0.0.0", str(port)],
            "port": port,
            "health_check": {"path": "/", "max_retries": 1, "max_wait_time": 2, "initial_delay": 0, "interval": 0.3},
        },
    }


def ours(podman: PodmanApi, kernel_id: str) -> list[str]:
    return podman.containers(f"kernel_id={kernel_id}")


async def fetch(url: str) -> bytes:
    return await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=10).read())


async def test_python_in_a_container_input_interrupt_service_model_restart(
        docker_host: PodmanApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVER_ONLY_SECRET", "the server's")
    async with await AgentKernel.start("python", **container_options(docker_host)) as kernel:
        provisioner = kernel.provisioner
        kernel_id = provisioner.kernel_id
        assert len(ours(docker_host, kernel_id)) == 1
        events = kernel.events()

        who = await kernel.execute("w1", "query", "import os, sys\nprint(os.getuid(), os.getgid(), sys.executable)")
        assert who["console"] == [["stdout", "1000 100 /opt/backend/bin/python\n"]]  # in the image, not root
        seen = await kernel.execute("w2", "query", "print(os.environ['PATH'], os.environ['HOME'], "
                                    "os.environ.get('SERVER_ONLY_SECRET', 'unset'))")
        path, home, secret = seen["console"][0][1].split()
        assert "/opt/backend/bin" in path.split(":") and home == "/home/kernel" and secret == "unset"
        assert os.environ["PATH"] not in path  # the server's PATH stays on the server

        asked = await kernel.execute("q1", "query", "name = input('name? ')\nprint('hi', name)")
        assert asked["status"] == "waiting-input", asked
        answered = await kernel.execute("q1", "input", "ann")
        assert answered["status"] == "finished" and ["stdout", "hi ann\n"] in answered["console"], answered

        assert await interrupt_keeps_state(kernel) == ["finished", [["stdout", "42\n"]]]

        started = await kernel.start_service({"name": "httpd", "protocol": "http", "options": {}})
        assert started["status"] == "started", started
        port = started["ports"][0]
        page = await fetch(f"http://{provisioner.assigned_ip}:{port}/")  # from this host, into the container
        assert f"served on {port}".encode() in page

        assert (await kernel.start_model_service(model_in_container(MODEL_PORT)))["status"] == "started"
        healthy = await next_event(events, lambda e: e.get("event") == "model-service-status" and e["is_healthy"])
        assert healthy["model_name"] == "echo-model"
        service_pid = (await provisioner.services.status("httpd"))["pid"]
        model_pid = (await provisioner.services.status(f"echo-model-{MODEL_PORT}"))["pid"]

        container = ours(docker_host, kernel_id)
        await kernel.restart()
        assert ours(docker_host, kernel_id) == container  # still the one container
        assert (await provisioner.services.status("httpd"))["pid"] == service_pid  # services survived
        assert f"served on {port}".encode() in await fetch(f"http://{provisioner.assigned_ip}:{port}/")
        fresh = await kernel.execute("r1", "query", "print('kept' in globals())")
        assert fresh["console"] == [["stdout", "False\n"]]  # a restart is a new interpreter

        # the model server dies (killed from the kernel, in the container): health goes down
        await kernel.execute("k1", "query", f"import os, signal\nos.kill({model_pid}, signal.SIGKILL)")
        unhealthy = await next_event(events, lambda e: e.get("event") == "model-service-status"
                                     and not e["is_healthy"])
        assert unhealthy["model_name"] == "echo-model"
    assert ours(docker_host, kernel_id) == []  # shutdown removed the container


async def test_c_in_a_container_with_input(docker_host: PodmanApi) -> None:
    async with await AgentKernel.start("c", **container_options(docker_host)) as kernel:
        kernel_id = kernel.provisioner.kernel_id
        waiting = await kernel.execute("c1", "query", C_INPUT)
        assert waiting["status"] == "waiting-input", waiting
        done = await kernel.execute("c1", "input", "lemon")
        assert [done["status"], done["exitCode"], done["console"]] == ["finished", 0, [["stdout", "got lemon\n"]]]
    assert ours(docker_host, kernel_id) == []


async def test_a_killed_container_is_reported_and_replaced_on_restart(docker_host: PodmanApi) -> None:
    async with await AgentKernel.start("shell", **container_options(docker_host)) as kernel:
        provisioner = kernel.provisioner
        events = kernel.events()
        first = ours(docker_host, provisioner.kernel_id)
        docker.DockerClient(base_url=docker_host.docker_host).containers.get(first[0]).kill()
        while await provisioner.poll() is None:
            await asyncio.sleep(0.1)
        assert await provisioner.poll() == -1
        ended = await next_event(events, lambda e: e.get("event") == "kernel-terminated")
        assert ended["exit_code"] == 137 and ended["reason"] == "Error", ended
        await kernel.restart()
        second = ours(docker_host, provisioner.kernel_id)
        assert len(second) == 1 and second != first
        ran = await kernel.execute("s1", "query", "echo back")
        assert ran["console"] == [["stdout", "back\n"]]
    assert ours(docker_host, provisioner.kernel_id) == []


async def test_a_container_that_cannot_start_fails_at_once_with_its_reason(docker_host: PodmanApi) -> None:
    """A kernelspec whose program is missing in the image: the container ends; the start fails with its output,
    long before the launch timeout, and the container is removed."""
    with pytest.raises(Exception) as failure:
        await AgentKernel.start("python", **container_options(
            docker_host, launcher_python="/no/such/python", launch_timeout=600))
    assert "did not start" in str(failure.value) or "refused" in str(failure.value), failure.value
    assert "/no/such/python" in str(failure.value)
    assert docker_host.containers("app=backend-kernel") == []


def test_the_kernelspec_argv_gets_the_images_python(docker_host: PodmanApi) -> None:
    from backend_kernel_provisioner.remote.docker import BackendDockerProvisioner

    provisioner = BackendDockerProvisioner(kernel_id="k", kernel_spec=None)
    provisioner.kernel_id, provisioner.response_address, provisioner.public_key = "k", "1.2.3.4:8877", "pk"
    argv = provisioner._launcher_command([sys.executable, "-m", "backend_kernel_provisioner.kernels", "c"])
    assert argv[0] == "/opt/backend/bin/python" and argv[-4] == "/opt/backend/bin/python"
    assert sys.executable not in argv


SERVER = """
import asyncio, os, sys
from backend_kernel_provisioner.agent import AgentKernel

async def main():
    kernel = await AgentKernel.start("shell", provisioner="backend-docker-provisioner", image_name=sys.argv[1],
                                     unauthorized_users=set(), lease_timeout=2.0)
    print(kernel.provisioner.kernel_id, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_a_dead_servers_container_stops_and_is_swept_later(docker_host: PodmanApi) -> None:
    """The server is SIGKILLed: its launcher's lease ends the kernel and the container exits (kept, so that
    its reason stays readable); the next kernel start removes exited containers older than
    ``stale_container_age``."""
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SERVER, docker_host.image, stdout=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL)
    assert server.stdout is not None
    kernel_id = (await asyncio.wait_for(server.stdout.readline(), 120)).decode().strip()
    assert len(ours(docker_host, kernel_id)) == 1
    server.kill()
    await server.wait()
    client = docker.DockerClient(base_url=docker_host.docker_host)
    container = client.containers.get(ours(docker_host, kernel_id)[0])
    for _ in range(300):  # the lease is 2 s; a safety net of 30 s, not a measure
        container.reload()
        if container.status == "exited":
            break
        await asyncio.sleep(0.1)
    assert container.status == "exited", container.status
    async with await AgentKernel.start("shell", **container_options(docker_host, stale_container_age=0)) as kernel:
        assert ours(docker_host, kernel_id) == []  # swept by this start
        assert len(ours(docker_host, kernel.provisioner.kernel_id)) == 1  # its own container is not
