"""The service manager: a kernel's registry of services and the runner's service API.

One manager lives per kernel (in its sidecar) and outlives kernel restarts.
It turns a start request (a service definition, an intrinsic recipe, or a
ready-made command for a model server) into a
:class:`~backend_kernel_provisioner.sidecar.services.supervised.SupervisedService`,
keeps one per name, and answers status, apps and log requests. Every state
change is published on the kernel's :class:`EventBus` as
``{"event": "service-status", "name", "status", "exit_code", "restarts", "time", ...}``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from backend_kernel_provisioner.common.cgroups import Cgroup
from backend_kernel_provisioner.common.events import EventBus, Subscription
from backend_kernel_provisioner.common.kernel_cgroups import KernelCgroups
from backend_kernel_provisioner.common.leftovers import make_private_dir, remove_private_dir
from backend_kernel_provisioner.sidecar.services.actions import run_prestart_actions
from backend_kernel_provisioner.sidecar.services.definitions import (
    Readiness,
    RestartPolicy,
    ServiceDefinition,
    ServiceDefinitionError,
    expand,
    load_definitions,
    name_problem,
    parse_readiness,
    parse_restart,
)
from backend_kernel_provisioner.sidecar.services.intrinsic import (
    DEFAULT_PORTS,
    RECIPES,
    Credential,
    NotAvailable,
    access_info,
)
from backend_kernel_provisioner.sidecar.services.logs import RotatingLog
from backend_kernel_provisioner.sidecar.services.ports import LOOPBACK, PortInUse
from backend_kernel_provisioner.sidecar.services.requests import StartRefused, caller_arguments, caller_env, command_of
from backend_kernel_provisioner.sidecar.services.service_cgroups import ServiceCgroups, policy_limits
from backend_kernel_provisioner.sidecar.services.supervised import SupervisedService

#: Variables of the kernel's own plumbing that services must not inherit.
PRIVATE_ENV_PREFIXES = ("BACKEND_CONTROL_",)


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
    #: Where the intrinsic services (sshd, ttyd) listen (the provisioner's ``service_bind_address``).
    bind_address: str = LOOPBACK
    #: The kernel's cgroup tree: each service runs in its sibling leaf ``service-<name>`` (None: as the server).
    cgroups: KernelCgroups | None = None


class ServiceManager:
    """A kernel's services: the runner's start/stop/get-apps, plus supervision, logs and events."""

    def __init__(self, context: ManagerContext | None = None, *, log: logging.Logger | None = None,
                 bus: EventBus | None = None, work_dir: str | None = None) -> None:
        self.context = context or ManagerContext()
        self.log = log or logging.getLogger(__name__)
        self.bus = bus or EventBus()
        self.services: dict[str, SupervisedService] = {}
        self.definition_errors: dict[str, str] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._own_work_dir = work_dir is None  # made here, so removed by close()
        self.work_dir = work_dir or make_private_dir("bkp-services-")  # with its owner record
        os.chmod(self.work_dir, 0o700)
        self.log_dir = os.path.join(self.work_dir, "logs")
        #: ttyd's basic-auth credential: one per kernel (this manager lives as long as the kernel).
        self.credential = Credential.generate()
        self.service_cgroups = ServiceCgroups(self.log)
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
        """The runner's ``get-apps``: ``{name, url_template?, allowed_arguments?, allowed_envs?}`` per definition,
        then each running intrinsic service's ``{name, host, ports, url_template?, credential?}``."""
        defs = self.definitions()
        apps = [d.app_info() for n, d in sorted(defs.items()) if name is None or n == name]
        return apps + [self._access(n) for n in sorted(self._started_intrinsics()) if name is None or n == name]

    def _started_intrinsics(self) -> list[str]:
        return [n for n, svc in self.services.items() if svc.kind == "intrinsic" and svc.active]

    def _access(self, name: str) -> dict[str, Any]:
        """Where an intrinsic service listens and how to log in (ttyd's credential)."""
        svc = self.services[name]
        return access_info(name, svc.host, svc.ports, self.credential)

    # -- state --------------------------------------------------------------------------------

    def status(self, name: str) -> dict[str, Any]:
        svc = self.services.get(name)
        if svc is None:  # ``invalid``: a definition file that failed to load, with its error
            error = self.definition_errors.get(name)
            return {"name": name, "status": "invalid" if error else "unknown", "error": error}
        return {**svc.info(), **self._access(name)} if name in self._started_intrinsics() else svc.info()

    def statuses(self) -> list[dict[str, Any]]:
        return [svc.info() for svc in self.services.values()]

    def list_services(self) -> list[dict[str, Any]]:
        """Apps (definitions and intrinsic recipes) with their current status; bad files with their error."""
        names = sorted({*self.definitions(), *RECIPES, *self.services, *self.definition_errors})
        return [{**self.status(n), "name": n} for n in names]

    def read_log(self, name: str, tail: int | None = None) -> str:
        svc = self.services.get(name)
        if svc is None:
            raise KeyError(f"no service named {name!r} has run in this kernel")
        return svc.log_file.read(tail)

    def subscribe(self) -> Subscription:
        """Current state of every service first, then every change."""
        return self.bus.subscribe()

    def service_env(self) -> dict[str, str]:
        """The kernel's child environment without the kernel's private plumbing (control token)."""
        return {k: v for k, v in self.context.env.items() if not k.startswith(PRIVATE_ENV_PREFIXES)}

    # -- building a service -------------------------------------------------------------------

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    def _new_service(self, name: str, kind: str) -> SupervisedService:
        """A fresh record for ``name`` (a previous one's log file is closed, its file kept)."""
        problem = name_problem(name)
        if problem is not None:  # callers check first: the name becomes a file name below
            raise ValueError(problem)
        old = self.services.get(name)
        if old is not None:
            old.close()
        log_file = RotatingLog(Path(self.log_dir) / f"{name}.log", self.context.log_max_bytes,
                               self.context.log_backups)
        svc = SupervisedService(name, kind, log_file=log_file, publish=self.bus.publish, log=self.log,
                                start_timeout=self.context.start_timeout, stop_grace=self.context.stop_grace)
        self.services[name] = svc
        return svc

    def _policy_for(self, name: str, restart: RestartPolicy, readiness: Readiness) -> tuple[RestartPolicy, Readiness]:
        """Configuration (``service_policies``: per name, or ``"*"``) overrides the definition."""
        for key in ("*", name):
            conf = self.context.policies.get(key) or {}
            if "restart" in conf:
                restart = parse_restart(conf["restart"], f"service_policies[{key!r}].restart")
            if "readiness" in conf:
                readiness = parse_readiness(conf["readiness"], f"service_policies[{key!r}].readiness")
        return restart, readiness

    async def service_cgroup(self, name: str) -> Cgroup | None:
        """The service's own leaf with its policy's limits (None without cgroups; a warning says why, once).

        A bad ``limits`` policy raises :class:`ServiceDefinitionError` naming the entry and the field."""
        limits = policy_limits(self.context.policies, name)
        return await self.service_cgroups.leaf(self.context.cgroups, name, limits)

    def _action_logger(self, svc: SupervisedService):
        def log(level: int, message: str) -> None:
            self.log.log(level, "service %s: %s", svc.name, message)
            svc.log_file.line(message)
        return log

    # -- starting -----------------------------------------------------------------------------

    async def start_service(self, info: Mapping[str, Any]) -> dict[str, Any]:
        """The runner's ``start-service``; returns ``{"status": started|running|failed, "error", ...}``."""
        name = str(info.get("name") or "")
        if not name:
            return {"status": "failed", "error": "start-service needs a name"}
        if problem := name_problem(name):
            return {"status": "failed", "error": problem}
        protocol = info.get("protocol") or "tcp"
        if protocol == "preopen":
            self._new_service(name, "preopen").set_status("started")
            return {"status": "started", "error": None}
        async with self._lock(name):
            current = self.services.get(name)
            if current is not None and current.active:
                return {"status": "running", "error": None}
            if protocol == "pty":
                return {"status": "failed", "error": "protocol 'pty' is not supported"}
            if name in RECIPES:
                return await self._start_intrinsic(name, info)
            return await self._start_defined(name, info)

    async def _start_defined(self, name: str, info: Mapping[str, Any]) -> dict[str, Any]:
        """A service from its definition: caller options checked, prestart run, templates expanded."""
        defn = self.definitions().get(name)
        if defn is None:
            error = self.definition_errors.get(name) or (
                f"no service definition named {name!r}"
                + (f" in {self.context.defs_dir}" if self.context.defs_dir else " (service_defs_dir is not set)")
            )
            return self._new_service(name, "definition").fail(error)
        options = info.get("options") or {}
        try:
            extra_args = caller_arguments(defn, options.get("arguments") or {})
            extra_env = caller_env(defn, options.get("envs") or {}, self.service_env())
        except StartRefused as exc:
            return self._new_service(name, "definition").fail(str(exc))
        svc = self._new_service(name, "noop" if defn.noop else "definition")
        if defn.noop:
            svc.set_status("started")
            return {"status": "started", "error": None}
        source = f"service {name!r} ({defn.source})"
        try:
            svc.restart, svc.readiness = self._policy_for(name, defn.restart, defn.readiness)
            svc.cgroup = await self.service_cgroup(name)
            svc.reserve(_requested_ports(info))
            variables = {"ports": svc.ports, "runtime_path": self.context.runtime_path,
                         "home": self.context.home, "kernel_id": self.context.kernel_id}
            env = self.service_env()
            variables = await run_prestart_actions(
                defn.prestart, variables, source, cwd=self.context.home, env=env, tempdir=self.work_dir,
                log=self._action_logger(svc), command_timeout=self.context.command_timeout, cgroup=svc.cgroup,
            )
            argv = command_of(defn.command, variables, source)
            for key, value in defn.env.items():
                env[expand(key, variables, f"{source}: env key")] = expand(value, variables, f"{source}: env[{key!r}]")
        except (ServiceDefinitionError, PortInUse) as exc:
            return svc.fail(str(exc))
        env.update(extra_env)
        svc.argv, svc.env, svc.cwd = argv + extra_args, env, self.context.home
        return await svc.start()

    async def _start_intrinsic(self, name: str, info: Mapping[str, Any]) -> dict[str, Any]:
        svc = self._new_service(name, "intrinsic")
        svc.host = self.context.bind_address
        try:
            svc.reserve(_requested_ports({"port": info.get("port") or DEFAULT_PORTS[name], "ports": info.get("ports")}))
            launch = await RECIPES[name](svc.ports[0], self.service_env(), self.work_dir,
                                         bind_address=svc.host, credential=self.credential)
        except NotAvailable as exc:
            return {**svc.fail(str(exc), status="not-available"), "not_available": True}
        except (OSError, RuntimeError) as exc:
            return svc.fail(f"{name}: {exc}")
        try:
            svc.restart, svc.readiness = self._policy_for(name, RestartPolicy(), Readiness())
            svc.cgroup = await self.service_cgroup(name)
        except ServiceDefinitionError as exc:
            return svc.fail(str(exc))
        svc.argv, svc.env, svc.cwd = launch.argv, {**self.service_env(), **launch.env}, launch.cwd
        result = await svc.start()
        return {**result, **self._access(name)} if result["status"] == "started" else result

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
        if problem := name_problem(name):
            return {"status": "failed", "error": problem}
        async with self._lock(name):
            current = self.services.get(name)
            if current is not None and current.active:
                return {"status": "running", "error": None}
            svc = self._new_service(name, kind)
            svc.argv = [str(a) for a in argv]
            svc.env = dict(env) if env is not None else self.service_env()
            svc.cwd = cwd or self.context.home
            svc.ports = [int(p) for p in ports]
            svc.wait_for_port = wait_for_port and bool(svc.ports)
            try:
                policy = restart if isinstance(restart, RestartPolicy) else parse_restart(restart or "never", name)
                ready = readiness if isinstance(readiness, Readiness) else parse_readiness(readiness or "tcp", name)
                svc.restart, svc.readiness = self._policy_for(name, policy, ready)
                svc.cgroup = await self.service_cgroup(name)
            except ServiceDefinitionError as exc:
                return svc.fail(str(exc))
            return await svc.start()

    # -- stopping -----------------------------------------------------------------------------

    async def shutdown_service(self, name: str) -> dict[str, Any]:
        """SIGTERM the service's process group, SIGKILL after the grace period; its cgroup leaf is removed."""
        if problem := name_problem(name):
            return {"status": "failed", "error": problem}
        svc = self.services.get(name)
        if svc is None:
            return {"status": "failed", "error": f"no service named {name!r}"}
        result = await svc.stop()
        await self.service_cgroups.remove(name)
        return result

    async def stop_all(self) -> None:
        """Stop every service (the kernel is really shutting down)."""
        names = [n for n, s in self.services.items() if s.status != "stopped"]
        await asyncio.gather(*(self.shutdown_service(n) for n in names), return_exceptions=True)

    async def close(self) -> None:
        """Stop everything, end subscriptions, close logs; remove the private folder this manager made."""
        await self.stop_all()
        await self.service_cgroups.remove_all()
        self.closed = True
        self.bus.close()
        for svc in self.services.values():
            svc.close()
        if self._own_work_dir:
            remove_private_dir(self.work_dir)


def _requested_ports(info: Mapping[str, Any]) -> list[int]:
    """The request's ``ports`` (or ``port``); empty for one free port."""
    return [int(p) for p in (info.get("ports") or ([info["port"]] if info.get("port") else []))]
