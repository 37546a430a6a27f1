"""One supervised service, in the shape of simpervisor's ``SupervisedProcess``.

A :class:`SupervisedService` owns its process: it starts it (the common
child-process recipe), waits until it is ready (its readiness function),
watches it and restarts it per its policy (the restart watcher), gives up
with a terminal error (``fatal``), and stops its whole process group. Every
status change is logged (``log=``), written to the service's own log file and
published as a ``service-status`` event.

Statuses: ``starting`` → ``running``; a failed start is ``failed``; a running
service that exits is ``exited`` (no restart), ``backoff`` (waiting to be
restarted) or, after too many quick failures, ``fatal``; ``stopped`` after a
stop; ``started`` for services without a process (preopen, noop);
``not-available`` for an intrinsic service whose program is missing.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

from backend_kernel_provisioner.common.cgroups import Cgroup
from backend_kernel_provisioner.common.childproc import STDOUT, describe_exit, signal_group, spawn, stop_group
from backend_kernel_provisioner.common.events import Event
from backend_kernel_provisioner.sidecar.services.definitions import Readiness, RestartPolicy
from backend_kernel_provisioner.sidecar.services.logs import RotatingLog
from backend_kernel_provisioner.sidecar.services.ports import (
    LOOPBACK,
    PortClaim,
    PortInUse,
    probe_address,
    wait_until_ready,
)
from backend_kernel_provisioner.sidecar.services.reaper import REAPER
from backend_kernel_provisioner.sidecar.services.service_cgroups import oom_kills, oom_report

#: Statuses in which a service counts as present (a second start answers "running").
ACTIVE = ("starting", "running", "backoff")


class SupervisedService:
    """A service's record and, when it has a process, its supervision."""

    def __init__(
        self,
        name: str,
        kind: str,
        *,
        log_file: RotatingLog,
        publish: Callable[[Event], None],
        log: logging.Logger | None = None,
        start_timeout: float = 30.0,
        stop_grace: float = 5.0,
    ) -> None:
        self.name = name
        self.kind = kind
        self.log_file = log_file
        self.publish = publish
        self.log = log or logging.getLogger(__name__)
        self.start_timeout = start_timeout
        self.stop_grace = stop_grace
        # what to run
        self.argv: list[str] = []
        self.env: dict[str, str] = {}
        self.cwd: str | None = None
        self.ports: list[int] = []
        #: The address the service listens on: ports are claimed and probed there.
        self.host = LOOPBACK
        #: The service's ports, kept from other services of this process until it stops.
        self.claims: list[PortClaim] = []
        self.restart = RestartPolicy()
        self.readiness = Readiness()
        self.wait_for_port = True
        #: The service's own cgroup (a sibling of the kernel's), or None: the manager places it.
        self.cgroup: Cgroup | None = None
        # how it is doing
        self.status = "starting"
        self.proc: asyncio.subprocess.Process | None = None
        self.exit_code: int | None = None
        self.error: str | None = None
        self.restarts = 0
        self.quick_failures = 0
        self.started_at: float | None = None
        self._oom_kills_at_start = 0
        self._stopping = False
        self._lock = asyncio.Lock()
        self._watcher: asyncio.Task[None] | None = None
        self._pumps: list[asyncio.Task[None]] = []

    # -- state ----------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def set_status(self, status: str, **extra: Any) -> None:
        """Record a status; log it, write it to the service's log file, publish the event."""
        self.status = status
        event: Event = {
            "event": "service-status",
            "name": self.name,
            "status": status,
            "exit_code": self.exit_code,
            "restarts": self.restarts,
            "time": time.time(),
            "ports": list(self.ports),
        }
        if self.error:
            event["error"] = self.error
        event.update(extra)
        detail = f" ({self.error})" if self.error else ""
        self.log.info("service %s: %s%s", self.name, status, detail)
        self.log_file.line(f"status {status}" + (f": {self.error}" if self.error else ""))
        self.publish(event)

    def fail(self, error: str, status: str = "failed", **extra: Any) -> dict[str, Any]:
        """A start that cannot go on: record why; the start request's answer."""
        self.release_ports()
        self.error = error
        self.set_status(status, **extra)
        return {"status": "failed", "error": error, "exit_code": self.exit_code, **extra}

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "status": self.status,
            "pid": self.proc.pid if self.proc is not None and self.proc.returncode is None else None,
            "ports": list(self.ports),
            "exit_code": self.exit_code,
            "restarts": self.restarts,
            "error": self.error,
            "started_at": self.started_at,
            "command": list(self.argv),
            "log_file": str(self.log_file.path),
            "cgroup": self.cgroup.unique_dirs[0] if self.cgroup is not None else None,
        }

    def reserve(self, wanted: list[int]) -> None:
        """Claim the requested ports (0: a free one) for this service until it stops."""
        claims: list[PortClaim] = []
        try:
            for port in wanted or [0]:
                claims.append(PortClaim.take(port, self.host))
        except PortInUse:
            for claim in claims:
                claim.release()
            raise
        self.ports, self.claims = [c.port for c in claims], claims

    def release_ports(self) -> None:
        for claim in self.claims:
            claim.release()
        self.claims.clear()

    # -- starting -----------------------------------------------------------------------------

    async def start(self) -> dict[str, Any]:
        """First start: launch, wait until ready, then keep watching (the restart watcher)."""
        async with self._lock:
            if not await self._launch():
                return {"status": "failed", "error": self.error, "exit_code": self.exit_code}
            self._watcher = asyncio.create_task(self._watch())
            pid = self.proc.pid if self.proc else None
            return {"status": "started", "error": None, "ports": list(self.ports), "pid": pid}

    async def _launch(self) -> bool:
        """Start the process and wait until it is ready; True when ``running``."""
        self.exit_code, self.error = None, None
        self.set_status("starting")
        try:
            proc = await self._spawn()
        except OSError as exc:
            reason = {FileNotFoundError: "executable not found", PermissionError: "not executable"}.get(
                type(exc), "cannot start")
            target = self.cwd if isinstance(exc, NotADirectoryError) else self.argv[0]
            self.fail(f"{reason}: {target} ({exc.strerror or exc})")
            return False
        self.proc = proc
        REAPER.add(proc.pid)
        self.started_at = time.time()
        self._pumps = [t for t in self._pumps if not t.done()] + [asyncio.create_task(self._pump(proc))]
        if not self.wait_for_port or self.readiness.type == "none" or not self.ports:
            self.set_status("running", pid=proc.pid)
            return True
        timeout = self.readiness.timeout or self.start_timeout
        exited = asyncio.ensure_future(proc.wait())
        ready = asyncio.ensure_future(self.ready(timeout))
        await asyncio.wait({exited, ready}, return_when=asyncio.FIRST_COMPLETED)
        if ready.done() and ready.result() and not exited.done():
            exited.cancel()
            self.set_status("running", pid=proc.pid)
            return True
        ready.cancel()
        oom: dict[str, Any] = {}
        if exited.done():
            self.exit_code = exited.result()
            oom = await self._out_of_memory()
            error = f"{oom.get('message') or describe_exit(self.exit_code)} before its port {self.ports[0]} was ready"
        else:
            exited.cancel()
            error = f"port {self.ports[0]} did not accept connections within {timeout:g} s; stopped it"
            self.exit_code = await stop_group(proc, self.stop_grace)
        self._reaped(proc)
        self.fail(error, **_reason(oom))
        return False

    async def _spawn(self) -> asyncio.subprocess.Process:
        """The process, in the service's cgroup when it has one (without it when joining fails)."""
        self._oom_kills_at_start = await oom_kills(self.cgroup)
        # SIGTERM if the host dies: a service gets to shut down cleanly (the reaper follows with SIGKILL).
        try:
            return await spawn(self.argv, cwd=self.cwd, env=self.env, stderr=STDOUT, death_signal=signal.SIGTERM,
                               cgroup=self.cgroup)
        except subprocess.SubprocessError as exc:  # the child could not join the cgroup (removed meanwhile?)
            if self.cgroup is None:
                raise
            self.log.warning("service %s: cannot join its cgroup (%s); started without one", self.name, exc)
            self.cgroup = None
            return await spawn(self.argv, cwd=self.cwd, env=self.env, stderr=STDOUT, death_signal=signal.SIGTERM)

    async def _out_of_memory(self) -> dict[str, Any]:
        """After an exit: the OOM report (also logged and published as an ``oom`` event), or ``{}``."""
        report = await oom_report(self.cgroup, self._oom_kills_at_start)
        if report is None:
            return {}
        self.log.warning("service %s: %s", self.name, report["message"])
        self.log_file.line(report["message"])
        self.publish({"type": "oom", "event": "oom", "key": f"service:{self.name}:oom", "service": self.name,
                      "memory_limit": report["memory_limit"], "peak": report["peak"],
                      "message": f"service {self.name} {report['message']}", "time": time.time()})
        return report

    async def ready(self, timeout: float) -> bool:
        """The readiness function: the first port answers as the readiness check asks."""
        return await wait_until_ready(self.ports[0], self.readiness, timeout, probe_address(self.host))

    async def _pump(self, proc: asyncio.subprocess.Process) -> None:
        """Copy the process's output into its log file."""
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(65536):
            self.log_file.write(chunk)

    @staticmethod
    def _reaped(proc: asyncio.subprocess.Process) -> None:
        """After the leader exited: kill what is left of its group, forget the group."""
        signal_group(proc.pid, signal.SIGKILL)
        REAPER.discard(proc.pid)

    # -- the restart watcher -------------------------------------------------------------------

    def _delay(self) -> float:
        """``backoff`` before the first restart (after a long run or one quick failure), doubling with
        each further quick failure, at most ``max_backoff``."""
        return min(self.restart.backoff * (2 ** max(self.quick_failures - 1, 0)), self.restart.max_backoff)

    async def _watch(self) -> None:
        """Watch the running process; on exit report it and restart it per the policy."""
        while True:
            proc = self.proc
            assert proc is not None
            code = await proc.wait()
            self._reaped(proc)
            if self._stopping:
                return
            self.exit_code = code
            uptime = time.time() - (self.started_at or 0)
            self.quick_failures = self.quick_failures + 1 if uptime < self.restart.min_uptime else 0
            oom = await self._out_of_memory()
            why = _reason(oom)
            self.error = oom.get("message") or describe_exit(code)
            policy = self.restart.policy
            if not (policy == "always" or (policy == "on-failure" and code != 0)):
                self.set_status("exited", **why)
                return
            if self.quick_failures > self.restart.max_retries:
                self.error = f"{self.error}; gave up after {self.restart.max_retries} quick restarts"
                self.set_status("fatal", **why)
                return
            delay = self._delay()
            self.set_status("backoff", delay=delay, **why)
            await asyncio.sleep(delay)
            if not await self._relaunch():
                return

    async def _relaunch(self) -> bool:
        """Start again after a backoff, retrying quick failures; False when given up or stopped."""
        async with self._lock:
            while not self._stopping:
                self.restarts += 1
                if self.ports and not self.claims:  # a failed launch released them
                    try:
                        self.reserve(self.ports)
                    except PortInUse:
                        pass
                if await self._launch():
                    return True
                self.quick_failures += 1
                if self.quick_failures > self.restart.max_retries:
                    if not self._stopping:
                        self.set_status("fatal")
                    return False
                await asyncio.sleep(self._delay())
            return False

    # -- stopping -------------------------------------------------------------------------------

    async def stop(self) -> dict[str, Any]:
        """SIGTERM the service's process group, SIGKILL after the grace period; ``stopped``."""
        self._stopping = True
        watcher, self._watcher = self._watcher, None
        if watcher is not None and watcher is not asyncio.current_task() and not watcher.done():
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        if self.proc is not None and self.proc.returncode is None:
            self.exit_code = await stop_group(self.proc, self.stop_grace)
            self._reaped(self.proc)
        self.release_ports()
        if self._pumps:  # the pipes close with the process group; let the last output reach the log
            await asyncio.wait(self._pumps, timeout=1.0)
            for task in self._pumps:
                task.cancel()
            self._pumps.clear()
        self.error = None
        self.set_status("stopped")
        return {"status": "stopped", "error": None, "exit_code": self.exit_code}

    def close(self) -> None:
        """Close the log file (the record stays readable through ``info()``)."""
        self.log_file.close()


def _reason(oom: dict[str, Any]) -> dict[str, Any]:
    """What a status event adds for an out-of-memory death: ``reason`` and ``message``."""
    return {"reason": oom["reason"], "message": oom["message"]} if oom else {}
