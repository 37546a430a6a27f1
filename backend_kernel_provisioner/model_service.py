"""Model servers and their health checkers, wired together for the provisioner.

The runner's ``start-model-service``: run the prestart actions, start ``start_command`` in
``model_path`` as service ``<name>-<port>`` (without waiting for the port), report
``started``/``failed``, then probe its health and publish ``model-service-status`` on every
transition.  Optionally a model server that stays unhealthy for a while is restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .health import HealthChecker, HealthEvent
from .models import ModelDefinitionError, ModelInfo, load_model_definition, parse_model_info

log = logging.getLogger(__name__)


class ModelStartError(RuntimeError):
    """The model server could not be started; the message is the reason a person can act on."""


class ModelLauncher(Protocol):
    """Starts and stops the process of a model server (the service manager, or a stand-in)."""

    async def start(self, model: ModelInfo, variables: dict[str, Any]) -> None: ...

    async def stop(self, model: ModelInfo) -> None: ...


class EventSink(Protocol):
    def publish(self, event: dict[str, Any]) -> None: ...

    def subscribe(self) -> AsyncIterator[dict[str, Any]]: ...


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
        events: EventSink,
        *,
        variables: Callable[[], Mapping[str, Any]] = dict,
        restart_after_unhealthy: float = 0.0,
        probe_host: str = "localhost",
    ) -> None:
        self.launcher = launcher
        self.events = events
        self.variables = variables
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

    def _variables_for(self, info: ModelInfo) -> dict[str, Any]:
        variables = dict(self.variables())
        variables.update(ports=[info.service.port], model_path=info.model_path)
        return variables

    # -- health --------------------------------------------------------------------------------

    def health(self) -> dict[str, bool | None]:
        """``{model_name: True/False}``, ``None`` while a model's state is undetermined."""
        return {name: running.checker.is_healthy for name, running in self.models.items()}

    def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        """Model events only: the current known state of each model first, then every transition."""
        return _models_only(self.events.subscribe())

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


class SubprocessLauncher:
    """Stand-in launcher until the service manager takes over: one process group per model."""

    def __init__(self, env: Callable[[], Mapping[str, str]] = dict, *, exit_check: float = 0.3) -> None:
        self.env = env
        self.exit_check = exit_check
        self.processes: dict[str, asyncio.subprocess.Process] = {}

    async def start(self, model: ModelInfo, variables: dict[str, Any]) -> None:
        command = model.service.start_command
        argv = ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)
        cwd = model.model_path or variables.get("home") or None
        if cwd and not os.path.isdir(cwd):
            raise ModelStartError(f"model_path {cwd!r} is not a folder")
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, cwd=cwd, env=dict(self.env()) or None, stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True, preexec_fn=_default_signals,
            )
        except FileNotFoundError:
            raise ModelStartError(f"executable not found: {argv[0]}") from None
        except PermissionError:
            raise ModelStartError(f"not executable: {argv[0]}") from None
        self.processes[model.service_name] = proc
        try:
            code = await asyncio.wait_for(proc.wait(), self.exit_check)
        except asyncio.TimeoutError:
            return
        self.processes.pop(model.service_name, None)
        raise ModelStartError(f"{argv[0]} exited with code {code}")

    async def stop(self, model: ModelInfo) -> None:
        proc = self.processes.pop(model.service_name, None)
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)


async def _models_only(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    async for event in events:
        if event.get("event") == "model-service-status":
            yield event
