"""Model servers and their health checkers, wired together for the provisioner.

The runner's ``start-model-service``: run the prestart actions, start ``start_command`` in
``model_path`` as service ``<name>-<port>`` (without waiting for the port), report
``started``/``failed``, then probe its health and publish ``model-service-status`` on every
transition.  Optionally a model server that stays unhealthy for a while is restarted.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Protocol

from backend_kernel_provisioner.common.events import EventBus, Subscription
from backend_kernel_provisioner.sidecar.models.definitions import (
    ModelDefinitionError,
    ModelInfo,
    load_model_definition,
    parse_model_info,
)
from backend_kernel_provisioner.sidecar.models.health import HealthChecker, HealthEvent
from backend_kernel_provisioner.sidecar.services import ServiceDefinitionError, ServiceManager, run_prestart_actions
from backend_kernel_provisioner.sidecar.services.requests import as_argv

log = logging.getLogger(__name__)


class ModelStartError(RuntimeError):
    """The model server could not be started; the message is the reason a person can act on."""


class ModelLauncher(Protocol):
    """Starts and stops the process of a model server (the service manager, or a stand-in)."""

    async def start(self, model: ModelInfo, variables: dict[str, Any]) -> None: ...

    async def stop(self, model: ModelInfo) -> None: ...


@dataclass
class RunningModel:
    """What the runner knows about one started model."""

    info: ModelInfo
    checker: HealthChecker
    restarts: int = 0
    restart_task: asyncio.Task | None = field(default=None, repr=False)


class ModelServiceRunner:
    """Starts model servers with their checkers; keeps their health; publishes transitions."""

    def __init__(
        self,
        launcher: ModelLauncher,
        events: EventBus,
        *,
        restart_after_unhealthy: float = 0.0,
        probe_host: str = "localhost",
    ) -> None:
        self.launcher = launcher
        self.events = events
        self.restart_after_unhealthy = restart_after_unhealthy
        self.probe_host = probe_host
        self.models: dict[str, RunningModel] = {}

    # -- starting ------------------------------------------------------------------------------

    async def start_definition(self, path: str) -> dict[str, dict[str, Any]]:
        """Start every model of a definition file; a bad file raises ModelDefinitionError."""
        results = {}
        for model in load_model_definition(path):
            results[model.name] = await self.start_model(model)
        return results

    async def start_model(self, model: ModelInfo | dict[str, Any]) -> dict[str, Any]:
        """``{"status": "started"}`` or ``{"status": "failed", "error": reason}``."""
        try:
            info = model if isinstance(model, ModelInfo) else parse_model_info(model, "model_info")
        except ModelDefinitionError as exc:
            return {"status": "failed", "error": str(exc)}
        if info.name in self.models:
            return {"status": "started", "already_running": True}
        try:
            await self.launcher.start(info, self._variables_for(info))
        except (ModelStartError, ValueError, OSError) as exc:
            log.warning("model %s failed to start: %s", info.name, exc)
            return {"status": "failed", "error": str(exc)}
        checker = HealthChecker(
            info.name, info.service.port, info.service.health_check, self._on_transition, host=self.probe_host
        )
        self.models[info.name] = RunningModel(info, checker)
        checker.start()
        return {"status": "started"}

    @staticmethod
    def _variables_for(info: ModelInfo) -> dict[str, Any]:
        return {"ports": [info.service.port], "model_path": info.model_path}

    # -- health --------------------------------------------------------------------------------

    def health(self) -> dict[str, bool | None]:
        """``{model_name: True/False}``, ``None`` while a model's state is undetermined."""
        return {name: running.checker.is_healthy for name, running in self.models.items()}

    def subscribe(self) -> Subscription:
        """Model events only: the current known state of each model first, then every transition."""
        return self.events.subscribe(is_model_event)

    def _on_transition(self, event: HealthEvent) -> None:
        self.events.publish(event.as_message())
        running = self.models.get(event.model_name)
        if running is not None:
            self._arm_restart(running, unhealthy=not event.is_healthy)

    # -- restart policy ------------------------------------------------------------------------

    def _arm_restart(self, running: RunningModel, *, unhealthy: bool) -> None:
        if running.restart_task is not None:
            running.restart_task.cancel()
            running.restart_task = None
        if unhealthy and self.restart_after_unhealthy > 0:
            running.restart_task = asyncio.create_task(self._restart_when_still_unhealthy(running))

    async def _restart_when_still_unhealthy(self, running: RunningModel) -> None:
        while True:
            await asyncio.sleep(self.restart_after_unhealthy)
            if running.checker.is_healthy is not False:
                return
            log.warning(
                "model %s unhealthy for %ss: restarting its server", running.info.name, self.restart_after_unhealthy
            )
            running.restarts += 1
            try:
                await self.launcher.stop(running.info)
                await self.launcher.start(running.info, self._variables_for(running.info))
            except (ModelStartError, ValueError, OSError) as exc:
                log.warning("model %s could not be restarted: %s", running.info.name, exc)
            running.checker.restart_grace()

    # -- stopping ------------------------------------------------------------------------------

    async def stop_all(self) -> None:
        """Stop every checker and model server (at kernel shutdown, not at a restart)."""
        models, self.models = self.models, {}
        for running in models.values():
            if running.restart_task is not None:
                running.restart_task.cancel()
            await running.checker.stop()
            try:
                await self.launcher.stop(running.info)
            except OSError as exc:
                log.warning("model %s did not stop cleanly: %s", running.info.name, exc)


class ServiceManagerLauncher:
    """Model servers as supervised processes of the kernel's service manager."""

    def __init__(self, manager: ServiceManager, *, exit_check: float = 0.3) -> None:
        self.manager = manager
        self.exit_check = exit_check  # a server that dies at once is reported failed, with its code

    def variables(self) -> dict[str, Any]:
        context = self.manager.context
        return {"runtime_path": context.runtime_path, "home": context.home, "kernel_id": context.kernel_id}

    async def start(self, model: ModelInfo, variables: dict[str, Any]) -> None:
        name = model.service_name
        cwd = model.model_path or self.manager.context.home
        if not os.path.isdir(cwd):
            raise ModelStartError(f"model_path {cwd!r} is not a folder")
        source = f"model {model.name!r}"
        try:
            # Its own cgroup (policy ``service_policies[service name].limits``) holds its prestart commands too.
            cgroup = await self.manager.service_cgroup(name)
            await run_prestart_actions(
                model.service.pre_start_actions, {**self.variables(), **variables}, source,
                cwd=cwd, env=self.manager.service_env(), tempdir=self.manager.work_dir,
                command_timeout=self.manager.context.command_timeout, cgroup=cgroup,
                log=lambda level, message: log.log(level, "model %s: %s", model.name, message),
            )
        except ServiceDefinitionError as exc:
            raise ModelStartError(str(exc)) from None
        argv = as_argv(model.service.start_command)  # used as written: not template-expanded (docs/models.md)
        result = await self.manager.start_process(
            name, argv, cwd=cwd, ports=[model.service.port], wait_for_port=False, kind="model"
        )
        if result["status"] == "failed":
            raise ModelStartError(result["error"])
        await asyncio.sleep(self.exit_check)
        status = self.manager.status(name)
        if status["status"] not in ("starting", "running"):
            raise ModelStartError(status.get("error") or f"the model server is {status['status']}")

    async def stop(self, model: ModelInfo) -> None:
        if model.service_name in self.manager.services:
            await self.manager.shutdown_service(model.service_name)


def is_model_event(event: dict[str, Any]) -> bool:
    return event.get("event") == "model-service-status"
