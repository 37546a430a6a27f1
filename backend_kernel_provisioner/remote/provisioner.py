"""Our behaviour on top of any gateway_provisioners ``RemoteProvisionerBase`` subclass.

gateway_provisioners starts *something* on the kernel's host and waits for its
launch payload; here that something is our launcher
(:mod:`backend_kernel_provisioner.launcher`), and after the payload everything
goes through the launcher's signed channel:

* ``launch_kernel``: the first time, the engine starts the launcher (SSH, a
  container, ...); then ``start-kernel`` with our settings starts the kernel child
  and, once, the services and models. On a restart the launcher is still there:
  only ``start-kernel`` runs again, so services keep running.
* ``poll``/``wait``/``send_signal``/``kill``/``terminate`` act on the kernel child
  only. That makes jupyter_client's ``restart=False`` in ``kill()`` on a restart
  (jupyter_client#1061) harmless: the launcher itself only stops in
  ``cleanup(restart=False)``, which carries the true flag.
* A failed or abandoned start (launch timeout, error, a shutdown issued during
  the start, a cancelled task) stops the launcher; should the server die, the
  launcher's lease ends it there.

Subclasses implement :meth:`_start_launcher` (the engine's way of starting it)
and :meth:`_kill_launcher` (the engine's way of killing it when the channel cannot).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

from tornado.ioloop import IOLoop
from traitlets import Float, Unicode, default

from backend_kernel_provisioner.common.events import EventBus, Subscription
from backend_kernel_provisioner.remote.channel_client import LauncherChannel, LauncherError
from backend_kernel_provisioner.remote.sidecar_proxy import RemoteModels, RemoteServiceManager
from backend_kernel_provisioner.server.traits import BackendProvisionerTraits

LAUNCHER_MODULE = "backend_kernel_provisioner.launcher"
#: Seconds between the provisioner's heartbeats on the channel.
HEARTBEAT = 1.0
#: Exit code ``poll()`` reports when the launcher itself is gone.
LAUNCHER_LOST = -1


class RemoteKernelError(RuntimeError):
    """A remote kernel could not be started; the message says where and why."""


class BackendRemoteProvisionerMixin(BackendProvisionerTraits):
    """Settings, services, models and events of a kernel whose launcher runs on another host."""

    launcher_python = Unicode(
        config=True,
        help="Python on the kernel's host that has backend-kernel-provisioner installed and runs the launcher "
        "(env: BACKEND_LAUNCHER_PYTHON; default: this server's Python, for hosts with the same installation).",
    )
    launcher_ip = Unicode(
        "0.0.0.0",
        config=True,
        help="Address on the kernel's host where the kernel, the comm port and the launcher channel listen.",
    )
    lease_timeout = Float(
        10.0,
        config=True,
        help="Seconds the launcher keeps the kernel and its services without hearing from this provisioner "
        "(heartbeats every second); after that it stops them all, so a dead server leaves no orphan.",
    )
    launcher_stop_timeout = Float(
        20.0, config=True, help="Seconds to wait for the launcher to stop the kernel and services at shutdown."
    )

    if TYPE_CHECKING:  # provided by gateway_provisioners' RemoteProvisionerBase, which this mixes into
        kernel_id: str
        kernel_spec: Any
        connection_info: dict[str, Any]
        assigned_host: str
        assigned_ip: str | None
        launch_timeout: int
        response_address: str
        response_manager: Any
        public_key: str
        port_range: str
        log: logging.Logger

    @default("launcher_python")
    def _default_launcher_python(self) -> str:
        return os.environ.get("BACKEND_LAUNCHER_PYTHON", sys.executable)

    def _init_remote_state(self) -> None:
        self.events = EventBus()
        self.channel: LauncherChannel | None = None
        self.kernel_pid: int | None = None
        self.kernel_exit: int | None = None
        self.bootstrap_exit_code: int | None = None
        self._call_env: dict[str, str] = {}
        self._abandoned = False
        self._launching = False
        self.services = RemoteServiceManager(lambda: self.channel, self.events)
        self.models = RemoteModels(lambda: self.channel, self.events)

    # -- hooks -------------------------------------------------------------------------------

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        self.apply_call_options(kwargs)  # ours and gateway_provisioners' traits
        self._abandoned = False
        self._launching = True  # until launch_kernel ends: a shutdown meanwhile abandons this start
        call_env = kwargs.get("env") or {}
        self._call_env = {k: v for k, v in call_env.items() if os.environ.get(k) != v}
        _response_manager_on_this_loop(self.response_manager)
        try:
            kwargs = await super().pre_launch(**kwargs)  # type: ignore[misc]
        except BaseException:
            self._launching = False
            raise
        kwargs["cmd"] = self._launcher_command(kwargs["cmd"])
        return kwargs

    def _launcher_command(self, cmd: list[str]) -> list[str]:
        """The kernelspec's own argv, behind the launcher (unless the kernelspec already runs it)."""
        if any(LAUNCHER_MODULE in arg or "backend-kernel-launcher" in arg for arg in cmd):
            return cmd
        return [
            self.launcher_python, "-m", LAUNCHER_MODULE,
            "--kernel-id", str(self.kernel_id), "--response-address", self.response_address,
            "--public-key", self.public_key, "--port-range", self.port_range, "--ip", self.launcher_ip,
            "--lease-timeout", f"{self.lease_timeout:g}", "--", *cmd,
        ]

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> dict[str, Any]:
        """First launch: start the launcher, then the kernel; a restart: the kernel child only."""
        if self.channel is not None and self.channel.alive:
            try:
                await self._start_kernel_child(kwargs)
            finally:
                self._launching = False
            return self.connection_info
        self._launching = True
        try:
            self._check_abandoned()
            await self._close_channel()
            await self._start_launcher(cmd, **kwargs)
            self._check_abandoned()
            await self._open_channel()
            await self._start_kernel_child(kwargs)
            self._check_abandoned()
        except BaseException as exc:
            await self._abort_launch(exc)
            raise
        finally:
            self._launching = False
        return self.connection_info

    async def _start_launcher(self, cmd: list[str], **kwargs: Any) -> None:
        raise NotImplementedError

    async def _kill_launcher(self) -> None:
        raise NotImplementedError

    async def _open_channel(self) -> None:
        """Connect to the new launcher and subscribe to its events (its current state first)."""
        port = self.connection_info.get("backend_port")
        if not port:
            raise RemoteKernelError(
                f"the launch payload for kernel {self.kernel_id} has no backend_port: the program started on "
                f"{self.assigned_host} is not backend-kernel-launcher")
        self.channel = LauncherChannel(
            str(self.assigned_ip), int(port), _key_bytes(self.connection_info["key"]), log=self.log,
            on_event=self._on_launcher_event, heartbeat=HEARTBEAT, lost_after=self.lease_timeout,
        )
        self.channel.connect()
        for event in await self.channel.call("subscribe", timeout=self.launch_timeout) or []:
            self.events.publish(event)

    async def _start_kernel_child(self, kwargs: dict[str, Any]) -> None:
        assert self.channel is not None
        timeout = self.launch_timeout + self.bootstrap_timeout + self.service_start_timeout
        try:
            result = await self.channel.call(
                "start-kernel", timeout=timeout, settings=self.explicit_settings(),
                overrides={**self.extra_env, **self._call_env}, cwd=self._kernel_cwd(kwargs),
            )
        except LauncherError as exc:
            raise RemoteKernelError(f"kernel {self.kernel_id} did not start on {self.assigned_host}: {exc}") from None
        self.kernel_pid, self.kernel_exit = result["pid"], None
        self.bootstrap_exit_code = result.get("bootstrap_exit_code")

    def _kernel_cwd(self, kwargs: dict[str, Any]) -> str | None:
        """The kernel's working folder on its host: the caller's (a host with the same file system)."""
        return kwargs.get("cwd")

    def _on_launcher_event(self, event: dict[str, Any]) -> None:
        if event.get("event") == "kernel-exit":
            if event.get("pid") in (None, self.kernel_pid):
                self.kernel_exit = int(event.get("exit_code", 0))
            return
        self.events.publish(event)

    def _check_abandoned(self) -> None:
        if self._abandoned:
            raise RemoteKernelError(f"kernel {self.kernel_id}: shut down while it was starting")

    async def _abort_launch(self, exc: BaseException) -> None:
        """A start that failed or was given up: nothing may keep running on the kernel's host."""
        self.log.warning("remote kernel %s: start abandoned (%s): stopping its launcher", self.kernel_id,
                         f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        await asyncio.shield(self._stop_launcher())

    async def poll(self) -> int | None:
        if self.channel is None:
            return None if self._launching else 0
        if not self.channel.alive:
            return LAUNCHER_LOST
        return self.kernel_exit

    async def wait(self) -> int | None:
        """Until the kernel child has exited (never blocks the event loop)."""
        while (code := await self.poll()) is None:
            await asyncio.sleep(0.05)
        return code

    async def send_signal(self, signum: int) -> None:
        if self.channel is not None and self.channel.alive:
            await self.channel.call("signal", timeout=10, signum=int(signum))
        elif signum:
            await super().send_signal(signum)  # type: ignore[misc]

    async def kill(self, restart: bool = False) -> None:
        """The kernel child only (a restart keeps the launcher; ``cleanup`` ends it on a real shutdown)."""
        if self._launching:
            self._abandoned = True
        if self.channel is not None and self.channel.alive:
            try:
                await self.channel.call("kill-kernel", timeout=10)
            except LauncherError as exc:
                self.log.warning("kernel %s: kill: %s", self.kernel_id, exc)
            self.kernel_exit = self.kernel_exit if self.kernel_exit is not None else -signal.SIGKILL

    async def terminate(self, restart: bool = False) -> None:
        if self._launching:
            self._abandoned = True
        if self.channel is not None and self.channel.alive:
            await self.channel.call("signal", timeout=10, signum=int(signal.SIGTERM))

    async def shutdown_requested(self, restart: bool = False) -> None:
        """Carries the true restart flag (``kill()`` gets ``False`` even on a restart, jupyter_client#1061);
        nothing here depends on it but an abandoned start: ``kill()`` never stops the launcher anyway."""
        if self._launching and not restart:
            self._abandoned = True

    async def cleanup(self, restart: bool = False) -> None:
        if self._launching:  # a shutdown during the start: the start stops what it began (_abort_launch)
            self._abandoned = True
            return
        if restart and self.channel is not None and self.channel.alive:
            return  # the launcher, its services and the kernel's host stay
        await self._stop_launcher()  # on a restart: the launcher was lost, a new one starts next
        if not restart:  # the kernel is gone for good: end every subscription to its events
            self.events.close()
            self.events = EventBus()
            self.services.bus = self.models.bus = self.events
        await super().cleanup(restart=restart)  # type: ignore[misc]

    async def _stop_launcher(self) -> None:
        """Ask the launcher to stop everything and exit; kill it the engine's way if it cannot answer."""
        stopped = False
        if self.channel is not None and self.channel.alive:
            try:
                stopped = await self.channel.call("shutdown", timeout=self.launcher_stop_timeout)
            except LauncherError as exc:
                self.log.warning("kernel %s: launcher shutdown: %s", self.kernel_id, exc)
        await self._close_channel()
        if not stopped:
            await self._kill_launcher()
        await self._await_launcher_exit()

    async def _await_launcher_exit(self) -> None:
        """Subclasses may wait for the launcher process itself to be gone."""

    async def _close_channel(self) -> None:
        channel, self.channel = self.channel, None
        if channel is not None:
            await channel.close()

    # -- the same Python API as the local provisioner -----------------------------------------

    async def start_model_service(self, model_info: dict[str, Any]) -> dict[str, Any]:
        return await self.models.start_model(model_info)

    def model_health(self) -> dict[str, bool | None]:
        return self.models.health()

    def subscribe_events(self) -> Subscription:
        """Service and model events from the kernel's host: the current state of each first, then every change."""
        return self.events.subscribe()

    def subscribe_model_events(self) -> Subscription:
        return self.models.subscribe()

    async def report_vanished(self) -> list[dict]:
        """The process monitor on the kernel's host: processes remembered but gone now."""
        if self.channel is None:
            return []
        return await self.channel.call("vanished")

    def _raise_authorization_error(self, differentiator_clause: str) -> None:
        """gateway_provisioners' refusal, with what to do about it."""
        user = getattr(self, "kernel_username", None)
        name = getattr(self.kernel_spec, "display_name", "") or "this kernel"
        raise PermissionError(
            f"user {user!r} is {differentiator_clause} to start {name!r} on a remote host: gateway_provisioners "
            f"refuses the users in unauthorized_users (default: root) and, when authorized_users is set, everyone "
            f"not in it. Run the server as another user, set KERNEL_USERNAME for the kernel, or configure "
            f"c.{type(self).__name__}.unauthorized_users (env GP_UNAUTHORIZED_USERS)."
        )


def _response_manager_on_this_loop(manager: Any) -> None:
    """gateway_provisioners' ResponseManager is a process-wide singleton whose poller is bound to the event
    loop that was current when it was made. A Jupyter server has one loop; a program that runs kernels in
    successive loops (``asyncio.run`` twice, a test suite) would never see a payload again: re-arm the
    poller on this loop."""
    processor = getattr(manager, "_connection_processor", None)
    if processor is not None and getattr(processor, "io_loop", None) is not IOLoop.current():
        processor.stop()  # the socket (and so the response address) stays
        manager._connection_processor = None
        manager._start_response_manager()


def _key_bytes(key: str | bytes) -> bytes:
    return key if isinstance(key, bytes) else key.encode()
