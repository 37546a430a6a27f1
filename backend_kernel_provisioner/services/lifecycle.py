"""The services of one kernel across its launches: manager, control channel, auto-start.

The provisioner creates one :class:`KernelServices` per kernel (not per
launch): services start once, survive kernel restarts, and stop when the
kernel really shuts down.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Iterable
from typing import Any

from ..control import ControlServer
from .manager import ManagerContext, ServiceManager


class KernelServices:
    """A kernel's :class:`ServiceManager` plus the control channel its kernel process uses."""

    def __init__(self, log: logging.Logger | None = None) -> None:
        self.log = log or logging.getLogger(__name__)
        self.manager = ServiceManager(ManagerContext(), log=self.log)
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
        names = [r["name"] for r in requests]
        for name, result in zip(names, results):
            if isinstance(result, BaseException):
                result = {"status": "failed", "error": f"{type(result).__name__}: {result}"}
            self.autostart_results[name] = result
            if result.get("status") == "failed":  # logged, never fatal for the kernel
                self.log.warning("auto-start of service %s: %s", name, result.get("error"))

    async def shutdown(self) -> None:
        """The kernel is gone for good: stop every service, close the channel, remove our files."""
        await self.manager.close()
        await self.control.close()
        shutil.rmtree(self.manager.work_dir, ignore_errors=True)


def _autostart_request(entry: str) -> dict[str, Any]:
    """``NAME`` (a free port is chosen) or ``NAME:PORT`` (a daemon clients expect on a fixed port)."""
    name, _, port = entry.partition(":")
    if port.isdigit():
        return {"name": name, "port": int(port), "ports": [int(port)]}
    return {"name": entry}
