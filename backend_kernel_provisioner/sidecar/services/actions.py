"""Prestart actions: small steps run in order before a service (or a model server) starts.

Every template is expanded against the variables known so far, so an action's
``ref`` result is visible to the actions and the command after it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from backend_kernel_provisioner.common.childproc import signal_group, spawn
from backend_kernel_provisioner.sidecar.services.definitions import (
    PrestartAction,
    ServiceDefinitionError,
    expand,
    parse_action,
)

LogFn = Callable[[int, str], None]


class ActionError(ServiceDefinitionError):
    """A prestart action that could not be carried out; the message names the service and action."""


class PrestartRunner:
    """Carries the context every action needs (where, with which environment, how to log)."""

    def __init__(
        self,
        source: str,
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        tempdir: str | None = None,
        log: LogFn | None = None,
        command_timeout: float = 30.0,
    ) -> None:
        self.source = source
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self.tempdir = tempdir
        self.log = log or (lambda level, msg: logging.getLogger(__name__).log(level, msg))
        self.command_timeout = command_timeout

    def _t(self, template: str, variables: Mapping[str, Any], where: str) -> str:
        return expand(template, variables, f"{self.source}: {where}")

    async def run(
        self, actions: Iterable[PrestartAction | dict[str, Any]], variables: dict[str, Any]
    ) -> dict[str, Any]:
        """Run every action; returns ``variables`` with each ``ref`` result added."""
        for index, raw in enumerate(actions):
            where = f"prestart[{index}]"
            action = raw if isinstance(raw, PrestartAction) else parse_action(raw, f"{self.source}: {where}")
            handler = getattr(self, f"_do_{action.action}")
            try:
                result = await handler(action.args, variables, f"{where} ({action.action})")
            except ServiceDefinitionError:
                raise
            except OSError as exc:
                raise ActionError(f"{self.source}: {where} ({action.action}) failed: {exc}") from None
            if action.ref:
                variables[action.ref] = result
        return variables

    async def _do_write_file(self, args: dict[str, Any], variables: dict[str, Any], where: str) -> None:
        path = Path(self._t(args["filename"], variables, f"{where} filename"))
        text = "".join(self._t(line, variables, f"{where} body") + "\n" for line in args["body"])
        existed = path.exists()
        with open(path, "a" if args.get("append") else "w", encoding="utf-8") as fh:
            fh.write(text)
        if "mode" in args or not existed:  # appending keeps the file's mode unless one is given
            os.chmod(path, int(args.get("mode", "644"), 8))

    async def _do_write_tempfile(self, args: dict[str, Any], variables: dict[str, Any], where: str) -> str:
        text = "".join(self._t(line, variables, f"{where} body") for line in args["body"])
        fd, path = tempfile.mkstemp(suffix=".py", dir=self.tempdir)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(path, int(args.get("mode", "644"), 8))
        return path

    async def _do_mkdir(self, args: dict[str, Any], variables: dict[str, Any], where: str) -> None:
        Path(self._t(args["path"], variables, f"{where} path")).mkdir(parents=True, exist_ok=True)

    async def _do_log(self, args: dict[str, Any], variables: dict[str, Any], where: str) -> None:
        message = args.get("message", args.get("body", ""))
        if isinstance(message, list):  # some images give body as lines
            message = "\n".join(message)
        self.log(logging.DEBUG if args.get("debug") else logging.INFO, self._t(message, variables, f"{where} message"))

    async def _do_run_command(self, args: dict[str, Any], variables: dict[str, Any], where: str) -> dict[str, Any]:
        argv = [self._t(part, variables, f"{where} command") for part in args["command"]]
        try:
            proc = await spawn(argv, cwd=self.cwd, env=self.env)
        except OSError as exc:
            raise ActionError(f"{self.source}: {where}: cannot run {argv[0]!r}: {exc.strerror or exc}") from None
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self.command_timeout)
        except asyncio.TimeoutError:
            signal_group(proc.pid, signal.SIGKILL)
            await proc.wait()
            raise ActionError(
                f"{self.source}: {where}: {argv[0]!r} did not finish within {self.command_timeout:g} s"
            ) from None
        finally:
            if proc.returncode is None:
                signal_group(proc.pid, signal.SIGKILL)
        result = {
            "out": out.decode("utf-8", "replace").rstrip("\n"),
            "err": err.decode("utf-8", "replace").rstrip("\n"),
            "exit_code": proc.returncode,
        }
        if args.get("echo"):
            self.log(logging.INFO, f"{argv[0]}: {result['out']}{result['err']}")
        if proc.returncode:
            self.log(logging.WARNING, f"{self.source}: {where}: {argv[0]!r} exited with code {proc.returncode}")
        return result


async def run_prestart_actions(
    actions: Iterable[PrestartAction | dict[str, Any]],
    variables: Mapping[str, Any],
    source_name: str,
    **context: Any,
) -> dict[str, Any]:
    """Run prestart actions (parsed or raw dicts); returns the variables with the ``ref`` results.

    ``context``: ``cwd``, ``env``, ``tempdir``, ``log(level, message)``, ``command_timeout``.
    Errors are :class:`ServiceDefinitionError` naming ``source_name``, the action and the field.
    """
    return await PrestartRunner(source_name, **context).run(actions, dict(variables))
