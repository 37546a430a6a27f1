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
from traitlets import Dict, Float, List, Unicode, default

from .environment import build_child_environment, language_bin_dirs, language_variables


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
        help="Settings for the kernel process itself (for example {\"cflags\": \"-O2\"}); "
        "passed as JSON in BACKEND_KERNEL_OPTIONS and applied to the kernel's own traits.",
    )
    runtime_path = Unicode(
        config=True,
        help="The kernel's runtime (interpreter) offered to service templates as {runtime_path}; "
        "default: the Python running the Jupyter server.",
    )

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
        self.child_env = env
        kwargs["env"] = env
        return await super().pre_launch(**kwargs)

    async def post_launch(self, **kwargs: Any) -> None:
        await super().post_launch(**kwargs)
        await self._run_bootstrap(kwargs.get("cwd"))

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
