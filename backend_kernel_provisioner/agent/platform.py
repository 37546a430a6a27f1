"""What the agent asks of a kernel's provisioner: services, model servers, events, OOM notices.

Kept apart from the execute path (:mod:`.kernel`) because it goes to the
provisioner's Python API, not to the kernel over ZeroMQ; a remote provisioner
offers the same API.
"""

from __future__ import annotations

import asyncio
from typing import Any

from jupyter_client.manager import AsyncKernelManager

from backend_kernel_provisioner.common.events import EventBus


class PlatformServices:
    """The runner's service, model and event operations, on ``self.km.provisioner``."""

    km: AsyncKernelManager
    bus: EventBus

    @property
    def provisioner(self) -> Any:
        return self.km.provisioner

    async def start_service(self, info: dict[str, Any]) -> dict[str, Any]:
        return await self.provisioner.services.start_service(info)

    async def shutdown_service(self, name: str) -> dict[str, Any]:
        """Stop a service; the manager's answer, so that an unknown or refused name is not silently ignored."""
        return await self.provisioner.services.shutdown_service(name)

    async def get_service_apps(self, name: str | None = None) -> dict[str, Any]:
        return {"status": "done", "data": await _maybe_await(self.provisioner.services.get_apps(name))}

    async def start_model_service(self, model_info: dict[str, Any]) -> dict[str, Any]:
        return await self.provisioner.start_model_service(model_info)

    def notify_event(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        """``{"type": "oom"}``: log (and return) the process trees that likely were killed."""
        monitor = getattr(self.provisioner, "process_monitor", None)
        if data.get("type") != "oom" or monitor is None:
            return []
        return monitor.report_vanished()

    async def _relay_provisioner_events(self) -> None:
        subscribe = getattr(self.provisioner, "subscribe_events", None)
        if subscribe is None:
            return
        async for event in subscribe():
            self.bus.publish(event)


async def _maybe_await(value: Any) -> Any:
    if asyncio.iscoroutine(value):
        return await value
    return value
