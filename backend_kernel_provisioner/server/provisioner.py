"""The kernel provisioner: the runner's start-up sequence as jupyter_client hooks.

``pre_launch``     applies ``start_kernel()`` keywords naming our traits, starts the
                   sidecar's control channel, reads the model definition.
``_finalize_env``  shapes the one final environment the kernel, its bootstrap
                   script and its services all see.
``post_launch``    runs the bootstrap script, then starts services and model servers
                   once per kernel (they survive restarts).
``cleanup``        tells how the kernel died if it ended by itself (out of memory: see
                   :mod:`.kernel_limits`); kills every process the launch left (its
                   launch marker and its cgroup, see
                   :mod:`~backend_kernel_provisioner.common.leftovers`); stops the
                   sidecar when the kernel really shuts down.

Each launch runs in a cgroup of its own (:mod:`.kernel_limits`), limited by the
``memory_limit``, ``cpu_limit`` and ``pids_limit`` traits.

The first launch in a server process also sweeps what dead owners left: processes
carrying their launch markers, our temp folders and the connection files they name.

Settings are in :mod:`.traits`; services, models and the control channel are
the kernel's :class:`~backend_kernel_provisioner.sidecar.sidecar.Sidecar`.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from jupyter_client.provisioning import LocalProvisioner

from backend_kernel_provisioner.common import leftovers
from backend_kernel_provisioner.common.events import Subscription
from backend_kernel_provisioner.common.kernel_cgroups import sweep_stale_cgroups
from backend_kernel_provisioner.common.offload import in_worker
from backend_kernel_provisioner.common.resource_limits import PREVIOUS_DEATH_ENV
from backend_kernel_provisioner.server.kernel_limits import KernelLimits
from backend_kernel_provisioner.server.kernel_site import (
    after_launch,
    kernel_environment,
    reap_launch,
    resolve_spec_path,
    sidecar_for,
)
from backend_kernel_provisioner.server.process_monitor import ProcessMonitor, read_process
from backend_kernel_provisioner.server.server_events import emit_kernel_death
from backend_kernel_provisioner.server.traits import BackendProvisionerTraits
from backend_kernel_provisioner.sidecar.models.definitions import ModelInfo, load_model_definition
from backend_kernel_provisioner.sidecar.models.runner import ModelServiceRunner
from backend_kernel_provisioner.sidecar.services.manager import ServiceManager
from backend_kernel_provisioner.sidecar.services.reaper import REAPER
from backend_kernel_provisioner.sidecar.sidecar import Sidecar


class BackendKernelProvisioner(BackendProvisionerTraits, LocalProvisioner):  # type: ignore[metaclass]
    """Launches a backend kernel locally and hosts its sidecar (services, models, control channel)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # jupyter_client keeps connection_info on the class: give each instance its own.
        self.connection_info = {}
        self.child_env: dict[str, str] = {}
        self.bootstrap_exit_code: int | None = None
        self._sidecar: Sidecar | None = None
        self._pending_models: list[ModelInfo] | None = None
        self._call_env: dict[str, str] = {}
        self._control_env: dict[str, str] = {}
        self.process_monitor: ProcessMonitor | None = None
        #: ``BACKEND_KERNEL_LAUNCH`` of the current launch: every process it starts carries it.
        self.launch_marker = ""
        self._kernel_start: float | None = None
        self.limits = KernelLimits(self.log)
        #: The kernel's exit code when it ended by itself (not asked to stop); None while it runs or was stopped.
        self.self_death: int | None = None
        self._stopping = False
        self._death_told: asyncio.Future | None = None
        self._previous_death = ""  # told to the next launch (the kernel shows it on its first cell)

    # -- hooks ------------------------------------------------------------------------

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        """Per-launch state is reset here: jupyter_client reuses this instance across restarts."""
        self.apply_call_options(kwargs)
        self._models_pre_launch()
        self.bootstrap_exit_code = None
        await self._sweep_stale()
        self.self_death, self._stopping, self._death_told = None, False, None
        await in_worker(self.limits.prepare, self, str(self.kernel_id or ""))
        self.launch_marker = leftovers.new_launch_marker()
        self._kernel_start = None
        REAPER.watch_launches(leftovers.owner_prefix())  # our death takes the marked processes too
        # A call-time env is usually the server's environment plus a few variables: only those
        # differences are the caller's, and they win over the environ file (see _finalize_env).
        call_env = kwargs.pop("env", None) or {}
        self._call_env = {k: v for k, v in call_env.items() if os.environ.get(k) != v}
        self._control_env = await self.sidecar.control_env()
        kwargs["env"] = dict(os.environ)  # the base class adds the kernelspec's env, then calls _finalize_env
        options = await super().pre_launch(**kwargs)
        return {**options, "cmd": self.limits.command(options["cmd"])}

    def _finalize_env(self, env: dict[str, str]) -> None:
        """The one final environment, later wins: the server's < the kernelspec's ``env`` <
        the environ file < ``extra_env`` and call-time ``env``; then PATH promotion and our variables.

        The kernel, its bootstrap script and its services all get this (services without the
        control channel's variables).
        """
        super()._finalize_env(env)
        final = kernel_environment(
            env, self, overrides={**self.extra_env, **self._call_env},
            kernel_id=str(self.kernel_id or ""), control_env=self._control_env,
        )
        # Services and the bootstrap script outlive a launch: only the kernel's own tree is marked.
        self.child_env = dict(final)
        if self.launch_marker:
            final[leftovers.LAUNCH_ENV] = self.launch_marker
        final.update(self.limits.environment())  # the kernel's cgroup and limits, not its services'
        if self._previous_death:
            final[PREVIOUS_DEATH_ENV] = self._previous_death
        env.clear()
        env.update(final)

    async def post_launch(self, **kwargs: Any) -> None:
        await super().post_launch(**kwargs)
        self._previous_death = ""  # told once, by the launch that followed the death
        self._record_launch()
        pending, self._pending_models = self._pending_models, None
        self.bootstrap_exit_code = await after_launch(
            self, self.sidecar, cwd=kwargs.get("cwd") or os.getcwd(), env=self.child_env,
            kernel_id=str(self.kernel_id or ""), defs_dir=self._resolve_spec_path(self.service_defs_dir),
            models=pending, log=self.log, cgroups=self.limits.tree,
        )
        self._start_process_monitor()

    async def cleanup(self, restart: bool = False) -> None:
        """Runs after every stop: ``shutdown_kernel`` (``now`` or not), a restart, a kernel that died.

        The launch's processes go in every case (``kill()`` is no place for it: jupyter_client
        passes ``restart=False`` there even on a restart); services and models only when the
        kernel really shuts down.
        """
        await super().cleanup(restart=restart)
        if self._death_told is not None:
            await self._death_told
        await self._reap_launch()
        await in_worker(self.limits.end_launch)
        if not restart:
            sidecar, self._sidecar = self._sidecar, None
            if sidecar is not None:
                await sidecar.shutdown()
            await in_worker(self.limits.remove)
            if self.process_monitor is not None:
                await self.process_monitor.release()
                self.process_monitor = None

    # -- a kernel that ended by itself ------------------------------------------------------------

    async def poll(self) -> int | None:
        had_process = self.process is not None  # without one, the base class answers 0
        code = await super().poll()
        if had_process:
            self._note_exit(code)
        return code

    def _note_exit(self, code: int | None) -> None:
        """An exit not asked for is a death: told at once (the agent's ``oom`` event comes while the
        server is still deciding to restart), and again in the next launch's first cell."""
        if code is not None and not self._stopping and self.self_death is None:
            self.self_death = code
            if code != 0:
                self._death_told = asyncio.ensure_future(self._tell_death(code))

    def _stop_asked(self) -> None:
        """We (or the manager) stop it from here on: an exit seen later is no death of its own."""
        if self.process is not None:
            self._note_exit(self.process.poll())
        self._stopping = True

    async def shutdown_requested(self, restart: bool = False) -> None:
        self._stop_asked()
        await super().shutdown_requested(restart=restart)

    async def kill(self, restart: bool = False) -> None:
        self._stop_asked()
        await super().kill(restart=restart)

    async def terminate(self, restart: bool = False) -> None:
        self._stop_asked()
        await super().terminate(restart=restart)

    async def _tell_death(self, code: int) -> None:
        """Out of memory (or another death) to the log, the agent's events, the server's event logger, and
        the kernel's next launch, which shows it on its first cell."""
        death = await self.limits.report_death(self.pid, code, self.process_monitor, str(self.kernel_id))
        self.log.error("kernel %s: %s", self.kernel_id, death.message)
        self._previous_death = death.message
        if death.oom_event is not None:
            self.sidecar.manager.bus.publish(death.oom_event)
        emit_kernel_death(self.parent, {
            "kernel_id": str(self.kernel_id), "reason": "oom" if death.oom else "died", "msg": death.message,
            "memory_limit": death.usage.get("memory_limit"), "memory_peak": death.usage.get("memory_peak"),
        }, self.log)

    # -- nothing of a launch outlives it -----------------------------------------------------

    async def _sweep_stale(self) -> None:
        """Once per server process: what dead owners left (marked processes, folders, connection files)."""
        found = await in_worker(leftovers.sweep_once)
        if found is not None:
            found["cgroups"] = await in_worker(sweep_stale_cgroups)
        if found and (found["processes"] or found["folders"] or found["cgroups"]):
            self.log.info("swept what dead kernel owners left: %d processes, folders %s, cgroups %s",
                          len(found["processes"]), ", ".join(found["folders"]) or "none",
                          ", ".join(found["cgroups"]) or "none")

    def _record_launch(self) -> None:
        """Note the kernel's start time (for the process monitor) and its connection file (for the sweep)."""
        if self.pid:
            info = read_process(self.pid)
            self._kernel_start = info.start_time if info is not None else None
        connection_file = getattr(self.parent, "connection_file", "")
        if connection_file and self._sidecar is not None:
            leftovers.note(self._sidecar.control.folder, connection_file=os.path.abspath(connection_file))

    async def _reap_launch(self) -> None:
        """Kill what the stopped launch left (marked processes, the kernel's remembered descendants);
        remove the kernel's work folder if it could not."""
        marker, monitor, pid, start = self.launch_marker, self.process_monitor, self.pid, self._kernel_start
        if not marker:
            return
        killed = await in_worker(reap_launch, marker, monitor, pid, start)
        if killed:
            self.log.info("kernel %s left %d processes running; killed: %s", self.kernel_id, len(killed), killed)

    def _resolve_spec_path(self, path: str) -> str:
        return resolve_spec_path(path, getattr(self.kernel_spec, "resource_dir", "") if self.kernel_spec else "")

    def _start_process_monitor(self) -> None:
        """Runner step 6: remember recent process tables so an OOM notice can name the victims."""
        if self.process_monitor is None and self.process_monitor_interval > 0:
            self.process_monitor = ProcessMonitor.acquire(self.process_monitor_interval, log=self.log)
        if self.process_monitor is not None and self.pid and self._kernel_start is not None:
            self.process_monitor.watch(self.pid, self._kernel_start)  # for _reap_launch, however late

    # -- the sidecar: one per kernel, surviving restarts -------------------------------------

    @property
    def sidecar(self) -> Sidecar:
        """The kernel's services, model servers and control channel, created on first use."""
        if self._sidecar is None:
            self._sidecar = sidecar_for(self, self.log)
        return self._sidecar

    @property
    def services(self) -> ServiceManager:
        """The kernel's :class:`~backend_kernel_provisioner.sidecar.services.manager.ServiceManager`."""
        return self.sidecar.manager

    @property
    def models(self) -> ModelServiceRunner:
        """The kernel's model servers and health checkers; events go on the services' bus."""
        return self.sidecar.models

    def subscribe_events(self) -> Subscription:
        """Service (and model) events: the current state of each first, then every change."""
        return self.sidecar.subscribe_events()

    # -- model services: started once per kernel, health-checked across restarts ----------

    def _models_pre_launch(self) -> None:
        """First launch only: read and check ``model_definition`` (a bad file refuses the start)."""
        if not self.sidecar.autostarted and self._pending_models is None and self.model_definition:
            self._pending_models = load_model_definition(self.model_definition)

    async def start_model_service(self, model_info: dict[str, Any]) -> dict[str, Any]:
        """The runner's ``start-model-service``: ``{"status": "started"|"failed", "error"?}``."""
        return await self.models.start_model(model_info)

    def model_health(self) -> dict[str, bool | None]:
        """``{model_name: True/False}``; ``None`` while a model's health is undetermined."""
        return self._sidecar.models.health() if self._sidecar is not None else {}

    def subscribe_model_events(self) -> Subscription:
        """``model-service-status`` events: each model's current state first, then every transition."""
        return self.models.subscribe()
