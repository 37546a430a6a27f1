"""Line magics shared by all backend kernels, kept in a registry.

Why a registry: other parts (services, batch mode) add their own magics with
``register_magic`` without editing the kernel class. A magic is a leading line
of a cell, ``%name arguments`` - or the same behind the language's line comment
(``// %flags -O2``) so the cell stays valid source. Only registered names are
magics; any other ``%`` line is left to the language (Octave comments, say).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

Handler = Callable[[Any, str], "int | None | Awaitable[int | None]"]


class MagicError(Exception):
    """A magic's argument was wrong; the message is shown to the user (exit code 1)."""


@dataclass(frozen=True)
class Magic:
    name: str
    handler: Handler
    help: str


_REGISTRY: dict[str, Magic] = {}


def register_magic(name: str, handler: Handler, help: str = "") -> None:
    """Make ``%name`` available in every backend kernel of this process.

    ``handler(kernel, argument_string)`` may be sync or async; it can print with
    ``kernel.stream("stdout", text)`` and returns an exit code (None means 0).
    """
    if not re.fullmatch(r"[A-Za-z_][\w-]*", name):
        raise ValueError(f"invalid magic name {name!r}")
    _REGISTRY[name] = Magic(name, handler, help)


def magic(name: str, help: str = "") -> Callable[[Handler], Handler]:
    """Decorator form of :func:`register_magic`."""

    def decorate(handler: Handler) -> Handler:
        register_magic(name, handler, help)
        return handler

    return decorate


def registered() -> dict[str, Magic]:
    return dict(_REGISTRY)


def split_magics(code: str, comment_prefix: str = "") -> tuple[list[tuple[str, str]], str]:
    """Leading magic lines of ``code`` as (name, argument) pairs, and the remaining code.

    The remaining code keeps its line count (magic lines become blank) so compiler
    line numbers still match the cell.
    """
    prefix = re.escape(comment_prefix) + r"\s*" if comment_prefix else ""
    pattern = re.compile(rf"^\s*(?:{prefix})?%([A-Za-z_][\w-]*)(?:\s+(.*?))?\s*$")
    lines = code.split("\n")
    found: list[tuple[str, str]] = []
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        match = pattern.match(line)
        if not match or match.group(1) not in _REGISTRY:
            break
        found.append((match.group(1), match.group(2) or ""))
        lines[index] = ""
    rest = "\n".join(lines)
    return found, rest if rest.strip() else ""


async def run_magic(kernel: Any, name: str, argument: str) -> int:
    """Run one registered magic; a MagicError becomes a message on stderr and exit code 1."""
    entry = _REGISTRY[name]
    try:
        result = entry.handler(kernel, argument)
        if inspect.isawaitable(result):
            result = await result
    except MagicError as exc:
        kernel.stream("stderr", f"%{name}: {exc}\n")
        return 1
    return int(result or 0)


# -- magics every kernel has -------------------------------------------------------------


@magic("env", "%env NAME=VALUE sets a variable for the programs this kernel runs; "
              "%env NAME shows one, %env lists them, %env -u NAME removes one.")
def _env(kernel: Any, argument: str) -> int:
    argument = argument.strip()
    overrides: dict[str, str] = kernel.env_overrides
    if not argument:
        for key, value in sorted(overrides.items()):
            kernel.stream("stdout", f"{key}={value}\n")
        return 0
    if argument.startswith("-u "):
        overrides.pop(argument[3:].strip(), None)
        return 0
    if "=" not in argument:
        env = kernel.child_env()
        if argument not in env:
            raise MagicError(f"{argument} is not set")
        kernel.stream("stdout", f"{env[argument]}\n")
        return 0
    key, _, value = argument.partition("=")
    key = key.strip()
    if not re.fullmatch(r"[A-Za-z_]\w*", key):
        raise MagicError(f"invalid variable name {key!r} (use %env NAME=VALUE)")
    kernel.env_overrides = {**overrides, key: value}
    return 0


@magic("lsmagic", "%lsmagic lists the magics this kernel understands.")
def _lsmagic(kernel: Any, argument: str) -> int:
    for entry in sorted(_REGISTRY.values(), key=lambda m: m.name):
        kernel.stream("stdout", f"%{entry.name}: {entry.help}\n")
    return 0
