"""The kernel image, run for real through Podman's Docker-compatible API (issue 17).

Each test starts containers of the image with the ``docker`` client against the
fixture's socket, as gateway_provisioners' launcher does, and removes them: the
user and paths the kernel will have, the launcher, gcc, the stock bootstrap as
default command, and the network both ways (container -> host's public address,
where gateway_provisioners' ResponseManager listens; host -> the container's
bridge address, where the kernel's ports are).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from backend_kernel_provisioner.remote.docker import force_remove
from tests.podman_host import PodmanApi
from tests.podman_host import podman_api as podman_api

docker = pytest.importorskip("docker", reason="the docker client is in the [containers] extra")

pytestmark = pytest.mark.kernel

LABELS = {"app": "backend-kernel", "backend-kernel.test": "image"}
#: A safety net for a container that hangs, not a measure.
WAIT = 120


@pytest.fixture
def client(podman_api: PodmanApi) -> Iterator[Any]:
    client = docker.DockerClient(base_url=podman_api.docker_host, timeout=WAIT)
    try:
        yield client
    finally:
        client.close()


@contextlib.contextmanager
def started(client: Any, podman_api: PodmanApi, command: list[str] | None, **kwargs: Any) -> Iterator[Any]:
    """A container of the kernel image, removed (forced) however the test ends; checks it is gone."""
    container = client.containers.run(podman_api.image, command, detach=True, labels=LABELS, **kwargs)
    try:
        yield container
    finally:
        force_remove(container)
        assert container.id[:12] not in {c[:12] for c in podman_api.containers("backend-kernel.test=image")}


def run(client: Any, podman_api: PodmanApi, command: list[str] | None, **kwargs: Any) -> tuple[int, str]:
    """Run ``command`` to the end in a fresh container; its exit code and output (stdout and stderr)."""
    with started(client, podman_api, command, **kwargs) as container:
        status = container.wait(timeout=WAIT)["StatusCode"]
        return status, container.logs(stdout=True, stderr=True).decode(errors="replace")


def sh(client: Any, podman_api: PodmanApi, script: str, **kwargs: Any) -> str:
    status, output = run(client, podman_api, ["sh", "-c", script], **kwargs)
    assert status == 0, output
    return output


def test_runs_as_kernel_user_with_the_venv_first(client: Any, podman_api: PodmanApi) -> None:
    out = sh(client, podman_api, 'id -u; id -g; id -un; command -v python; echo "$HOME"; pwd; '
                                 'touch "$HOME/probe" && echo home-writable')
    assert out.split() == ["1000", "100", "kernel", "/opt/backend/bin/python", "/home/kernel", "/home/kernel",
                           "home-writable"]


def test_launcher_and_our_package_are_installed(client: Any, podman_api: PodmanApi) -> None:
    status, out = run(client, podman_api, ["/opt/backend/bin/python", "-m", "backend_kernel_provisioner.launcher",
                                           "--help"])
    assert status == 0, out
    assert "usage: backend-kernel-launcher" in out and "--response-address" in out
    specs = sh(client, podman_api, "ls /opt/backend/share/jupyter/kernels").split()
    assert {"backend-python", "backend-c", "backend-shell"} <= set(specs)


HELLO_C = '#include <stdio.h>\nint main(void) { printf("hello from C %d\\n", 6 * 7); return 0; }\n'


def test_gcc_compiles_and_runs_c(client: Any, podman_api: PodmanApi) -> None:
    out = sh(client, podman_api, 'cd /tmp && printf "%s" "$SOURCE" > hello.c && gcc -O1 -o hello hello.c && ./hello',
             environment={"SOURCE": HELLO_C})
    assert out.strip() == "hello from C 42"


def test_tini_is_pid_1_and_the_stock_bootstrap_is_the_default_command(client: Any, podman_api: PodmanApi) -> None:
    config = client.images.get(podman_api.image).attrs["Config"]
    assert config["Entrypoint"] == ["/usr/bin/tini", "-g", "--"]
    assert config["Cmd"] == ["/usr/local/bin/bootstrap-kernel.sh"]
    assert sh(client, podman_api, "tr '\\0' ' ' < /proc/1/cmdline").startswith("/usr/bin/tini -g -- sh -c")
    assert "ok" in sh(client, podman_api, "test -f /usr/local/bin/kernel-launchers/python/scripts/launch_ipykernel.py"
                                          " && echo ok")
    # The default command really runs the bootstrap (through tini): without the launch variables it refuses.
    status, out = run(client, podman_api, None, environment={"KERNEL_LANGUAGE": "python"})
    assert status == 1, out
    assert "KERNEL_ID, RESPONSE_ADDRESS, and PUBLIC_KEY are required" in out


CALLER = """
import os, socket
conn = socket.create_connection((os.environ["HOST"], int(os.environ["PORT"])), timeout=30)
conn.sendall(b"hello from the container")
print(conn.recv(100).decode())
"""


def test_container_reaches_the_hosts_public_address(client: Any, podman_api: PodmanApi) -> None:
    from jupyter_client.localinterfaces import public_ips

    address = public_ips()[0]
    received: list[bytes] = []
    with socket.create_server((address, 0)) as server:
        server.settimeout(WAIT)
        port = server.getsockname()[1]

        def serve() -> None:
            with contextlib.suppress(OSError):
                conn, _ = server.accept()
                with conn:
                    received.append(conn.recv(100))
                    conn.sendall(b"hello from the host")

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        status, out = run(client, podman_api, ["python", "-c", CALLER], environment={"HOST": address, "PORT": str(port)})
        assert status == 0, out
        thread.join(WAIT)
    assert received == [b"hello from the container"]
    assert out.strip() == "hello from the host"


LISTENER = """
import socket
server = socket.create_server(("0.0.0.0", 8765))
print("listening", flush=True)
conn, peer = server.accept()
conn.sendall(b"hello from the container to " + peer[0].encode())
conn.close()
"""


def test_host_reaches_the_container_on_the_default_network(client: Any, podman_api: PodmanApi) -> None:
    """Also pins the default network's name in the attributes: what ``GP_DOCKER_NETWORK`` must say."""
    with started(client, podman_api, ["python", "-c", LISTENER]) as container:
        for _ in range(WAIT * 10):
            if b"listening" in container.logs():
                break
            container.reload()
            assert container.status in ("created", "running"), container.logs()
            time.sleep(0.1)
        container.reload()
        networks = container.attrs["NetworkSettings"]["Networks"]
        assert list(networks) == [podman_api.network]
        ip = networks[podman_api.network]["IPAddress"]
        with socket.create_connection((ip, 8765), timeout=30) as conn:
            greeting = conn.makefile("rb").read()
    assert greeting.startswith(b"hello from the container to ")


def test_network_bridge_is_accepted_but_reported_as_podman(client: Any, podman_api: PodmanApi) -> None:
    """gateway_provisioners creates with ``network=GP_DOCKER_NETWORK`` and reads the IP under the same name."""
    for requested in ("bridge", podman_api.network):
        with started(client, podman_api, ["sleep", "30"], network=requested) as container:
            container.reload()
            assert list(container.attrs["NetworkSettings"]["Networks"]) == [podman_api.network], requested
