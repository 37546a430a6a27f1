"""The provisioner's settings, as traits: kernelspec ``config``, Jupyter config files or ``start_kernel()`` keywords.

Kept apart from the hooks so that every provisioner of ours (the local one
now, remote ones later) declares the same settings once. Every kernelspec
``config`` key must be a declared trait: jupyter_client drops unknown keys silently.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from traitlets import All, Bool, Dict, Float, Int, List, TraitError, Unicode, default, observe, validate
from traitlets.config import LoggingConfigurable

from backend_kernel_provisioner.common.resource_limits import Limits, parse_memory
from backend_kernel_provisioner.sidecar.services.ports import check_bind_address

#: ``start_kernel()`` keywords that belong to Popen even if a provisioner had a trait of that name.
POPEN_KEYWORDS = frozenset({"env", "cwd"})


def _env_or(name: str, fallback: str) -> str:
    return os.environ.get(name, fallback)


def _existing(path: str) -> str:
    """The runner's container path as a default only where it exists."""
    return path if os.path.exists(path) else ""


def _bind_address(value: str, where: str) -> str:
    """An IP literal to listen on (dynamic defaults are not validated by traitlets: check both)."""
    try:
        return check_bind_address(value)
    except ValueError as exc:
        raise TraitError(f"{where}: {exc}") from None


class BackendProvisionerTraits(LoggingConfigurable):
    """The settings every backend provisioner has (local now; remote ones reuse this mixin)."""

    language = Unicode(
        "",
        config=True,
        help="Language of the kernel (python, c, go, ...); selects PATH folders and variables.",
    )
    environ_file = Unicode(
        config=True,
        help="File of KEY=VALUE lines that override the kernel's environment "
        "(env: BACKEND_ENVIRON_FILE; default /home/config/environ.txt where it exists).",
    )
    bootstrap_script = Unicode(
        config=True,
        help="Shell script run once per kernel launch; its exit code is logged, never fatal "
        "(env: BACKEND_BOOTSTRAP_SCRIPT; default /home/work/bootstrap.sh where it exists).",
    )
    bootstrap_timeout = Float(
        300.0, config=True, help="Seconds the bootstrap script may run before it is killed."
    )
    extra_path = List(
        Unicode(),
        config=True,
        help="Folders promoted to the front of the kernel's PATH (when they exist).",
    )
    extra_env = Dict(
        value_trait=Unicode(),
        config=True,
        help="Extra environment variables for the kernel, applied after the environ file.",
    )
    kernel_options = Dict(
        config=True,
        help="Settings for the kernel process itself (for example {\"flags\": \"-O2\"} for a compiled language); "
        "passed as JSON in BACKEND_KERNEL_OPTIONS and applied to the kernel's own traits.",
    )
    runtime_path = Unicode(
        config=True,
        help="The kernel's runtime (interpreter) offered to service templates as {runtime_path}; "
        "default: the Python running the Jupyter server.",
    )

    # -- services (sidecar/services/) ---------------------------------------------
    service_defs_dir = Unicode(
        config=True,
        help="Folder of JSON service definitions (one NAME.json per service) "
        "(env: BACKEND_SERVICE_DEFS_DIR; default /etc/backend.ai/service-defs where it exists).",
    )
    autostart_services = List(
        Unicode(),
        config=True,
        help="Services started once with the kernel, before start_kernel() returns (they survive restarts); "
        "NAME or NAME:PORT for a fixed port; a failure is logged, not fatal.",
    )
    intrinsic_services = List(
        Unicode(),
        config=True,
        help="Built-in services (sshd, ttyd) started with the kernel when their programs exist "
        "(env: BACKEND_INTRINSIC_SERVICES, comma-separated; default sshd,ttyd where /etc/backend.ai exists).",
    )
    service_bind_address = Unicode(
        config=True,
        help="IP address the intrinsic services (sshd, ttyd) listen on; 127.0.0.1 keeps them to this machine, "
        "0.0.0.0 opens them on every interface (env: BACKEND_SERVICE_BIND_ADDRESS; default 127.0.0.1).",
    )
    autostart_wait = Bool(
        True, config=True, help="Wait in the launch for auto-started services to be ready (else start them behind)."
    )
    service_policies = Dict(
        config=True,
        help="Per service name (or \"*\"): {\"restart\": \"on-failure\"|\"always\"|\"never\" or "
        "{policy, max_retries, min_uptime, backoff, max_backoff}, \"readiness\": \"tcp\"|\"http\"|\"none\" or "
        "{type, path, status, timeout}, \"limits\": {\"memory\": \"256M\", \"cpu\": 0.5, \"pids\": 64}} "
        "(each service runs in a cgroup of its own beside the kernel's); overrides the definition.",
    )
    service_start_timeout = Float(
        30.0, config=True, help="Seconds a service may take until its port accepts connections."
    )
    service_stop_grace = Float(5.0, config=True, help="Seconds between SIGTERM and SIGKILL when a service stops.")
    prestart_command_timeout = Float(
        30.0, config=True, help="Seconds a run_command prestart action may run before it is killed."
    )
    service_log_max_bytes = Int(
        5 * 1024 * 1024, config=True, help="Size at which a service's log file is rotated."
    )
    service_log_backups = Int(2, config=True, help="Rotated log files kept per service.")

    # -- model services (sidecar/models/) ----------------------------------------------------
    process_monitor_interval = Float(
        5.0,
        config=True,
        help="Seconds between process-table snapshots kept for out-of-memory reports (0 disables).",
    )
    model_definition = Unicode(
        config=True,
        help="Model-definition YAML file; its models start (with their health checkers) on the "
        "kernel's first launch and survive restarts; a bad file refuses the kernel start "
        "(env: BACKEND_MODEL_DEFINITION).",
    )
    model_restart_after_unhealthy = Float(
        0.0,
        config=True,
        help="Restart a model server that has been unhealthy for this many seconds (0: never).",
    )

    # -- resource limits (server/kernel_limits.py; a container engine's limits in container mode) ------------
    memory_limit = Unicode(
        config=True,
        help="Memory the kernel and every process it starts may use (512M, 2Gi, 1.5G; binary units): a cgroup of "
        "its own locally, the container's limit in container mode; the kernel is told it in MEM_LIMIT "
        "(env: BACKEND_MEMORY_LIMIT; default: none).",
    )
    cpu_limit = Float(
        config=True,
        help="CPUs the kernel and its processes may use (0.5 = half of one core; env: BACKEND_CPU_LIMIT; 0: no limit).",
    )
    pids_limit = Int(
        config=True,
        help="Most processes and threads the kernel and its processes may run at once; a fork past it fails "
        "(env: BACKEND_PIDS_LIMIT; 0: no limit).",
    )
    cgroup_parent = Unicode(
        config=True,
        help="Where kernels' cgroups are made, as a path inside each cgroup hierarchy (for example "
        "/jupyter-kernels; under cgroup v2 it must have the memory, cpu and pids controllers enabled for its "
        "children); default: the server's own cgroup (env: BACKEND_CGROUP_PARENT).",
    )
    use_cgroups = Bool(
        True,
        config=True,
        help="Give every kernel a cgroup even without limits: its memory use for %limits, an out-of-memory death "
        "told as such, and every process it started killed at shutdown; where none can be made the kernel "
        "starts unlimited (a warning when limits were asked for).",
    )

    # -- configuration from start_kernel() ----------------------------------------------------

    def apply_call_options(self, kwargs: dict[str, Any]) -> None:
        """Pop ``start_kernel()`` keyword arguments naming a config trait of this provisioner (ours, or its
        engine's): they must not reach Popen, whose own ``env`` and ``cwd`` stay."""
        names = set(self.trait_names(config=True)) - POPEN_KEYWORDS
        for name in list(kwargs):
            if name in names:
                setattr(self, name, kwargs.pop(name))

    # -- what was set on purpose (a remote kernel's host computes the other defaults itself) ----

    @observe(All)
    def _remember_explicit(self, change: dict) -> None:
        if change["name"] in BackendProvisionerTraits.class_trait_names(config=True):
            self.__dict__.setdefault("_explicit_settings", set()).add(change["name"])

    def explicit_settings(self) -> dict[str, Any]:
        """Settings given by config, kernelspec or call, not defaults: a remote kernel's launcher gets these
        and computes the rest on its own host (paths, ``runtime_path`` and env-var defaults are the host's)."""
        return {name: getattr(self, name) for name in sorted(self.__dict__.get("_explicit_settings", ()))}

    @default("service_bind_address")
    def _default_service_bind_address(self) -> str:
        return _bind_address(_env_or("BACKEND_SERVICE_BIND_ADDRESS", "127.0.0.1"), "BACKEND_SERVICE_BIND_ADDRESS")

    @validate("service_bind_address")
    def _check_service_bind_address(self, proposal: dict) -> str:
        return _bind_address(proposal["value"], "service_bind_address")

    @default("memory_limit")
    def _default_memory_limit(self) -> str:
        return _env_or("BACKEND_MEMORY_LIMIT", "")

    @default("cpu_limit")
    def _default_cpu_limit(self) -> float:
        return float(_env_or("BACKEND_CPU_LIMIT", "") or 0)

    @default("pids_limit")
    def _default_pids_limit(self) -> int:
        return int(_env_or("BACKEND_PIDS_LIMIT", "") or 0)

    @default("cgroup_parent")
    def _default_cgroup_parent(self) -> str:
        return _env_or("BACKEND_CGROUP_PARENT", "")

    @validate("memory_limit")
    def _check_memory_limit(self, proposal: dict) -> str:
        try:
            parse_memory(proposal["value"])
        except ValueError as exc:
            raise TraitError(str(exc)) from None
        return proposal["value"]

    def resource_limits(self) -> Limits:
        """The limits asked for, as one value (a bad environment default is refused here, naming it)."""
        try:
            return Limits.of(self.memory_limit, self.cpu_limit, self.pids_limit)
        except ValueError as exc:
            raise TraitError(f"{exc} (BACKEND_MEMORY_LIMIT?)") from None

    @default("model_definition")
    def _default_model_definition(self) -> str:
        return _env_or("BACKEND_MODEL_DEFINITION", "")

    @default("service_defs_dir")
    def _default_service_defs_dir(self) -> str:
        return _env_or("BACKEND_SERVICE_DEFS_DIR", _existing("/etc/backend.ai/service-defs"))

    @default("intrinsic_services")
    def _default_intrinsic_services(self) -> list[str]:
        fallback = "sshd,ttyd" if os.path.isdir("/etc/backend.ai") else ""
        return [n.strip() for n in _env_or("BACKEND_INTRINSIC_SERVICES", fallback).split(",") if n.strip()]

    @default("environ_file")
    def _default_environ_file(self) -> str:
        return _env_or("BACKEND_ENVIRON_FILE", _existing("/home/config/environ.txt"))

    @default("bootstrap_script")
    def _default_bootstrap_script(self) -> str:
        return _env_or("BACKEND_BOOTSTRAP_SCRIPT", _existing("/home/work/bootstrap.sh"))

    @default("runtime_path")
    def _default_runtime_path(self) -> str:
        return sys.executable
