"""Our kernels in containers: the launcher is the container's command, one container per kernel.

gateway_provisioners' container provisioners start a container whose image runs
its own launcher, then poll the container's state until the launch payload
arrives. Ours do the same with our launcher (so services, model servers and
their health checks live in the kernel's container), and add what the stock
ones lack:

* the container is created from here (no launch script in a subprocess), with
  the kernel's environment only — never the server's ``PATH`` or secrets —
  labels naming the kernel, a non-root user, and limits from traits;
* a container that dies or never starts fails the start at once with its
  reason (``OOMKilled``, an exit code and its last log lines, a pod's
  ``Unschedulable``), instead of after the launch timeout;
* the reason a container ended is read **before** it is removed, and reported
  to the log and to the kernel's event stream (``kernel-terminated``; ``oom``
  as the runner's event when memory ran out);
* a restart keeps the container and restarts only the kernel child (the mixin's
  rule), unless the container itself is gone.

An engine subclass implements four blocking calls (run in a worker thread):
:meth:`_create_container`, :meth:`_container_state`, :meth:`_delete_container`
and optionally :meth:`_stop_container`.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from traitlets import Float, List, Unicode, default

from backend_kernel_provisioner.remote.provisioner import (
    LAUNCHER_LOST,
    BackendRemoteProvisionerMixin,
    RemoteKernelError,
)

#: Python of our kernel image (``backend_kernel_provisioner.install.image``).
IMAGE_PYTHON = "/opt/backend/bin/python"
#: Default image reference: the one the image builder tags last.
DEFAULT_IMAGE = "localhost/backend-kernel:latest"
#: Labels every kernel container carries; ``app`` tells ours from any other container.
APP_LABEL = "backend-kernel"
#: Seconds between looks at a starting container.
STATE_INTERVAL = 0.1
#: Seconds between looks at a running container's state from ``poll()``.
POLL_LOOK = 1.0
#: Environment variables of the server a kernel container receives (gateway_provisioners' conventions).
FORWARDED_PREFIXES = ("KERNEL_",)
#: Variables never forwarded: the image has its own, and the server's would break it.
NEVER_FORWARDED = frozenset({"PATH", "HOME", "PYTHONPATH", "VIRTUAL_ENV", "LD_LIBRARY_PATH", "KERNEL_WORKING_DIR"})
_PYTHON_NAME = re.compile(r"python(3(\.\d+)?)?$")


@dataclass
class ContainerState:
    """What the engine says about a kernel's container, in the words the provisioner needs."""

    phase: str  # "pending", "running", "terminated" or "gone"
    ip: str | None = None
    node_ip: str | None = None
    reason: str = ""  # OOMKilled, Evicted, Unschedulable, ImagePullBackOff, Error, Completed...
    message: str = ""
    exit_code: int | None = None
    fail_fast: bool = False  # pending, but it will never start by itself (unschedulable, image pull error)
    details: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        parts = [self.reason or self.phase]
        if self.exit_code is not None:
            parts.append(f"exit code {self.exit_code}")
        if self.message:
            parts.append(self.message.strip())
        return ", ".join(parts)


#: Settings the container engine enforces for the whole container (the launcher inside is not given them).
CONTAINER_ENFORCED = frozenset({"memory_limit", "cpu_limit", "pids_limit", "cgroup_parent", "use_cgroups"})


class BackendContainerMixin(BackendRemoteProvisionerMixin):
    """What every container engine of ours shares: image, user, limits, environment and the reason of a death."""

    mounts = List(
        Unicode(),
        config=True,
        help="Host folders in the kernel's container, each 'SOURCE:TARGET' or 'SOURCE:TARGET:ro' "
        "(service definitions, a shared work folder).",
    )
    container_working_dir = Unicode(
        "",
        config=True,
        help="The kernel's working folder inside the container (default: the image's, the kernel user's home); "
        "the server's own working folder does not exist there and is not used.",
    )
    container_stop_timeout = Float(
        10.0, config=True, help="Seconds a container may take to exit at shutdown before it is removed by force."
    )

    if TYPE_CHECKING:  # provided by gateway_provisioners' ContainerProvisionerBase, which this mixes into
        image_name: str
        container_name: str | None
        assigned_node_ip: str | None

        def log_kernel_launch(self, cmd: list[str]) -> None: ...
        async def receive_connection_info(self) -> bool: ...

    def _init_container_state(self) -> None:
        self._init_remote_state()
        self.termination: ContainerState | None = None
        self._last_poll_look = 0.0

    @default("image_name")
    def _default_image_name(self) -> str:
        return os.environ.get("BACKEND_KERNEL_IMAGE") or os.environ.get("GP_IMAGE_NAME") or DEFAULT_IMAGE

    @default("launcher_python")
    def _default_launcher_python(self) -> str:
        return os.environ.get("BACKEND_CONTAINER_PYTHON", IMAGE_PYTHON)

    @default("service_bind_address")
    def _default_service_bind_address(self) -> str:
        return "0.0.0.0"  # the container's own address: reachable from the server, not from other hosts

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        """gateway_provisioners forgets the container's address before every launch; a restart keeps the
        container (only the kernel child restarts), so its address is kept too."""
        live = self.channel is not None and self.channel.alive
        kept = (self.assigned_host, self.assigned_ip, self.assigned_node_ip)
        kwargs = await super().pre_launch(**kwargs)
        if live:
            self.assigned_host, self.assigned_ip, self.assigned_node_ip = kept
        return kwargs

    # -- what the container is given -------------------------------------------------------------

    def explicit_settings(self) -> dict[str, Any]:
        """The services of a container listen on its address (the default here), not only on its loopback.
        The limits are the engine's (the container's own): the launcher inside makes no cgroups of its own."""
        settings = {"service_bind_address": self.service_bind_address, **super().explicit_settings()}
        return {k: v for k, v in settings.items() if k not in CONTAINER_ENFORCED}

    def _launcher_command(self, cmd: list[str]) -> list[str]:
        """The server's Python in a kernelspec's argv means the image's Python in the container."""
        kernel_argv = list(cmd)
        if kernel_argv and (kernel_argv[0] == sys.executable or _PYTHON_NAME.search(kernel_argv[0])):
            kernel_argv[0] = self.launcher_python
        return super()._launcher_command(kernel_argv)

    def _kernel_cwd(self, kwargs: dict[str, Any]) -> str | None:
        return self.container_working_dir or None

    def container_environment(self, env: dict[str, str]) -> dict[str, str]:
        """The kernel's variables for the container: ``KERNEL_*``, the kernelspec's and the caller's; the server's
        ``PATH``, ``HOME`` and the rest of its environment stay on the server."""
        chosen = {k: v for k, v in env.items() if k.startswith(FORWARDED_PREFIXES)}
        chosen.update(getattr(self.kernel_spec, "env", None) or {})
        chosen.update(self._call_env)
        return {k: str(v) for k, v in chosen.items() if k not in NEVER_FORWARDED}

    def container_labels(self) -> dict[str, str]:
        return {"app": APP_LABEL, "component": "kernel", "kernel_id": str(self.kernel_id)}

    def container_user(self, env: dict[str, str]) -> tuple[str, str]:
        """gateway_provisioners' ``KERNEL_UID``/``KERNEL_GID`` (checked against its prohibited ids)."""
        return env.get("KERNEL_UID", "1000"), env.get("KERNEL_GID", "100")

    # -- starting -----------------------------------------------------------------------------

    async def _start_launcher(self, cmd: list[str], **kwargs: Any) -> None:
        self.termination = None
        env = dict(kwargs.get("env") or {})
        self.log_kernel_launch(cmd)
        try:
            await asyncio.to_thread(self._create_container, cmd, env)
        except RemoteKernelError:
            raise
        except Exception as exc:
            raise RemoteKernelError(
                f"kernel {self.kernel_id}: the container engine refused the kernel's container "
                f"(image {self.image_name}): {type(exc).__name__}: {exc}") from None
        await self.confirm_remote_startup()

    async def confirm_remote_startup(self) -> None:
        """Until the launch payload arrives; a container that ends or cannot start fails the start at once."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.launch_timeout
        last_look = 0.0
        state = ContainerState("pending")
        while True:
            if state.phase == "running" and self.assigned_ip and await self.receive_connection_info():
                return
            self._check_abandoned()
            if loop.time() - last_look >= STATE_INTERVAL or state.phase != "running":
                last_look = loop.time()
                state = await asyncio.to_thread(self._container_state)
                self._note_state(state)
                if state.phase in ("terminated", "gone") or state.fail_fast:
                    self._report_termination(state, starting=True)
                    raise RemoteKernelError(
                        f"kernel {self.kernel_id}: its container {self.container_name} did not start: "
                        f"{state.describe()}")
            if loop.time() > deadline:
                raise RemoteKernelError(
                    f"kernel {self.kernel_id}: no launch payload from container {self.container_name} within "
                    f"{self.launch_timeout} s (state: {state.describe()})")
            if state.phase != "running" or not self.assigned_ip:
                await asyncio.sleep(STATE_INTERVAL)
            else:
                await asyncio.sleep(0.02)

    def _note_state(self, state: ContainerState) -> None:
        if state.phase == "running" and state.ip and not self.assigned_ip:
            self.assigned_ip = state.ip
            self.assigned_host = str(self.container_name)
            self.assigned_node_ip = state.node_ip

    # -- a container that ended ---------------------------------------------------------------

    def _report_termination(self, state: ContainerState, *, starting: bool = False) -> None:
        """The reason a container ended (or never started): to the log and to the kernel's events."""
        self.termination = state
        text = state.describe()
        (self.log.error if starting or state.reason == "OOMKilled" else self.log.warning)(
            "kernel %s: container %s %s: %s", self.kernel_id, self.container_name,
            "did not start" if starting else "ended", text)
        event = {
            "event": "kernel-terminated", "key": "kernel:container", "kernel_id": str(self.kernel_id),
            "container": self.container_name, "reason": state.reason or state.phase, "exit_code": state.exit_code,
            "message": text, "during_start": starting,
        }
        self.events.publish(event)
        if state.reason == "OOMKilled":  # the runner's event for a kernel killed for memory
            self.events.publish({"type": "oom", "event": "oom", "key": "kernel:oom", "kernel_id": str(self.kernel_id),
                                 "container": self.container_name, "memory_limit": self.memory_limit, "message": text})

    async def _kill_launcher(self) -> None:
        """The launcher could not be asked to stop: stop its container (the reason is read first)."""
        if self.container_name is None:
            return
        state = await asyncio.to_thread(self._container_state)
        if state.phase in ("terminated", "gone") and self.termination is None:
            self._report_termination(state)
        await asyncio.to_thread(self._stop_container, self.container_stop_timeout)

    async def _await_launcher_exit(self) -> None:
        """Remove the container at once: the launcher confirmed that the kernel and services stopped, or
        :meth:`_kill_launcher` read the container's reason and stopped it (waiting for the container's own
        exit after a confirmed stop only added the engine's clean-up time to every shutdown)."""
        if self.container_name is None:
            return
        await asyncio.to_thread(self._delete_container)
        self.container_name = None
        self.assigned_ip = None

    async def poll(self) -> int | None:
        """The mixin's answer, and a look at the container every :data:`POLL_LOOK` seconds: a container
        killed (out of memory, evicted) is seen at once rather than when its heartbeats stop."""
        code = await super().poll()
        if code is not None or self.container_name is None or self._launching:
            return code
        loop = asyncio.get_running_loop()
        if loop.time() - self._last_poll_look < POLL_LOOK:
            return None
        self._last_poll_look = loop.time()
        state = await asyncio.to_thread(self._container_state)
        if state.phase in ("terminated", "gone"):
            if self.termination is None:
                self._report_termination(state)
            if self.channel is not None:  # its launcher died with it; the channel notices only after lease_timeout,
                self.channel.lost = True  # and until then a restart would reuse it instead of starting a new one
            return LAUNCHER_LOST
        return None

    # -- the engine's part (blocking; called in a worker thread) --------------------------------

    def _create_container(self, cmd: list[str], env: dict[str, str]) -> None:
        raise NotImplementedError

    def _container_state(self) -> ContainerState:
        raise NotImplementedError

    def _stop_container(self, timeout: float) -> None:
        """Stop (SIGTERM, then SIGKILL after ``timeout``) without removing: the reason stays readable."""
        self._delete_container()

    def _delete_container(self) -> None:
        raise NotImplementedError

    # gateway_provisioners' own lookups by label are not used: ours know the container or pod they made.
    def get_container_status(self, iteration: str | None) -> str:
        return self._container_state().phase

    def terminate_container_resources(self, restart: bool = False) -> bool | None:
        self._delete_container()
        self.container_name = None
        return None  # jupyter_client's contract, as gateway_provisioners keeps it


def parse_mount(spec: str) -> tuple[str, str, bool]:
    """A ``mounts`` entry, ``SOURCE:TARGET`` or ``SOURCE:TARGET:ro``: (source, target, read-only)."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("ro", "rw")) or not all(parts[:2]):
        raise RemoteKernelError(f"mounts: {spec!r} is not SOURCE:TARGET or SOURCE:TARGET:ro")
    return parts[0], parts[1], len(parts) == 3 and parts[2] == "ro"
