"""The kernel's sidecar as seen from the server when it runs next to a remote kernel.

Same names as the local :class:`~backend_kernel_provisioner.sidecar.services.manager.ServiceManager`
and :class:`~backend_kernel_provisioner.sidecar.models.runner.ModelServiceRunner`,
so the agent client and our magics do not care where the kernel runs; each call
is a signed request to the launcher. Events arrive pushed and are mirrored on a
local :class:`~backend_kernel_provisioner.common.events.EventBus` (latest state per
key, then every change), which also answers ``health()`` without a round trip.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from backend_kernel_provisioner.common.events import EventBus, Subscription
from backend_kernel_provisioner.remote.channel_client import LauncherChannel, LauncherError
from backend_kernel_provisioner.sidecar.models.runner import is_model_event

ChannelGetter = Callable[[], LauncherChannel | None]


class _Remote:
    def __init__(self, channel: ChannelGetter, bus: EventBus) -> None:
        self._channel = channel
        self.bus = bus

    async def _call(self, op: str, **args: Any) -> Any:
        channel = self._channel()
        if channel is None:
            raise LauncherError("the kernel's launcher is not running (the kernel was not started or has shut down)")
        return await channel.call(op, **args)


class RemoteServiceManager(_Remote):
    """The launcher's service manager: start, stop, list and read services next to the kernel."""

    async def start_service(self, info: Mapping[str, Any]) -> dict[str, Any]:
        return await self._call("services.start_service", info=dict(info))

    async def shutdown_service(self, name: str) -> dict[str, Any]:
        return await self._call("services.shutdown_service", name=name)

    async def list_services(self) -> list[dict[str, Any]]:
        return await self._call("services.list_services")

    async def status(self, name: str) -> dict[str, Any]:
        return await self._call("services.status", name=name)

    async def get_apps(self, name: str | None = None) -> list[dict[str, Any]]:
        return await self._call("services.get_apps", name=name)

    async def read_log(self, name: str, tail: int | None = None) -> str:
        return await self._call("services.read_log", name=name, tail=tail)

    def subscribe(self) -> Subscription:
        return self.bus.subscribe()


class RemoteModels(_Remote):
    """The launcher's model servers and health checkers."""

    def __init__(self, channel: ChannelGetter, bus: EventBus) -> None:
        super().__init__(channel, bus)
        self.started: set[str] = set()

    async def start_model(self, model: Mapping[str, Any]) -> dict[str, Any]:
        """A model-definition entry (as in the YAML file), checked and started on the kernel's host."""
        info = dict(model)
        result = await self._call("models.start_model", model=info)
        if result.get("status") == "started" and isinstance(info.get("name"), str):
            self.started.add(info["name"])
        return result

    def health(self) -> dict[str, bool | None]:
        """``{model_name: True/False}``, ``None`` while undetermined: from the mirrored events."""
        found: dict[str, bool | None] = dict.fromkeys(self.started)
        for event in self.bus.snapshot():
            if is_model_event(event):
                found[event["model_name"]] = event.get("is_healthy")
        return found

    def subscribe(self) -> Subscription:
        return self.bus.subscribe(is_model_event)
