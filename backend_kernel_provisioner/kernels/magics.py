"""Line magics shared by all backend kernels, kept in a registry.

Why a registry: other parts (services, batch mode) add their own magics with
``register_magic`` without editing the kernel class. A magic is a leading line
of a cell, ``%name arguments`` - or the same behind the language's line comment
(``// %flags -O2``) so the cell stays valid source. Only registered names are
magics; any other ``%`` line is left to the language (Octave comments, say).

Help comes from the registry, never from the language: ``%name?`` (or ``?%name``,
``%name??``, IPython's spellings) is ``%pinfo name`` and prints that magic's help;
``%lsmagic`` prints one line for each magic.
"""

from __future__ import annotations

import inspect
import re
import textwrap
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
#: The magic that ``%name?`` stands for.
HELP_MAGIC = "pinfo"


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
    line numbers still match the cell. ``%name?`` is ``(HELP_MAGIC, name)``.
    """
    prefix = re.escape(comment_prefix) + r"\s*" if comment_prefix else ""
    pattern = re.compile(rf"^\s*(?:{prefix})?(\?{{0,2}})%([A-Za-z_][\w-]*)(\?{{0,2}})(?:\s+(.*?))?\s*$")
    lines = code.split("\n")
    found: list[tuple[str, str]] = []
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        match = pattern.match(line)
        if not match or match.group(2) not in _REGISTRY:
            break
        asks_help = bool(match.group(1) or match.group(3))
        if asks_help and match.group(4):
            break  # `%env? x` is nobody's syntax: the language's
        found.append((HELP_MAGIC, match.group(2)) if asks_help else (match.group(2), match.group(4) or ""))
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


def summary(entry: Magic) -> str:
    """One line for ``%lsmagic``: the help's first sentence (which starts with the magic and its usage)."""
    text, depth, end = entry.help.strip(), 0, None
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and char in ".;" and text[i + 1:i + 2] in (" ", "\n", ""):
            end = i
            break
    first = text[:end] or "(no help written)"
    return first if first.startswith(f"%{entry.name}") else f"%{entry.name}: {first}"


@magic("lsmagic", "%lsmagic lists the magics this kernel understands, one line each.")
def _lsmagic(kernel: Any, argument: str) -> int:
    lines = [summary(entry) for entry in sorted(_REGISTRY.values(), key=lambda m: m.name)]
    kernel.stream("stdout", "\n".join(lines) + "\n%NAME? shows the whole help of %NAME.\n")
    return 0


@magic(HELP_MAGIC, "%pinfo NAME shows the help of %NAME; so do %NAME? and ?%NAME.")
def _pinfo(kernel: Any, argument: str) -> int:
    name = argument.strip().lstrip("?%").rstrip("?")
    entry = _REGISTRY.get(name)
    if entry is None:
        raise MagicError(f"no magic %{name} in this kernel (%lsmagic lists them)" if name else "usage: %pinfo NAME")
    text = entry.help.strip() or f"%{name}: no help written for this magic."
    kernel.stream("stdout", "\n".join(textwrap.fill(part, 100) for part in text.split("\n")) + "\n")
    return 0
