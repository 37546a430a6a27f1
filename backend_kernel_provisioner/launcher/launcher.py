"""The launcher: one per kernel, on the kernel's host, for the kernel's whole life (restarts included).

It announces the kernel's connection info to the server (:mod:`.payload`), then
serves two ports: gateway_provisioners' comm port (signals, "shutdown") and our
signed channel, through which the provisioner starts and restarts the kernel
child and reaches the sidecar (services, model servers, health checks) and the
process monitor that run here, next to the kernel.

It never outlives its owner: it stops the kernel and the sidecar and exits on
``shutdown``, on SIGTERM, and when the provisioner has been silent for the lease
(its server died) or never called at all (the start was abandoned).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from dataclasses import dataclass, field
from typing import Any

from backend_kernel_provisioner.common import leftovers
from backend_kernel_provisioner.common.leftovers import make_private_dir, remove_private_dir
from backend_kernel_provisioner.common.resource_limits import PREVIOUS_DEATH_ENV
from backend_kernel_provisioner.launcher.channel_server import ChannelServer
from backend_kernel_provisioner.launcher.comm_port import CommPort
from backend_kernel_provisioner.launcher.connection import select_ports, write_kernel_connection_file
from backend_kernel_provisioner.launcher.kernel_child import KernelChild, kernel_argv
from backend_kernel_provisioner.launcher.payload import send_payload
from backend_kernel_provisioner.server.kernel_limits import KernelLimits
from backend_kernel_provisioner.server.kernel_site import after_launch, kernel_environment, reap_launch, sidecar_for
from backend_kernel_provisioner.server.process_monitor import ProcessMonitor, read_process
from backend_kernel_provisioner.server.traits import BackendProvisionerTraits
from backend_kernel_provisioner.sidecar.models.definitions import load_model_definition
from backend_kernel_provisioner.sidecar.services.reaper import REAPER
from backend_kernel_provisioner.sidecar.sidecar import Sidecar

#: Signals the launcher passes on to the kernel's process group (SIGTERM means "shut everything down").
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGQUIT)
#: Operations of the sidecar offered on the channel: ``services.<method>`` and ``models.<method>``.
SERVICE_OPS = ("start_service", "shutdown_service", "list_services", "status", "get_apps", "read_log")
MODEL_OPS = ("start_model", "health")


@dataclass
class LauncherOptions:
    kernel_id: str
    response_address: str
    public_key: str
    kernel_argv: list[str]
    port_range: tuple[int, int] = (0, 0)
    ip: str = "0.0.0.0"
    lease_timeout: float = 10.0
    stop_grace: float = 5.0
    extra: dict[str, Any] = field(default_factory=dict)


class Launcher:
    """Runs one kernel child and its sidecar; answers the provisioner until told (or left) to stop."""

    def __init__(self, options: LauncherOptions, log: logging.Logger) -> None:
        self.options = options
        self.log = log
        self.folder = make_private_dir("backend-launcher-")
        self.connection_file = os.path.join(self.folder, f"kernel-{options.kernel_id}.json")
        self.child = KernelChild(kernel_argv(options.kernel_argv, self.connection_file), log, self._kernel_exited)
        self.channel: ChannelServer | None = None
        self.comm = CommPort(self._comm_request, log)
        self.settings: BackendProvisionerTraits | None = None
        self.sidecar: Sidecar | None = None
        self.monitor: ProcessMonitor | None = None
        self.marker = ""
        self.kernel_start: float | None = None
        self.exit_reason = ""
        self._done = asyncio.Event()
        self._exit_with_kernel = False
        self._tasks: list[asyncio.Task] = []
        self._start_lock = asyncio.Lock()
        self.limits = KernelLimits(log)  # the kernel's cgroups on this host (none in a container: the engine's)
        self._stopping_kernel = False
        self._previous_death = ""
        self._death_told: asyncio.Task | None = None

    # -- life ------------------------------------------------------------------------------

    async def run(self) -> int:
        """Announce the kernel, serve until the end, stop everything; the exit code."""
        try:
            await asyncio.to_thread(leftovers.sweep_once)  # what launchers killed on this host left behind
            await self._announce()
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGTERM, self.finish, "SIGTERM")
            for signum in FORWARDED_SIGNALS:
                loop.add_signal_handler(signum, self.child.signal, signum)
            self._tasks.append(asyncio.create_task(self._keep_lease()))
            await self._done.wait()
            self.log.info("launcher for kernel %s stopping: %s", self.options.kernel_id, self.exit_reason)
        finally:
            await self._stop_everything()
        return 0

    def finish(self, reason: str) -> None:
        if not self._done.is_set():
            self.exit_reason = reason
            self._done.set()

    async def _announce(self) -> None:
        """Ports, connection file, servers, then the payload to the server's response address."""
        o = self.options
        info = write_kernel_connection_file(self.connection_file, o.ip, o.port_range)
        comm_port, channel_port = select_ports(2, o.port_range, o.ip)
        self.channel = ChannelServer(info["key"].encode(), self.log)
        self._register_ops(self.channel)
        await self.channel.start(o.ip, channel_port)
        await self.comm.start(o.ip, comm_port)
        payload = {**info, "pid": os.getpid(), "pgid": os.getpgid(0), "comm_port": self.comm.port,
                   "backend_port": self.channel.port, "kernel_id": o.kernel_id}
        await send_payload(o.response_address, payload, o.public_key)
        self.log.info("kernel %s announced to %s (channel port %d, comm port %d)",
                      o.kernel_id, o.response_address, self.channel.port, self.comm.port)

    async def _keep_lease(self) -> None:
        """End when the provisioner is silent for the lease (or never called within it)."""
        assert self.channel is not None
        while not self._done.is_set():
            await asyncio.sleep(min(0.5, self.options.lease_timeout / 4))
            silent = self.channel.silent_for()
            if silent > self.options.lease_timeout:
                what = "has been silent" if self.channel.contacted else "never called"
                self.log.warning("the provisioner %s for %.1f s (lease %.1f s): shutting down",
                                 what, silent, self.options.lease_timeout)
                self.finish("lease expired")

    async def _stop_everything(self) -> None:
        async with self._start_lock:  # a start in progress finishes (or refuses) first: nothing starts after this
            await self._stop_kernel(self.options.stop_grace)
        if self.sidecar is not None:
            await self.sidecar.shutdown()
        await asyncio.to_thread(self.limits.remove)
        if self.monitor is not None:
            await self.monitor.release()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.comm.close()
        if self.channel is not None:
            await self.channel.close()
        remove_private_dir(self.folder)

    # -- the kernel child ---------------------------------------------------------------------

    async def start_kernel(self, settings: dict[str, Any], overrides: dict[str, str] | None = None,
                           cwd: str | None = None) -> dict[str, Any]:
        """Start (or restart) the kernel with the provisioner's settings; the sidecar starts on the first call."""
        async with self._start_lock:
            self._refuse_when_stopping()
            first = self.settings is None
            if first:
                self.settings = BackendProvisionerTraits(**settings)
                self.sidecar = sidecar_for(self.settings, self.log)
                self._tasks.append(asyncio.create_task(self._forward_events(self.sidecar)))
            assert self.settings is not None and self.sidecar is not None
            models = load_model_definition(self.settings.model_definition) if first and \
                self.settings.model_definition else None
            await self._stop_kernel(self.options.stop_grace)
            cwd = cwd if cwd and os.path.isdir(cwd) else os.path.expanduser("~")
            env = kernel_environment(dict(os.environ), self.settings, overrides=dict(overrides or {}),
                                     kernel_id=self.options.kernel_id,
                                     control_env=await self.sidecar.control_env())
            self.marker = leftovers.new_launch_marker()
            REAPER.watch_launches(leftovers.owner_prefix())  # our death takes the kernel's marked processes too
            await asyncio.to_thread(self.limits.prepare, self.settings, self.options.kernel_id)
            self._refuse_when_stopping()
            told, self._previous_death = self._previous_death, ""
            kernel_env = {**env, leftovers.LAUNCH_ENV: self.marker, **self.limits.environment(),
                          **({PREVIOUS_DEATH_ENV: told} if told else {})}
            self._stopping_kernel = False
            pid = await self.child.start(kernel_env, cwd, cgroup=self.limits.cgroup)
            found = read_process(pid)
            self.kernel_start = found.start_time if found is not None else None
            self._watch_kernel(pid)
            code = await after_launch(self.settings, self.sidecar, cwd=cwd, env=env,
                                      kernel_id=self.options.kernel_id, defs_dir=self.settings.service_defs_dir,
                                      models=models, log=self.log, cgroups=self.limits.tree)
            return {"pid": pid, "bootstrap_exit_code": code}

    def _refuse_when_stopping(self) -> None:
        if self._done.is_set():
            raise RuntimeError(f"the launcher is stopping ({self.exit_reason}): no kernel is started")

    def _watch_kernel(self, pid: int) -> None:
        assert self.settings is not None
        if self.monitor is None and self.settings.process_monitor_interval > 0:
            self.monitor = ProcessMonitor.acquire(self.settings.process_monitor_interval, log=self.log)
        if self.monitor is not None and self.kernel_start is not None:
            self.monitor.watch(pid, self.kernel_start)

    async def _stop_kernel(self, grace: float) -> int | None:
        """Stop the kernel child and everything its launch left."""
        pid, start = self.child.pid, self.kernel_start
        self._stopping_kernel = True
        code = await self.child.stop(grace)
        if self.marker:
            killed = await asyncio.to_thread(reap_launch, self.marker, self.monitor, pid, start)
            if killed:
                self.log.info("the kernel left %d processes running; killed: %s", len(killed), killed)
            self.marker = ""
        if self._death_told is not None:  # it reads the launch's cgroup: before that goes
            await asyncio.gather(self._death_told, return_exceptions=True)
            self._death_told = None
        await asyncio.to_thread(self.limits.end_launch)
        return code

    def _kernel_exited(self, code: int) -> None:
        if self.channel is not None:
            self.channel.publish({"event": "kernel-exit", "key": "launcher:kernel", "exit_code": code})
        if code != 0 and not self._stopping_kernel:
            self._death_told = asyncio.create_task(self._tell_death(self.child.pid, code))
        if self._exit_with_kernel:
            self.finish("the kernel exited after a shutdown request")

    async def _tell_death(self, pid: int | None, code: int) -> None:
        """A kernel that died by itself (out of memory, a crash): the log, an ``oom`` event for the agent,
        and the next start's first cell, as the local provisioner does."""
        death = await self.limits.report_death(pid, code, self.monitor, self.options.kernel_id)
        self.log.error("%s", death.message)
        self._previous_death = death.message
        if death.oom_event is not None and self.channel is not None:
            self.channel.publish(death.oom_event)

    async def kill_kernel(self) -> int | None:
        return await self._stop_kernel(0.0)

    def kernel_status(self) -> dict[str, Any]:
        return {"pid": self.child.pid, "running": self.child.running, "exit_code": self.child.exit_code}

    async def shutdown(self, grace: float | None = None) -> bool:
        """Stop the kernel (it normally exited on its shutdown request already), then end the launcher."""
        self.finish("shutdown requested")
        async with self._start_lock:
            await self._stop_kernel(self.options.stop_grace if grace is None else grace)
        return True

    # -- requests -----------------------------------------------------------------------------

    def _comm_request(self, request: dict[str, Any]) -> None:
        """gateway_provisioners' comm port: a signal for the kernel, or "finish when the kernel exits"."""
        signum = request.get("signum")
        if isinstance(signum, int) and signum > 0:
            self.child.signal(signum)
        if request.get("shutdown"):
            self._exit_with_kernel = True
            if not self.child.running:
                self.finish("shutdown via the comm port")

    def _register_ops(self, channel: ChannelServer) -> None:
        channel.register("start-kernel", self.start_kernel)
        channel.register("signal", lambda signum: self.child.signal(int(signum)))
        channel.register("kill-kernel", self.kill_kernel)
        channel.register("kernel-status", self.kernel_status)
        channel.register("shutdown", self.shutdown)
        channel.register("subscribe", lambda: self.sidecar.manager.bus.snapshot() if self.sidecar else [])
        channel.register("stats", lambda: {"refused": channel.refused, "pid": os.getpid()})
        channel.register("vanished", lambda: self.monitor.report_vanished() if self.monitor else [])
        for name in SERVICE_OPS:
            channel.register(f"services.{name}", self._sidecar_op("manager", name))
        for name in MODEL_OPS:
            channel.register(f"models.{name}", self._sidecar_op("models", name))

    def _sidecar_op(self, part: str, name: str):
        def call(**args: Any) -> Any:
            if self.sidecar is None:
                raise RuntimeError("the kernel has not been started yet")
            return getattr(getattr(self.sidecar, part), name)(**args)
        return call

    async def _forward_events(self, sidecar: Sidecar) -> None:
        async for event in sidecar.subscribe_events():
            if self.channel is not None:
                self.channel.publish(event)
