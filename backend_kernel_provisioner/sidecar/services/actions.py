"""Prestart actions: small steps run in order before a service (or a model server) starts.

Every template is expanded against the variables known so far, so an action's
``ref`` result is visible to the actions and the command after it.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import stat
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from backend_kernel_provisioner.common.cgroups import Cgroup
from backend_kernel_provisioner.common.childproc import signal_group, spawn
from backend_kernel_provisioner.sidecar.services.definitions import (
    PrestartAction,
    ServiceDefinitionError,
    expand,
    parse_action,
)
from backend_kernel_provisioner.sidecar.services.requests import expand_argv

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
        cgroup: Cgroup | None = None,
    ) -> None:
        self.source = source
        self.cgroup = cgroup  # the service's: its prestart commands are held to its limits, not the server's
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
        path = self._t(args["filename"], variables, f"{where} filename")
        text = "".join(self._t(line, variables, f"{where} body") + "\n" for line in args["body"])
        append = bool(args.get("append"))
        fd, created = self._open_for_writing(path, append, where)
        with os.fdopen(fd, "a" if append else "w", encoding="utf-8") as fh:
            if "mode" in args or created:  # appending keeps the file's mode unless one is given
                os.fchmod(fd, int(args.get("mode", "644"), 8))
            fh.write(text)

    def _open_for_writing(self, path: str, append: bool, where: str) -> tuple[int, bool]:
        """Open ``path`` to write without following a symlink at its last component; (fd, created).

        A link in the user's folder must not turn a prestart write (and its mode)
        onto a file elsewhere; a FIFO or device must not block or be written.
        """
        flags = os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | (os.O_APPEND if append else 0)
        try:
            try:
                return os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600), True
            except FileExistsError:
                fd = os.open(path, flags)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ActionError(f"{self.source}: {where}: refusing to write {path}: it is a symbolic link "
                                  "(prestart writes never follow links)") from None
            raise
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ActionError(f"{self.source}: {where}: refusing to write {path}: not a regular file")
        if not append:
            os.ftruncate(fd, 0)
        return fd, False

    async def _do_write_tempfile(self, args: dict[str, Any], variables: dict[str, Any], where: str) -> str:
        text = "".join(self._t(line, variables, f"{where} body") for line in args["body"])
        fd, path = tempfile.mkstemp(suffix=".py", dir=self.tempdir)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            os.fchmod(fd, int(args.get("mode", "644"), 8))
            fh.write(text)
        return path

    async def _do_mkdir(self, args: dict[str, Any], variables: dict[str, Any], where: str) -> None:
        Path(self._t(args["path"], variables, f"{where} path")).mkdir(parents=True, exist_ok=True)

    async def _do_log(self, args: dict[str, Any], variables: dict[str, Any], where: str) -> None:
        message = args.get("message", args.get("body", ""))
        if isinstance(message, list):  # some images give body as lines
            message = "\n".join(message)
        self.log(logging.DEBUG if args.get("debug") else logging.INFO, self._t(message, variables, f"{where} message"))

    async def _do_run_command(self, args: dict[str, Any], variables: dict[str, Any], where: str) -> dict[str, Any]:
        argv = expand_argv(args["command"], variables, f"{self.source}: {where} command")
        try:
            proc = await spawn(argv, cwd=self.cwd, env=self.env, cgroup=self.cgroup)
        except OSError as exc:
            raise ActionError(f"{self.source}: {where}: cannot run {argv[0]!r}: {exc.strerror or exc}") from None
        try:
            out, err = await asyncio.wait_for(_communicate_capped(proc), self.command_timeout)
        except OutputTooLarge as exc:
            raise ActionError(f"{self.source}: {where}: {argv[0]!r} {exc}") from None
        except asyncio.TimeoutError:  # _communicate_capped killed the command's group and waited for it
            raise ActionError(
                f"{self.source}: {where}: {argv[0]!r} did not finish within {self.command_timeout:g} s"
            ) from None
        finally:
            if proc.returncode is None:
                signal_group(proc.pid, signal.SIGKILL)
        # Verbatim, trailing newline included, as the runner gave it: a template that wants one line
        # writes it with its own separator, and output that is data (a key, a file body) stays intact.
        stdout, stderr = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
        result = {"out": stdout, "err": stderr, "exit_code": proc.returncode}
        if args.get("echo"):
            self.log(logging.INFO, f"{argv[0]}: {(stdout + stderr).rstrip()}")
        if proc.returncode:
            self.log(logging.WARNING, f"{self.source}: {where}: {argv[0]!r} exited with code {proc.returncode}")
        return result


#: A prestart command's output becomes template values: more than this is a mistake (or an attack
#: on the server's memory), refused instead of read into memory.
MAX_COMMAND_OUTPUT = 1024 * 1024


class OutputTooLarge(Exception):
    """A prestart command printed more than :data:`MAX_COMMAND_OUTPUT` on one stream."""


async def _read_capped(stream: asyncio.StreamReader | None, name: str) -> bytes:
    if stream is None:
        return b""
    data = bytearray()
    while len(data) <= MAX_COMMAND_OUTPUT:
        chunk = await stream.read(MAX_COMMAND_OUTPUT + 1 - len(data))
        if not chunk:
            return bytes(data)
        data += chunk
    raise OutputTooLarge(f"printed more than {MAX_COMMAND_OUTPUT // 1024} KiB on {name}")


async def _communicate_capped(proc: asyncio.subprocess.Process) -> tuple[bytes, bytes]:
    """``communicate()`` that stops at the cap: the command's group is killed and its pipes drained.

    Draining matters: a reader that stopped with a full buffer pauses its pipe,
    and ``proc.wait()`` would then wait for an end of file nobody reads.
    """
    readers = [asyncio.ensure_future(_read_capped(proc.stdout, "stdout")),
               asyncio.ensure_future(_read_capped(proc.stderr, "stderr"))]
    try:
        out, err = await asyncio.gather(*readers)
    except BaseException:
        signal_group(proc.pid, signal.SIGKILL)
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        await asyncio.gather(_drain(proc.stdout), _drain(proc.stderr))
        await proc.wait()
        raise
    await proc.wait()
    return out, err


async def _drain(stream: asyncio.StreamReader | None) -> None:
    while stream is not None and await stream.read(1 << 16):
        pass


async def run_prestart_actions(
    actions: Iterable[PrestartAction | dict[str, Any]],
    variables: Mapping[str, Any],
    source_name: str,
    **context: Any,
) -> dict[str, Any]:
    """Run prestart actions (parsed or raw dicts); returns the variables with the ``ref`` results.

    ``context``: ``cwd``, ``env``, ``tempdir``, ``log(level, message)``, ``command_timeout``, ``cgroup``.
    Errors are :class:`ServiceDefinitionError` naming ``source_name``, the action and the field.
    """
    return await PrestartRunner(source_name, **context).run(actions, dict(variables))
