"""The service manager: start, stop, supervise and report a kernel's app services.

One manager lives per kernel (on its provisioner) and outlives kernel
restarts.  Every state change is published on an :class:`EventBus` as
``{"event": "service-status", "name", "status", "exit_code", "restarts", "time", ...}``.

Statuses: ``starting`` → ``running``; a failed start is ``failed``; a running
service that exits is ``exited`` (no restart), ``backoff`` (waiting to be
restarted) or, after too many quick failures, ``fatal``; ``stopped`` after a
stop; ``started`` for services without a process (preopen, noop);
``not-available`` for an intrinsic service whose program is missing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .actions import run_prestart_actions
from .definitions import (
    Readiness,
    RestartPolicy,
    ServiceDefinition,
    ServiceDefinitionError,
    expand,
    load_definitions,
    parse_readiness,
    parse_restart,
)
from .events import EventBus
from .intrinsic import DEFAULT_PORTS, RECIPES, NotAvailable
from .logs import RotatingLog
from .ports import PortInUse, reserve_port, wait_until_ready
from .process import REAPER, signal_group, spawn, stop_group

ACTIVE = ("starting", "running", "backoff")
#: Variables of the kernel's own plumbing that services must not inherit.
PRIVATE_ENV_PREFIXES = ("BACKEND_CONTROL_",)


class StartRefused(Exception):
    """A start request that cannot be honoured; the message says why."""


@dataclass
class ManagerContext:
    """What the provisioner tells the manager (refreshed on every kernel launch)."""

    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    home: str = field(default_factory=os.getcwd)
    kernel_id: str = ""
    runtime_path: str = ""
    defs_dir: str = ""
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    start_timeout: float = 30.0
    stop_grace: float = 5.0
    command_timeout: float = 30.0
    log_max_bytes: int = 5 * 1024 * 1024
    log_backups: int = 2


@dataclass
class Service:
    """Runtime record of one service."""

    name: str
    kind: str
    status: str = "starting"
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    ports: list[int] = field(default_factory=list)
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    readiness: Readiness = field(default_factory=Readiness)
    wait_for_port: bool = True
    proc: asyncio.subprocess.Process | None = None
    exit_code: int | None = None
    error: str | None = None
    restarts: int = 0
    quick_failures: int = 0
    started_at: float | None = None
    log: RotatingLog | None = None
    stopping: bool = False
    reservations: list[socket.socket] = field(default_factory=list)
    supervisor: asyncio.Task | None = None
    pumps: list[asyncio.Task] = field(default_factory=list)

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
            "log_file": str(self.log.path) if self.log else None,
        }

    def release_ports(self) -> None:
        for sock in self.reservations:
            sock.close()
        self.reservations.clear()


def describe_exit(code: int) -> str:
    return f"killed by signal {signal.Signals(-code).name}" if code < 0 and -code in signal.valid_signals() else f"exited with code {code}"


class ServiceManager:
    """A kernel's services: the runner's start/stop/get-apps, plus supervision, logs and events."""

    def __init__(self, context: ManagerContext | None = None, *, log: logging.Logger | None = None,
                 bus: EventBus | None = None, work_dir: str | None = None) -> None:
        self.context = context or ManagerContext()
        self.log = log or logging.getLogger(__name__)
        self.bus = bus or EventBus()
        self.services: dict[str, Service] = {}
        self.definition_errors: dict[str, str] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._own_work_dir = work_dir is None
        self.work_dir = work_dir or tempfile.mkdtemp(prefix="bkp-services-")
        os.chmod(self.work_dir, 0o700)
        self.log_dir = os.path.join(self.work_dir, "logs")
        self.closed = False

    def configure(self, **changes: Any) -> None:
        """Update the context (env, home, kernel_id, runtime_path, defs_dir, timeouts, ...)."""
        self.context = replace(self.context, **changes)

    # -- definitions --------------------------------------------------------------------------

    def definitions(self) -> dict[str, ServiceDefinition]:
        """Re-read the definitions folder (cheap, and picks up edits); bad files are logged once."""
        good, bad = load_definitions(self.context.defs_dir)
        for name, message in bad.items():
            if self.definition_errors.get(name) != message:
                self.log.warning("service definition error: %s", message)
        self.definition_errors = bad
        return good

    def get_apps(self, name: str | None = None) -> list[dict[str, Any]]:
        """The runner's ``get-apps``: ``{name, url_template?, allowed_arguments?, allowed_envs?}``."""
        defs = self.definitions()
        return [d.app_info() for n, d in sorted(defs.items()) if name is None or n == name]

    # -- state and events ---------------------------------------------------------------------

    def _set(self, svc: Service, status: str, **extra: Any) -> None:
        svc.status = status
        event = {
            "event": "service-status",
            "name": svc.name,
            "status": status,
            "exit_code": svc.exit_code,
            "restarts": svc.restarts,
            "time": time.time(),
            "ports": list(svc.ports),
        }
        if svc.error:
            event["error"] = svc.error
        event.update(extra)
        self.log.info("service %s: %s%s", svc.name, status, f" ({svc.error})" if svc.error else "")
        if svc.log is not None:
            svc.log.line(f"status {status}" + (f": {svc.error}" if svc.error else ""))
        self.bus.publish(event)

    def status(self, name: str) -> dict[str, Any]:
        svc = self.services.get(name)
        if svc is None:
            return {"name": name, "status": "unknown", "error": self.definition_errors.get(name)}
        return svc.info()

    def statuses(self) -> list[dict[str, Any]]:
        return [svc.info() for svc in self.services.values()]

    def list_services(self) -> list[dict[str, Any]]:
        """Apps (definitions and intrinsic recipes) with their current status."""
        names = sorted({*self.definitions(), *RECIPES, *self.services})
        return [{**self.status(n), "name": n} for n in names]

    def read_log(self, name: str, tail: int | None = None) -> str:
        svc = self.services.get(name)
        if svc is None or svc.log is None:
            raise KeyError(f"no service named {name!r} has run in this kernel")
        return svc.log.read(tail)

    def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        """Current state of every service first, then every change."""
        return self.bus.subscribe()

    # -- starting -----------------------------------------------------------------------------

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    def _new_service(self, name: str, kind: str) -> Service:
        old = self.services.get(name)
        if old is not None and old.log is not None:
            old.log.close()
        svc = Service(name=name, kind=kind)
        svc.log = RotatingLog(Path(self.log_dir) / f"{name}.log", self.context.log_max_bytes, self.context.log_backups)
        self.services[name] = svc
        return svc

    def service_env(self) -> dict[str, str]:
        """The kernel's child environment without the kernel's private plumbing (control token)."""
        return {k: v for k, v in self.context.env.items() if not k.startswith(PRIVATE_ENV_PREFIXES)}

    def _policy_for(self, name: str, restart: RestartPolicy, readiness: Readiness) -> tuple[RestartPolicy, Readiness]:
        """Configuration (``service_policies``: per name, or ``"*"``) overrides the definition."""
        for key in ("*", name):
            conf = self.context.policies.get(key) or {}
            if "restart" in conf:
                restart = parse_restart(conf["restart"], f"service_policies[{key!r}].restart")
            if "readiness" in conf:
                readiness = parse_readiness(conf["readiness"], f"service_policies[{key!r}].readiness")
        return restart, readiness

    async def start_service(self, info: Mapping[str, Any]) -> dict[str, Any]:
        """The runner's ``start-service``; returns ``{"status": started|running|failed, "error", ...}``."""
        name = str(info.get("name") or "")
        if not name:
            return {"status": "failed", "error": "start-service needs a name"}
        protocol = info.get("protocol") or "tcp"
        if protocol == "preopen":
            svc = self._new_service(name, "preopen")
            self._set(svc, "started")
            return {"status": "started", "error": None}
        async with self._lock(name):
            current = self.services.get(name)
            if current is not None and current.status in ACTIVE:
                return {"status": "running", "error": None}
            if protocol == "pty":
                return {"status": "failed", "error": "protocol 'pty' is not supported"}
            return await self._start_locked(name, info)

    async def _start_locked(self, name: str, info: Mapping[str, Any]) -> dict[str, Any]:
        options = info.get("options") or {}
        if name in RECIPES:
            return await self._start_intrinsic(name, info)
        defs = self.definitions()
        defn = defs.get(name)
        if defn is None:
            error = self.definition_errors.get(name) or (
                f"no service definition named {name!r}"
                + (f" in {self.context.defs_dir}" if self.context.defs_dir else " (service_defs_dir is not set)")
            )
            return self._refuse(name, "definition", error)
        try:
            extra_args = self._arguments(defn, options.get("arguments") or {})
            extra_env = self._caller_env(defn, options.get("envs") or {})
        except StartRefused as exc:
            return self._refuse(name, "definition", str(exc))
        svc = self._new_service(name, "noop" if defn.noop else "definition")
        if defn.noop:
            self._set(svc, "started")
            return {"status": "started", "error": None}
        svc.restart, svc.readiness = self._policy_for(name, defn.restart, defn.readiness)
        try:
            svc.ports, svc.reservations = self._ports(info)
            variables = {
                "ports": svc.ports,
                "runtime_path": self.context.runtime_path,
                "home": self.context.home,
                "kernel_id": self.context.kernel_id,
            }
            env = self.service_env()
            variables = await run_prestart_actions(
                defn.prestart, variables, f"service {name!r} ({defn.source})",
                cwd=self.context.home, env=env, tempdir=self.work_dir,
                log=self._action_logger(svc), command_timeout=self.context.command_timeout,
            )
            src = f"service {name!r} ({defn.source})"
            if isinstance(defn.command, str):
                argv = ["/bin/sh", "-c", expand(defn.command, variables, f"{src}: command")]
            else:
                argv = [expand(part, variables, f"{src}: command[{i}]") for i, part in enumerate(defn.command)]
            for key, value in defn.env.items():
                env[expand(key, variables, f"{src}: env key")] = expand(value, variables, f"{src}: env[{key!r}]")
        except (ServiceDefinitionError, PortInUse) as exc:
            svc.release_ports()
            svc.error = str(exc)
            self._set(svc, "failed")
            return {"status": "failed", "error": svc.error}
        env.update(extra_env)
        svc.argv, svc.env, svc.cwd = argv + extra_args, env, self.context.home
        return await self._first_start(svc)

    def _refuse(self, name: str, kind: str, error: str) -> dict[str, Any]:
        svc = self._new_service(name, kind)
        svc.error = error
        self._set(svc, "failed")
        return {"status": "failed", "error": error}

    def _action_logger(self, svc: Service):
        def log(level: int, message: str) -> None:
            self.log.log(level, "service %s: %s", svc.name, message)
            if svc.log is not None:
                svc.log.line(message)
        return log

    @staticmethod
    def _ports(info: Mapping[str, Any]) -> tuple[list[int], list[socket.socket]]:
        """The request's ports (checked free) or one free port, each held bound until hand-over."""
        wanted = [int(p) for p in (info.get("ports") or ([info["port"]] if info.get("port") else []))] or [0]
        socks: list[socket.socket] = []
        try:
            for port in wanted:
                socks.append(reserve_port(port))
        except PortInUse:
            for sock in socks:
                sock.close()
            raise
        return [s.getsockname()[1] for s in socks], socks

    @staticmethod
    def _arguments(defn: ServiceDefinition, caller: Mapping[str, Any]) -> list[str]:
        """Default arguments, then caller arguments (only allowed names; a caller value replaces a default)."""
        args: dict[str, Any] = dict(defn.default_arguments)
        allowed = set(defn.allowed_arguments or ())
        for key, value in caller.items():
            if key not in allowed:
                raise StartRefused(f"argument {key!r} is not allowed for service {defn.name!r} "
                                   f"(allowed: {', '.join(sorted(allowed)) or 'none'})")
            if not (value is None or isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))):
                raise StartRefused(f"argument {key!r}: value must be null, a string or a list of strings")
            args[key] = value
        argv: list[str] = []
        for key, value in args.items():
            argv.append(key)
            if isinstance(value, str):
                argv.append(value)
            elif isinstance(value, list):
                argv.extend(value)
        return argv

    def _caller_env(self, defn: ServiceDefinition, caller: Mapping[str, Any]) -> dict[str, str]:
        allowed = set(defn.allowed_envs or ())
        kernel_env = self.service_env()
        result: dict[str, str] = {}
        for key, value in caller.items():
            if key not in allowed:
                raise StartRefused(f"environment variable {key!r} is not allowed for service {defn.name!r} "
                                   f"(allowed: {', '.join(sorted(allowed)) or 'none'})")
            if key in kernel_env or key in defn.env:
                raise StartRefused(f"environment variable {key!r} is already set by the kernel; it cannot be overridden")
            if not isinstance(value, str):
                raise StartRefused(f"environment variable {key!r}: value must be a string")
            result[key] = value
        return result

    async def _start_intrinsic(self, name: str, info: Mapping[str, Any]) -> dict[str, Any]:
        svc = self._new_service(name, "intrinsic")
        try:
            svc.ports, svc.reservations = self._ports({"port": info.get("port") or DEFAULT_PORTS[name],
                                                       "ports": info.get("ports")})
            launch = await RECIPES[name](svc.ports[0], self.service_env(), self.work_dir)
        except NotAvailable as exc:
            svc.release_ports()
            svc.error = str(exc)
            self._set(svc, "not-available")
            return {"status": "failed", "error": svc.error, "not_available": True}
        except (OSError, RuntimeError) as exc:
            svc.release_ports()
            svc.error = f"{name}: {exc}"
            self._set(svc, "failed")
            return {"status": "failed", "error": svc.error}
        svc.restart, svc.readiness = self._policy_for(name, RestartPolicy(), Readiness())
        svc.argv, svc.env, svc.cwd = launch.argv, {**self.service_env(), **launch.env}, launch.cwd
        return await self._first_start(svc)

    async def start_process(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        ports: Sequence[int] = (),
        *,
        wait_for_port: bool = False,
        restart: RestartPolicy | str | dict | None = None,
        readiness: Readiness | str | dict | None = None,
        kind: str = "process",
    ) -> dict[str, Any]:
        """Start an already-built command as a supervised service (model servers use this).

        ``env`` defaults to the kernel's child environment; ports are only waited for
        when ``wait_for_port`` is true.  Returns like :meth:`start_service`.
        """
        async with self._lock(name):
            current = self.services.get(name)
            if current is not None and current.status in ACTIVE:
                return {"status": "running", "error": None}
            svc = self._new_service(name, kind)
            svc.argv = [str(a) for a in argv]
            svc.env = dict(env) if env is not None else self.service_env()
            svc.cwd = cwd or self.context.home
            svc.ports = [int(p) for p in ports]
            svc.wait_for_port = wait_for_port and bool(svc.ports)
            policy = restart if isinstance(restart, RestartPolicy) else parse_restart(restart or "never", name)
            ready = readiness if isinstance(readiness, Readiness) else parse_readiness(readiness or "tcp", name)
            svc.restart, svc.readiness = self._policy_for(name, policy, ready)
            return await self._first_start(svc)

    async def _first_start(self, svc: Service) -> dict[str, Any]:
        ok = await self._launch(svc)
        if not ok:
            return {"status": "failed", "error": svc.error, "exit_code": svc.exit_code}
        svc.supervisor = asyncio.create_task(self._supervise(svc))
        return {"status": "started", "error": None, "ports": list(svc.ports), "pid": svc.proc.pid if svc.proc else None}

    async def _launch(self, svc: Service) -> bool:
        """Start the process and wait until it is ready; True when ``running``."""
        svc.exit_code, svc.error = None, None
        self._set(svc, "starting")
        try:
            proc = await spawn(svc.argv, cwd=svc.cwd, env=svc.env, stderr=asyncio.subprocess.STDOUT)
        except (FileNotFoundError, PermissionError, NotADirectoryError, OSError) as exc:
            svc.release_ports()
            reason = {FileNotFoundError: "executable not found", PermissionError: "not executable"}.get(type(exc), "cannot start")
            target = svc.argv[0] if not isinstance(exc, NotADirectoryError) else svc.cwd
            svc.error = f"{reason}: {target} ({exc.strerror or exc})"
            self._set(svc, "failed")
            return False
        svc.proc = proc
        REAPER.add(proc.pid)
        svc.started_at = time.time()
        svc.pumps = [t for t in svc.pumps if not t.done()] + [asyncio.create_task(self._pump(svc, proc))]
        if not svc.wait_for_port or svc.readiness.type == "none" or not svc.ports:
            svc.release_ports()
            self._set(svc, "running", pid=proc.pid)
            return True
        timeout = svc.readiness.timeout or self.context.start_timeout
        exited = asyncio.ensure_future(proc.wait())
        ready = asyncio.ensure_future(self._ready_after_handover(svc, timeout))
        await asyncio.wait({exited, ready}, return_when=asyncio.FIRST_COMPLETED)
        svc.release_ports()
        if ready.done() and ready.result() and not exited.done():
            exited.cancel()
            self._set(svc, "running", pid=proc.pid)
            return True
        ready.cancel()
        if exited.done():
            svc.exit_code = exited.result()
            svc.error = f"{describe_exit(svc.exit_code)} before its port {svc.ports[0]} was ready"
        else:
            exited.cancel()
            svc.error = f"port {svc.ports[0]} did not accept connections within {timeout:g} s; stopped it"
            svc.exit_code = await stop_group(proc, self.context.stop_grace)
        await self._reaped(svc, proc)
        self._set(svc, "failed")
        return False

    async def _ready_after_handover(self, svc: Service, timeout: float) -> bool:
        return await wait_until_ready(svc.ports[0], svc.readiness, timeout)

    async def _pump(self, svc: Service, proc: asyncio.subprocess.Process) -> None:
        """Copy the process's output into its log file."""
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(65536):
            if svc.log is not None:
                svc.log.write(chunk)

    async def _reaped(self, svc: Service, proc: asyncio.subprocess.Process) -> None:
        """After the leader exited: kill what is left of its group, forget the group."""
        signal_group(proc.pid, signal.SIGKILL)
        REAPER.discard(proc.pid)

    # -- supervision --------------------------------------------------------------------------

    async def _supervise(self, svc: Service) -> None:
        """Watch a running service; on exit report it and restart per its policy."""
        while True:
            proc = svc.proc
            assert proc is not None
            code = await proc.wait()
            await self._reaped(svc, proc)
            if svc.stopping:
                return
            svc.exit_code = code
            uptime = time.time() - (svc.started_at or 0)
            svc.quick_failures = svc.quick_failures + 1 if uptime < svc.restart.min_uptime else 0
            svc.error = describe_exit(code)
            policy = svc.restart.policy
            wants = policy == "always" or (policy == "on-failure" and code != 0)
            if not wants:
                self._set(svc, "exited")
                return
            if svc.quick_failures > svc.restart.max_retries:
                svc.error = f"{describe_exit(code)}; gave up after {svc.restart.max_retries} quick restarts"
                self._set(svc, "fatal")
                return
            delay = min(svc.restart.backoff * (2 ** svc.quick_failures), svc.restart.max_backoff)
            self._set(svc, "backoff", delay=delay)
            await asyncio.sleep(delay)
            if svc.stopping:
                return
            svc.restarts += 1
            if svc.ports and svc.wait_for_port:
                try:
                    svc.reservations = [reserve_port(svc.ports[0])]
                except PortInUse:
                    pass
            while not await self._launch(svc):
                svc.quick_failures += 1
                if svc.quick_failures > svc.restart.max_retries or svc.stopping:
                    if not svc.stopping:
                        self._set(svc, "fatal")
                    return
                await asyncio.sleep(min(svc.restart.backoff * (2 ** svc.quick_failures), svc.restart.max_backoff))
                svc.restarts += 1

    # -- stopping -----------------------------------------------------------------------------

    async def shutdown_service(self, name: str) -> dict[str, Any]:
        """SIGTERM the service's process group, SIGKILL after the grace period."""
        svc = self.services.get(name)
        if svc is None:
            return {"status": "failed", "error": f"no service named {name!r}"}
        svc.stopping = True
        supervisor, svc.supervisor = svc.supervisor, None
        if supervisor is not None and supervisor is not asyncio.current_task() and not supervisor.done():
            supervisor.cancel()
            await asyncio.gather(supervisor, return_exceptions=True)
        if svc.proc is not None and svc.proc.returncode is None:
            svc.exit_code = await stop_group(svc.proc, self.context.stop_grace)
            await self._reaped(svc, svc.proc)
        svc.release_ports()
        if svc.pumps:  # the pipes close with the process group; let the last output reach the log
            await asyncio.wait(svc.pumps, timeout=1.0)
            for task in svc.pumps:
                task.cancel()
            svc.pumps.clear()
        svc.error = None
        self._set(svc, "stopped")
        return {"status": "stopped", "error": None, "exit_code": svc.exit_code}

    async def stop_all(self) -> None:
        """Stop every service (the kernel is really shutting down)."""
        names = [n for n, s in self.services.items() if s.status not in ("stopped",)]
        await asyncio.gather(*(self.shutdown_service(n) for n in names), return_exceptions=True)

    async def close(self) -> None:
        """Stop everything, end subscriptions, close logs."""
        await self.stop_all()
        self.closed = True
        self.bus.close()
        for svc in self.services.values():
            if svc.log is not None:
                svc.log.close()
