"""``%services``, ``%service start|stop|status|log NAME``, ``%apps``: kernel-agnostic handlers.

Each handler takes the magic's argument line, asks the provisioner over the
control channel, and returns text; a failure raises :class:`MagicError`
(kernels turn it into an error with exit code 1).
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Callable
from typing import Any

from backend_kernel_provisioner.common.control import ControlError, call
from backend_kernel_provisioner.kernels.magics import MagicError, register_magic

USAGE = (
    "usage: %service start NAME [--port N] [--arg NAME=VALUE]... [--env NAME=VALUE]...\n"
    "       %service stop NAME | %service status NAME | %service log NAME [LINES]"
)


def _call(op: str, **args: Any) -> Any:
    try:
        return call(op, **args)
    except ControlError as exc:
        raise MagicError(str(exc)) from None


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    cells = [[title for _, title in columns]]
    cells += [["" if r.get(key) in (None, []) else _cell(r.get(key)) for key, _ in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)


def _cell(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def services_magic(line: str = "") -> str:
    """``%services``: every known service with its status."""
    rows = _call("list")
    if not rows:
        return "no services defined"
    return _table(rows, [("name", "NAME"), ("status", "STATUS"), ("ports", "PORTS"), ("pid", "PID"),
                         ("restarts", "RESTARTS"), ("error", "INFO")])


def apps_magic(line: str = "") -> str:
    """``%apps [NAME]``: the service definitions as apps."""
    rows = _call("apps", name=line.strip() or None)
    if not rows:
        return "no apps"
    return _table(rows, [("name", "NAME"), ("url_template", "URL TEMPLATE"),
                         ("allowed_arguments", "ARGUMENTS"), ("allowed_envs", "ENVS")])


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    result = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise MagicError(f"{flag} expects NAME=VALUE, got {item!r}\n{USAGE}")
        result[key] = value
    return result


def _parse_start(words: list[str]) -> dict[str, Any]:
    info: dict[str, Any] = {"name": words[0]}
    args: list[str] = []
    envs: list[str] = []
    rest = iter(words[1:])
    for word in rest:
        value = next(rest, None)
        if value is None or word not in ("--port", "--arg", "--env", "--protocol"):
            raise MagicError(f"unexpected {word!r}\n{USAGE}")
        if word == "--port":
            if not value.isdigit():
                raise MagicError(f"--port expects a number, got {value!r}")
            info["port"] = int(value)
        elif word == "--protocol":
            info["protocol"] = value
        else:
            (args if word == "--arg" else envs).append(value)
    info["options"] = {"arguments": _pairs(args, "--arg"), "envs": _pairs(envs, "--env")}
    return info


def service_magic(line: str) -> str:
    """``%service start|stop|status|log NAME ...``."""
    words = shlex.split(line)
    if len(words) < 2:
        raise MagicError(USAGE)
    action, name = words[0], words[1]
    if action == "start":
        info = _parse_start(words[1:])
        result = _call("start", **info)
        if result.get("status") == "failed":
            raise MagicError(f"service {name} failed: {result.get('error')}")
        ports = ", ".join(map(str, result.get("ports") or []))
        return f"service {name}: {result['status']}" + (f" on port {ports}" if ports else "")
    if action == "stop":
        result = _call("stop", name=name)
        if result.get("status") == "failed":
            raise MagicError(result.get("error") or f"cannot stop {name}")
        return f"service {name}: stopped"
    if action == "status":
        status = _call("status", name=name)
        return "\n".join(f"{k}: {_cell(v)}" for k, v in status.items() if v not in (None, [], ""))
    if action == "log":
        tail = int(words[2]) if len(words) > 2 and words[2].isdigit() else None
        return _call("log", name=name, tail=tail)
    raise MagicError(f"unknown action {action!r}\n{USAGE}")


#: name → handler(line) -> text; what a kernel framework registers.
MAGICS: dict[str, Callable[[str], str]] = {
    "services": services_magic,
    "service": service_magic,
    "apps": apps_magic,
}
HELP = {
    "services": "%services lists this kernel's services with their status, ports and restarts.",
    "service": "%service start NAME [--port N] [--arg NAME=VALUE] [--env NAME=VALUE] | stop NAME | "
               "status NAME | log NAME [LINES]",
    "apps": "%apps [NAME] lists the service definitions as apps (url template, allowed arguments/envs).",
}


def register_kernel_magics() -> None:
    """Register the magics in our kernels' registry (:mod:`backend_kernel_provisioner.kernels.magics`)."""

    def adapt(handler: Callable[[str], str]) -> Callable[[Any, str], Any]:
        async def run(kernel: Any, argument: str) -> int:
            # the control call may wait for a port: keep the kernel's loop responsive
            text = await asyncio.to_thread(handler, argument)
            kernel.stream("stdout", text if text.endswith("\n") else text + "\n")
            return 0
        return run

    for name, handler in MAGICS.items():
        register_magic(name, adapt(handler), HELP[name])


def register_ipython(ipython: Any) -> None:
    """Register the magics with an IPython shell (backend-python)."""
    from IPython.core.error import UsageError

    def wrap(handler: Callable[[str], str]) -> Callable[[str], None]:
        def magic(line: str = "") -> None:
            try:
                text = handler(line)
            except MagicError as exc:
                raise UsageError(str(exc)) from None
            print(text)
        magic.__doc__ = handler.__doc__
        return magic

    for name, handler in MAGICS.items():
        ipython.register_magic_function(wrap(handler), magic_kind="line", magic_name=name)


register_kernel_magics()  # importing this module is the hook our kernel framework needs
