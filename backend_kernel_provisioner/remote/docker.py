"""``backend-docker-provisioner``: our kernels in Docker or Podman containers.

Built on gateway_provisioners' ``DockerProvisioner``. One container per kernel,
from our kernel image (:mod:`backend_kernel_provisioner.install.image`): the launcher is its command,
the kernel its child, services and model servers its other children. The
container is made through the Docker API (``DOCKER_HOST``: Docker, or Podman's
``podman system service``) from this process, in a worker thread.

What the engine reports is read before a container is removed: Docker's
``State.OOMKilled``, the exit code and the last lines of output. Podman's
Docker API leaves ``OOMKilled`` false even when the memory limit killed the
container (its cgroup is gone when it looks), so an exit by SIGKILL (137)
under a memory limit is reported as ``OOMKilled`` too, and says so.
"""

from __future__ import annotations

import os
import re
import time
from datetime import datetime
from typing import Any

from docker.client import DockerClient
from docker.errors import APIError, NotFound
from docker.types import Mount
from gateway_provisioners.container import ContainerProvisionerBase
from gateway_provisioners.docker_swarm import DockerProvisioner
from traitlets import Float, Unicode, default

from backend_kernel_provisioner.remote.container import APP_LABEL, BackendContainerMixin, ContainerState, parse_mount
from backend_kernel_provisioner.remote.provisioner import RemoteKernelError

#: The exit code of a container whose main process was SIGKILLed.
KILLED = 128 + 9
#: Seconds a forced removal is tried again while Podman says the container is still exiting.
REMOVE_PATIENCE = 2.0
#: Log lines of a container that ended during its start, quoted in the error.
LOG_TAIL = 12


class BackendDockerProvisioner(BackendContainerMixin, DockerProvisioner):
    """A kernel in its own container; services and model servers next to it in the same container."""

    docker_network = Unicode(
        config=True,
        help="Network of the kernel containers; the server must reach their addresses and they the server's "
        "(env: GP_DOCKER_NETWORK; default 'bridge', which Podman's Docker API maps to its own default network).",
    )

    docker_host = Unicode(
        config=True,
        help="The Docker API to use: unix:///var/run/docker.sock, Podman's unix:///run/podman/podman.sock, "
        "tcp://HOST:2375 (env: DOCKER_HOST; default: the Docker client's own default).",
    )

    def __init__(self, **kwargs: Any) -> None:
        # Not DockerProvisioner.__init__: it connects to the engine at once, on the server's event loop, and a
        # missing engine would fail the provisioner's creation with a bare connection error. Ours connects at
        # the first launch, in a worker thread, and says which API it tried.
        ContainerProvisionerBase.__init__(self, **kwargs)
        self._client: DockerClient | None = None
        self._container_id: str | None = None
        self._init_container_state()

    @property
    def client(self) -> DockerClient:
        if self._client is None:
            try:
                self._client = (DockerClient(base_url=self.docker_host, version="auto") if self.docker_host
                                else DockerClient.from_env())
            except Exception as exc:
                raise RemoteKernelError(
                    f"cannot reach the container engine's Docker API at {self.docker_host or 'DOCKER_HOST'}: "
                    f"{exc} (start Docker, or Podman's 'podman system service', and set docker_host or "
                    f"DOCKER_HOST)") from None
        return self._client

    @default("docker_host")
    def _default_docker_host(self) -> str:
        return os.environ.get("DOCKER_HOST", "")

    @default("docker_network")
    def _default_docker_network(self) -> str:
        return os.environ.get("GP_DOCKER_NETWORK", "bridge")

    stale_container_age = Float(
        60.0,
        config=True,
        help="Kernel containers (ours, label app=backend-kernel) that exited this many seconds ago are removed "
        "when a kernel starts: what a server that died left (its launchers stop at the end of their lease, but "
        "a container stays to keep its reason readable). Negative: never.",
    )

    def _sweep_stale_containers(self) -> None:
        """Remove our kernel containers that exited long ago: no provisioner reads their reason any more."""
        if self.stale_container_age < 0:
            return
        now = time.time()
        for container in self.client.containers.list(all=True, filters={"label": f"app={APP_LABEL}",
                                                                         "status": "exited"}):
            finished = _timestamp(container.attrs.get("State", {}).get("FinishedAt", ""))
            if finished is not None and now - finished >= self.stale_container_age:
                self.log.info("removing kernel container %s (%s): exited %.0f s ago, no server keeps it",
                              container.name, container.labels.get("kernel_id", "?"), now - finished)
                try:
                    force_remove(container)
                except APIError as exc:
                    self.log.debug("stale container %s: %s", container.name, exc)

    def _create_container(self, cmd: list[str], env: dict[str, str]) -> None:
        self._sweep_stale_containers()
        uid, gid = self.container_user(env)
        name = f"{env.get('KERNEL_USERNAME', 'kernel')}-{self.kernel_id}".lower()
        options: dict[str, Any] = {
            "command": cmd, "name": name, "hostname": name[:63], "labels": self.container_labels(),
            "environment": self.container_environment(env), "user": f"{uid}:{gid}", "network": self.docker_network,
            "detach": True, "auto_remove": False, "mounts": [_mount(spec) for spec in self.mounts],
        }
        if self.container_working_dir:
            options["working_dir"] = self.container_working_dir
        if self.memory_limit:
            options["mem_limit"] = self.memory_limit
            options["memswap_limit"] = self.memory_limit  # no swap beyond the limit: the limit means the limit
        if self.cpu_limit:
            options["nano_cpus"] = int(self.cpu_limit * 1e9)
        if self.pids_limit:
            options["pids_limit"] = self.pids_limit
        self.container_name = name
        container = self.client.containers.run(self.image_name, **options)
        self._container_id = container.id

    def _container(self) -> Any:
        return self.client.containers.get(self._container_id or self.container_name)

    def _container_state(self) -> ContainerState:
        try:
            container = self._container()
        except NotFound:
            return ContainerState("gone", reason="removed")
        except APIError as exc:
            return ContainerState("pending", message=f"engine: {exc}")
        state = container.attrs.get("State", {})
        status = str(state.get("Status", "")).lower()
        if status in ("created", "configured", "initialized"):
            return ContainerState("pending", reason=status)
        if status == "running":
            return ContainerState("running", ip=self._address(container.attrs))
        exit_code = state.get("ExitCode")
        reason = "OOMKilled" if self._oom_killed(state) else ("Completed" if exit_code == 0 else "Error")
        message = str(state.get("Error") or "")
        if reason == "OOMKilled" and not state.get("OOMKilled"):
            message = f"killed (SIGKILL) under its memory limit of {self.memory_limit}"
        if reason == "Error":
            tail = container.logs(tail=LOG_TAIL).decode(errors="replace").strip()
            message = "; ".join(filter(None, [message, f"last output: {tail}" if tail else ""]))
        return ContainerState("terminated", reason=reason, exit_code=exit_code, message=message, details=state)

    def _oom_killed(self, state: dict[str, Any]) -> bool:
        if state.get("OOMKilled"):
            return True
        # Podman does not set OOMKilled (the cgroup is gone when it looks): a SIGKILL under a memory limit.
        return bool(self.memory_limit) and state.get("ExitCode") == KILLED

    def _address(self, attrs: dict[str, Any]) -> str | None:
        settings = attrs.get("NetworkSettings") or {}
        networks = settings.get("Networks") or {}
        chosen: dict[str, Any] = networks.get(self.docker_network) or next(iter(networks.values()), {})
        return (chosen or {}).get("IPAddress") or settings.get("IPAddress") or None

    def _stop_container(self, timeout: float) -> None:
        try:
            self._container().stop(timeout=int(max(timeout, 0)))
        except NotFound:
            pass

    def _delete_container(self) -> None:
        try:
            force_remove(self._container())
        except NotFound:
            pass
        except APIError as exc:
            self.log.warning("kernel %s: container %s could not be removed: %s",
                             self.kernel_id, self.container_name, exc)
        self._container_id = None


def force_remove(container: Any, patience: float = REMOVE_PATIENCE) -> None:
    """``remove(force=True)`` of a docker-py container (one already gone is fine), tried again for up to
    ``patience`` seconds while Podman refuses it because the container is exiting at that very moment:
    "cannot remove container ... as it could not be stopped: ... container state improper" (HTTP 500);
    a moment later its state is settled and the removal succeeds. Any other refusal is raised at once."""
    deadline = time.monotonic() + patience
    while True:
        try:
            container.remove(force=True)
            return
        except NotFound:
            return
        except APIError as exc:
            if "state improper" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _timestamp(text: str) -> float | None:
    """An engine's RFC 3339 time (nanoseconds, ``Z`` or an offset) as seconds since the epoch."""
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?", text or "")
    if not match or match.group(1).startswith("0001"):
        return None
    zone = match.group(3) or "Z"
    moment = datetime.fromisoformat(match.group(1) + ("+00:00" if zone == "Z" else zone))
    return moment.timestamp() + float(match.group(2) or 0)


def _mount(spec: str) -> Mount:
    """A ``mounts`` entry as a bind mount; a missing source is named (the engine's error does not say which)."""
    source, target, read_only = parse_mount(spec)
    if not os.path.isabs(source) or not os.path.exists(source):
        raise RemoteKernelError(f"mounts: the source folder of {spec!r} does not exist on this host")
    return Mount(target=target, source=source, type="bind", read_only=read_only)
