"""A Docker-compatible API on this machine for container tests: Podman's, on a private socket (issue 17).

The session fixture :func:`podman_api` builds (or finds cached) the kernel image, starts ``podman system
service`` on a Unix socket in a temporary folder with our containers.conf (runc, no default ulimits; see
:mod:`backend_kernel_provisioner.install.image`) and yields what a test or a provisioner needs:
``DOCKER_HOST``, the image, the environment and a way to list the containers a test left.

Nothing touches ``/etc/containers`` or the system's ``/run/podman/podman.sock``. At the end every container
carrying one of our labels is removed, and the session fails at teardown if there was any: a test that leaves
a container behind is a bug, and it shows. Synchronous on purpose: it runs in a session fixture, before any
test's event loop exists.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from backend_kernel_provisioner.install.image import (
    PROGRAMS,
    ImageBuildError,
    ensure_kernel_image,
    find_program,
    podman_env,
)

#: The labels of containers the tests and provisioners start: ours, and the stock gateway_provisioners ones
#: (launch_docker.py labels its containers app=gateway-provisioners) that the benchmarks start.
OUR_LABELS = ("app=backend-kernel", "app=gateway-provisioners")
#: The name podman 4's Docker API gives the default network in a container's
#: ``NetworkSettings.Networks``: "podman", although ``networks.list()`` calls it "bridge" and a create
#: with ``network="bridge"`` is accepted. gateway_provisioners looks the IP up under ``GP_DOCKER_NETWORK``,
#: so that variable must be "podman" here (Docker itself would say "bridge").
DEFAULT_NETWORK = "podman"
#: How long the service may take to answer a ping, and to stop (safety nets, not measures).
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0

log = logging.getLogger(__name__)


@dataclass
class PodmanApi:
    """A running ``podman system service`` and the kernel image, as a test sees them."""

    #: ``unix:///.../podman.sock``, for ``DOCKER_HOST`` or ``docker.DockerClient(base_url=...)``.
    docker_host: str
    #: The kernel image's reference (``localhost/backend-kernel:<hash12>``).
    image: str
    #: ``CONTAINERS_CONF`` and ``DOCKER_HOST``: what a process talking to this API (or running podman) needs.
    env: dict[str, str]
    #: The default network's name in container attributes (the value for ``GP_DOCKER_NETWORK``).
    network: str = DEFAULT_NETWORK
    service_pid: int = 0
    #: The folder of the socket and the service's log.
    directory: str = ""
    #: Containers with our labels that existed before the session: another session's (the storage is the
    #: machine's), so teardown leaves them alone.
    foreign: frozenset[str] = frozenset()
    #: Containers found (and removed) at teardown: ``"<id> <name> <state> <labels>"`` lines.
    left_behind: list[str] = field(default_factory=list)

    @property
    def log_file(self) -> str:
        return os.path.join(self.directory, "podman-service.log")

    def containers(self, label: str = "app=backend-kernel") -> list[str]:
        """Ids of containers in any state (``podman ps -a``) carrying ``label`` (``key=value`` or ``key``)."""
        return _podman("ps", "-a", "--filter", f"label={label}", "--format", "{{.ID}}").split()

    def describe(self, container_id: str) -> str:
        """One line for a report: id, name, state and labels."""
        return _podman("ps", "-a", "--filter", f"id={container_id}", "--format",
                       "{{.ID}} {{.Names}} {{.State}} {{.Labels}}").strip() or container_id


def _podman(*args: str) -> str:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env={**os.environ, **podman_env()}, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def missing_podman_programs() -> list[str]:
    """The programs this fixture needs that the machine lacks."""
    return [name for name in PROGRAMS if find_program(name) is None]


def _ping(docker_host: str) -> bool:
    import docker

    client = docker.DockerClient(base_url=docker_host, timeout=5)
    try:
        return bool(client.ping())
    except Exception:
        return False
    finally:
        client.close()


def start_service(directory: str) -> tuple[subprocess.Popen, str]:
    """Start ``podman system service`` on ``directory/podman.sock``; return once it answers a ping."""
    socket_path = os.path.join(directory, "podman.sock")
    docker_host = f"unix://{socket_path}"
    with open(os.path.join(directory, "podman-service.log"), "wb") as out:
        proc = subprocess.Popen(["podman", "system", "service", "--time=0", docker_host],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
                                env={**os.environ, **podman_env()})
    deadline = time.monotonic() + START_TIMEOUT
    while not (os.path.exists(socket_path) and _ping(docker_host)):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_service(proc)
            text = Path(directory, "podman-service.log").read_text(errors="replace")
            raise RuntimeError(f"podman system service did not answer on {docker_host} (exit {proc.returncode}):\n"
                               f"{text}")
        time.sleep(0.1)
    return proc, docker_host


def stop_service(proc: subprocess.Popen) -> None:
    """SIGTERM the service (its own session), SIGKILL if it lingers; reap it and check that it is gone."""
    for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, STOP_TIMEOUT)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    proc.wait(timeout=STOP_TIMEOUT)
    if os.path.exists(f"/proc/{proc.pid}"):
        raise RuntimeError(f"podman system service (pid {proc.pid}) is still there after stopping it")


def labelled_containers(api: PodmanApi) -> set[str]:
    """Ids of every container carrying one of :data:`OUR_LABELS`."""
    return {container_id for label in OUR_LABELS for container_id in api.containers(label)}


def remove_our_containers(api: PodmanApi) -> list[str]:
    """Remove (force) every container with one of :data:`OUR_LABELS` but the foreign ones; return what was found.

    Podman's storage is the machine's: a test session running at the same time (another checkout, a developer's)
    sees our containers and we see its. Containers that were there before this session are left to their owner;
    one that another session started during ours would still be taken for ours (a limit of a shared engine).
    """
    found: list[str] = []
    for label in OUR_LABELS:
        for container_id in set(api.containers(label)) - api.foreign:
            found.append(api.describe(container_id))
            for _attempt in range(20):  # the exit race that remote.docker.force_remove retries too
                removed = subprocess.run(["podman", "rm", "--force", "--time", "2", container_id],
                                         capture_output=True, stdin=subprocess.DEVNULL,
                                         env={**os.environ, **podman_env()}, timeout=120)
                if removed.returncode == 0 or container_id not in api.containers(label):
                    break
                time.sleep(0.2)
    still = sorted(labelled_containers(api) - api.foreign)
    if still:
        raise RuntimeError(f"podman could not remove containers: {still}")
    return found


@pytest.fixture(scope="session")
def podman_api() -> Iterator[PodmanApi]:
    """Podman's Docker API on a private socket and the kernel image, for the whole session."""
    missing = missing_podman_programs()
    if missing:
        pytest.skip(f"containers: missing {', '.join(missing)} (Debian packages; scripts/install-toolchains.sh)")
    try:
        image = ensure_kernel_image(log=log.info)
    except ImageBuildError as err:
        pytest.skip(f"the kernel image cannot be built: {err}")
    directory = tempfile.mkdtemp(prefix="bkp-podman-")
    try:
        proc, docker_host = start_service(directory)
        api = PodmanApi(docker_host=docker_host, image=image, env={**podman_env(), "DOCKER_HOST": docker_host},
                        service_pid=proc.pid, directory=directory)
        api.foreign = frozenset(labelled_containers(api))
        try:
            yield api
        finally:
            try:
                api.left_behind = remove_our_containers(api)
            finally:
                stop_service(proc)
        if api.left_behind:
            pytest.fail("containers left behind (now removed):\n" + "\n".join(api.left_behind), pytrace=False)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
