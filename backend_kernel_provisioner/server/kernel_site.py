"""The steps of a kernel launch that happen where the kernel runs, shared by every way of launching it.

The local provisioner runs them inside the Jupyter server; the kernel-side
launcher (:mod:`backend_kernel_provisioner.launcher`) runs the same functions on
the kernel's host. Keeping them in one place keeps a remote kernel's
environment, bootstrap, services and clean-up identical to a local one's.

``settings`` is anything with the provisioner's traits
(:class:`~backend_kernel_provisioner.server.traits.BackendProvisionerTraits`).
"""

from __future__ import annotations

import json
import logging
import os

from backend_kernel_provisioner.common import leftovers
from backend_kernel_provisioner.common.kernel_cgroups import KernelCgroups
from backend_kernel_provisioner.server.bootstrap import run_bootstrap_script
from backend_kernel_provisioner.server.environment import build_child_environment, language_bin_dirs, language_variables
from backend_kernel_provisioner.server.process_monitor import ProcessMonitor
from backend_kernel_provisioner.server.traits import BackendProvisionerTraits
from backend_kernel_provisioner.sidecar.models.definitions import ModelInfo
from backend_kernel_provisioner.sidecar.sidecar import Sidecar

#: Seconds between SIGTERM and SIGKILL for what a stopped kernel left running.
LEFTOVER_GRACE = 1.0


def kernel_environment(
    base: dict[str, str],
    settings: BackendProvisionerTraits,
    *,
    overrides: dict[str, str],
    kernel_id: str,
    control_env: dict[str, str],
) -> dict[str, str]:
    """The one final environment, later wins: ``base`` < the environ file < ``overrides``
    (``extra_env`` and the caller's variables); then PATH promotion and our variables.

    The kernel, its bootstrap script and its services all get this (services without the
    control channel's variables); the kernel's own launch marker is added by the caller.
    """
    language = settings.language
    final = build_child_environment(
        base,
        environ_file=settings.environ_file or None,
        extra_path=[*settings.extra_path, *language_bin_dirs(language, base)],
        overrides=overrides,
    )
    final.update({k: v for k, v in language_variables(language, final).items() if k not in overrides})
    final["BACKEND_KERNEL_LANGUAGE"] = language
    if settings.kernel_options:
        final["BACKEND_KERNEL_OPTIONS"] = json.dumps(settings.kernel_options)
    if kernel_id:
        final["BACKEND_KERNEL_ID"] = kernel_id
    final.update(control_env)
    return final


def resolve_spec_path(path: str, resource_dir: str) -> str:
    """A relative path in a kernelspec's config is relative to the kernelspec's folder."""
    if path and not os.path.isabs(path) and resource_dir:
        return os.path.join(resource_dir, path)
    return path


async def after_launch(
    settings: BackendProvisionerTraits,
    sidecar: Sidecar,
    *,
    cwd: str,
    env: dict[str, str],
    kernel_id: str,
    defs_dir: str,
    models: list[ModelInfo] | None,
    log: logging.Logger,
    cgroups: KernelCgroups | None = None,
) -> int | None:
    """After every launch: the bootstrap script, then the sidecar (services and models auto-start
    on the first launch only), each service in a cgroup of its own beside the kernel's (``cgroups``).
    Returns the bootstrap script's exit code."""
    code = await run_bootstrap_script(
        settings.bootstrap_script, cwd=cwd, env=env, timeout=settings.bootstrap_timeout, log=log,
    )
    await sidecar.launched(
        [*settings.intrinsic_services, *settings.autostart_services],
        wait=settings.autostart_wait,
        env=dict(env),
        home=cwd,
        kernel_id=kernel_id,
        runtime_path=settings.runtime_path,
        defs_dir=defs_dir,
        policies=dict(settings.service_policies),
        start_timeout=settings.service_start_timeout,
        stop_grace=settings.service_stop_grace,
        command_timeout=settings.prestart_command_timeout,
        log_max_bytes=settings.service_log_max_bytes,
        log_backups=settings.service_log_backups,
        bind_address=settings.service_bind_address,
        cgroups=cgroups,
    )
    await sidecar.start_models(models or [])
    return code


def reap_launch(marker: str, monitor: ProcessMonitor | None, pid: int | None, start: float | None) -> list[int]:
    """Kill what a stopped launch left (marked processes, the kernel's remembered descendants);
    remove the kernel's work folder if it could not. Blocking: run it in a worker thread."""
    extra = monitor.descendants(pid, start) if monitor is not None and pid else []
    if monitor is not None and pid and start is not None:
        monitor.unwatch(pid, start)
    killed = leftovers.terminate_marked(marker.__eq__, LEFTOVER_GRACE, extra)
    if pid:  # a killed kernel could not remove its work folder
        leftovers.remove_stale_folders(owner=pid)
    return killed


def sidecar_for(settings: BackendProvisionerTraits, log: logging.Logger) -> Sidecar:
    return Sidecar(log, model_restart_after_unhealthy=settings.model_restart_after_unhealthy)

