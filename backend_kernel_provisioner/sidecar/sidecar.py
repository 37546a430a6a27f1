"""One kernel's sidecar: its service manager, model runner and control channel, across its launches.

The provisioner creates one :class:`Sidecar` per kernel (not per launch):
services and model servers start once, survive kernel restarts, and stop when
the kernel really shuts down. Everything the platform asks of a kernel's
services goes through this object, so that it can later run next to a kernel
on another host with the same API.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from backend_kernel_provisioner.common.events import Subscription
from backend_kernel_provisioner.sidecar.control import ControlServer
from backend_kernel_provisioner.sidecar.models.definitions import ModelInfo
from backend_kernel_provisioner.sidecar.models.runner import ModelServiceRunner, ServiceManagerLauncher
from backend_kernel_provisioner.sidecar.services.manager import ManagerContext, ServiceManager


class Sidecar:
    """A kernel's :class:`ServiceManager`, its model servers, and the control channel its kernel uses."""

    def __init__(self, log: logging.Logger | None = None, *, model_restart_after_unhealthy: float = 0.0) -> None:
        self.log = log or logging.getLogger(__name__)
        self.manager = ServiceManager(ManagerContext(), log=self.log)
        self.models = ModelServiceRunner(
            ServiceManagerLauncher(self.manager), self.manager.bus,
            restart_after_unhealthy=model_restart_after_unhealthy,
        )
        self.control = ControlServer(self.log)
        self.autostarted = False
        self.autostart_results: dict[str, dict[str, Any]] = {}
        self._register_control_ops()

    def _register_control_ops(self) -> None:
        m = self.manager
        self.control.register("list", m.list_services)
        self.control.register("status", m.status)
        self.control.register("start", lambda name, **info: m.start_service({"name": name, **info}))
        self.control.register("stop", m.shutdown_service)
        self.control.register("apps", lambda name=None: m.get_apps(name))
        self.control.register("log", lambda name, tail=None: m.read_log(name, tail))

    async def control_env(self) -> dict[str, str]:
        """Start the control channel (once) and return the variables the kernel needs."""
        await self.control.start()
        return self.control.env

    async def launched(self, names: Iterable[str], *, wait: bool = True, **context: Any) -> None:
        """After every launch: refresh the context; on the first launch only, auto-start ``names``."""
        self.manager.configure(**context)
        if self.autostarted:
            return
        self.autostarted = True
        task = asyncio.ensure_future(self._autostart(list(dict.fromkeys(names))))
        if wait:
            await task

    async def _autostart(self, names: list[str]) -> None:
        requests = [_autostart_request(entry) for entry in names]
        results = await asyncio.gather(*(self.manager.start_service(r) for r in requests), return_exceptions=True)
        for request, result in zip(requests, results, strict=True):
            if isinstance(result, BaseException):
                result = {"status": "failed", "error": f"{type(result).__name__}: {result}"}
            self.autostart_results[request["name"]] = result
            if result.get("status") == "failed":  # logged, never fatal for the kernel
                self.log.warning("auto-start of service %s: %s", request["name"], result.get("error"))

    async def start_models(self, models: Iterable[ModelInfo]) -> None:
        """Start the model definition's models (a failure is logged, not fatal)."""
        for model in models:
            result = await self.models.start_model(model)
            if result["status"] == "failed":
                self.log.warning("model %s did not start: %s", model.name, result.get("error"))

    def subscribe_events(self) -> Subscription:
        """Service and model events: the current state of each first, then every change."""
        return self.manager.subscribe()

    async def shutdown(self) -> None:
        """The kernel is gone for good: stop models and services, close the channel, remove our files."""
        await self.models.stop_all()
        await self.manager.close()
        await self.control.close()


def _autostart_request(entry: str) -> dict[str, Any]:
    """``NAME`` (a free port is chosen) or ``NAME:PORT`` (a daemon clients expect on a fixed port)."""
    name, _, port = entry.partition(":")
    if port.isdigit():
        return {"name": name, "port": int(port), "ports": [int(port)]}
    return {"name": entry}
