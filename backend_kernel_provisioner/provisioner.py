"""The kernel provisioner: the runner's start-up sequence as jupyter_client hooks.

``pre_launch``   builds the child environment (environ file, PATH promotion).
``post_launch``  runs the bootstrap script, then starts services and model
                 servers once per kernel (they survive restarts).
``cleanup``      stops services when the kernel really shuts down.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from typing import Any

from jupyter_client.provisioning import LocalProvisioner
from traitlets import Bool, Dict, Float, Int, List, Unicode, default

from .environment import build_child_environment, language_bin_dirs, language_variables
from .model_service import ModelServiceRunner, ServiceManagerLauncher
from .models import ModelInfo, load_model_definition
from .process_monitor import ProcessMonitor
from .services.lifecycle import KernelServices


def _env_or(name: str, fallback: str) -> str:
    return os.environ.get(name, fallback)


def _existing(path: str) -> str:
    """The runner's container path as a default only where it exists."""
    return path if os.path.exists(path) else ""


class BackendKernelProvisioner(LocalProvisioner):  # type: ignore[misc]
    """Launches a backend kernel locally and owns its environment, services and health checks."""

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

    # -- services (backend_kernel_provisioner/services) ------------------------------------
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
    autostart_wait = Bool(
        True, config=True, help="Wait in the launch for auto-started services to be ready (else start them behind)."
    )
    service_policies = Dict(
        config=True,
        help="Per service name (or \"*\"): {\"restart\": \"on-failure\"|\"always\"|\"never\" or "
        "{policy, max_retries, min_uptime, backoff, max_backoff}, \"readiness\": \"tcp\"|\"http\"|\"none\" or "
        "{type, path, status, timeout}}; overrides the definition.",
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

    # -- model services (model_service.py, health.py) ---------------------------------------
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

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # jupyter_client keeps connection_info on the class: give each instance its own.
        self.connection_info = {}
        self.child_env: dict[str, str] = {}
        self.bootstrap_exit_code: int | None = None
        self._kernel_services: KernelServices | None = None
        self._model_runner: ModelServiceRunner | None = None
        self._pending_models: list[ModelInfo] | None = None
        self.process_monitor: ProcessMonitor | None = None

    # -- configuration from start_kernel() -----------------------------------------

    def _apply_call_options(self, kwargs: dict[str, Any]) -> None:
        """Pop keyword arguments naming our traits (they must not reach Popen)."""
        names = set(self.trait_names(config=True)) - set(LocalProvisioner.class_trait_names(config=True))
        for name in list(kwargs):
            if name in names:
                setattr(self, name, kwargs.pop(name))

    # -- hooks ------------------------------------------------------------------------

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        self._apply_call_options(kwargs)
        self._models_pre_launch()
        self.bootstrap_exit_code = None
        base_env = kwargs.pop("env", None) or os.environ
        env = build_child_environment(
            base_env,
            environ_file=self.environ_file or None,
            extra_path=[*self.extra_path, *language_bin_dirs(self.language, base_env.get("HOME", ""))],
            overrides=self.extra_env,
        )
        env.update({k: v for k, v in language_variables(self.language, env).items() if k not in self.extra_env})
        env["BACKEND_KERNEL_LANGUAGE"] = self.language
        if self.kernel_options:
            env["BACKEND_KERNEL_OPTIONS"] = json.dumps(self.kernel_options)
        if self.kernel_id:
            env["BACKEND_KERNEL_ID"] = str(self.kernel_id)
        env.update(await self._services_pre_launch())
        self.child_env = env
        kwargs["env"] = env
        return await super().pre_launch(**kwargs)

    async def post_launch(self, **kwargs: Any) -> None:
        await super().post_launch(**kwargs)
        await self._run_bootstrap(kwargs.get("cwd"))
        await self._services_post_launch(kwargs)
        await self._models_post_launch()
        self._start_process_monitor()

    async def cleanup(self, restart: bool = False) -> None:
        await super().cleanup(restart=restart)
        if not restart:
            await self._models_shutdown()
            await self._services_shutdown()
            if self.process_monitor is not None:
                await self.process_monitor.release()
                self.process_monitor = None

    def _resolve_spec_path(self, path: str) -> str:
        """A relative path in a kernelspec's config is relative to the kernelspec's folder."""
        resource_dir = getattr(self.kernel_spec, "resource_dir", "") if self.kernel_spec else ""
        if path and not os.path.isabs(path) and resource_dir:
            return os.path.join(resource_dir, path)
        return path

    def _start_process_monitor(self) -> None:
        """Runner step 6: remember recent process tables so an OOM notice can name the victims."""
        if self.process_monitor is None and self.process_monitor_interval > 0:
            self.process_monitor = ProcessMonitor.acquire(self.process_monitor_interval, log=self.log)

    async def _run_bootstrap(self, cwd: str | None) -> None:
        script = self.bootstrap_script
        if not script or not os.path.isfile(script):
            return
        try:
            proc = await asyncio.create_subprocess_exec(
                "/bin/sh", script,
                cwd=cwd or None,
                env=self.child_env,
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            )
        except OSError as exc:
            self.log.warning("bootstrap script %s could not start: %s", script, exc)
            return
        try:
            self.bootstrap_exit_code = await asyncio.wait_for(proc.wait(), self.bootstrap_timeout)
        except asyncio.TimeoutError:
            os.killpg(proc.pid, signal.SIGKILL)
            self.bootstrap_exit_code = await proc.wait()
            self.log.warning("bootstrap script %s timed out after %ss", script, self.bootstrap_timeout)
        self.log.info("bootstrap script %s exited with code %s", script, self.bootstrap_exit_code)

    # -- services: one manager per kernel, surviving restarts -------------------------------

    @property
    def kernel_services(self) -> KernelServices:
        """The kernel's services bundle (manager + control channel), created on first use."""
        if self._kernel_services is None:
            self._kernel_services = KernelServices(self.log)
        return self._kernel_services

    @property
    def services(self) -> Any:
        """The kernel's :class:`~backend_kernel_provisioner.services.ServiceManager` (the Python API)."""
        return self.kernel_services.manager

    def subscribe_events(self) -> Any:
        """Service (and model) events: the current state of each first, then every change."""
        return self.services.subscribe()

    async def _services_pre_launch(self) -> dict[str, str]:
        """The control channel's variables for the kernel process."""
        return await self.kernel_services.control_env()

    async def _services_post_launch(self, kwargs: dict[str, Any]) -> None:
        await self.kernel_services.launched(
            [*self.intrinsic_services, *self.autostart_services],
            wait=self.autostart_wait,
            env=dict(self.child_env),
            home=kwargs.get("cwd") or os.getcwd(),
            kernel_id=str(self.kernel_id or ""),
            runtime_path=self.runtime_path,
            defs_dir=self._resolve_spec_path(self.service_defs_dir),
            policies=dict(self.service_policies),
            start_timeout=self.service_start_timeout,
            stop_grace=self.service_stop_grace,
            command_timeout=self.prestart_command_timeout,
            log_max_bytes=self.service_log_max_bytes,
            log_backups=self.service_log_backups,
        )

    async def _services_shutdown(self) -> None:
        """The kernel is really shutting down: stop every service; nothing is left running."""
        bundle, self._kernel_services = self._kernel_services, None
        if bundle is not None:
            await bundle.shutdown()

    # -- model services: started once per kernel, health-checked across restarts ----------

    @property
    def models(self) -> ModelServiceRunner:
        """The kernel's model servers and health checkers; events go on the services' bus."""
        if self._model_runner is None:
            self._model_runner = ModelServiceRunner(
                ServiceManagerLauncher(self.services),
                self.services.bus,
                restart_after_unhealthy=self.model_restart_after_unhealthy,
            )
        return self._model_runner

    def _models_pre_launch(self) -> None:
        """First launch only: read and check ``model_definition`` (a bad file refuses the start)."""
        if self._model_runner is None and self._pending_models is None and self.model_definition:
            self._pending_models = load_model_definition(self.model_definition)

    async def _models_post_launch(self) -> None:
        pending, self._pending_models = self._pending_models, None
        for model in pending or []:
            result = await self.models.start_model(model)
            if result["status"] == "failed":
                self.log.warning("model %s did not start: %s", model.name, result.get("error"))

    async def start_model_service(self, model_info: dict[str, Any]) -> dict[str, Any]:
        """The runner's ``start-model-service``: ``{"status": "started"|"failed", "error"?}``."""
        return await self.models.start_model(model_info)

    def model_health(self) -> dict[str, bool | None]:
        """``{model_name: True/False}``; ``None`` while a model's health is undetermined."""
        return self._model_runner.health() if self._model_runner is not None else {}

    def subscribe_model_events(self) -> Any:
        """``model-service-status`` events: each model's current state first, then every transition."""
        return self.models.subscribe()

    async def _models_shutdown(self) -> None:
        runner, self._model_runner = self._model_runner, None
        if runner is not None:
            await runner.stop_all()
