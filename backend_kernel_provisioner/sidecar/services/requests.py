"""What a start request may ask of a service definition: its arguments, its variables, its command.

The runner let the platform pass ``options.arguments`` and ``options.envs``
with a start request; only names the definition allows are accepted, and a
caller cannot override what the kernel or the definition already sets.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from backend_kernel_provisioner.sidecar.services.definitions import ServiceDefinition, expand


class StartRefused(Exception):
    """A start request that cannot be honoured; the message says why."""


def caller_arguments(defn: ServiceDefinition, caller: Mapping[str, Any]) -> list[str]:
    """Default arguments, then caller arguments (only allowed names; a caller value replaces a default)."""
    args: dict[str, Any] = dict(defn.default_arguments)
    allowed = set(defn.allowed_arguments or ())
    for key, value in caller.items():
        if key not in allowed:
            raise StartRefused(f"argument {key!r} is not allowed for service {defn.name!r} "
                               f"(allowed: {', '.join(sorted(allowed)) or 'none'})")
        if not (value is None or isinstance(value, str)
                or (isinstance(value, list) and all(isinstance(v, str) for v in value))):
            raise StartRefused(f"argument {key!r}: value must be null, a string or a list of strings")
        args[key] = value
    argv: list[str] = []
    for key, value in args.items():
        argv.append(key)
        if isinstance(value, str):
            argv.append(value)
        elif isinstance(value, list):
            argv.extend(value)
    return argv


def caller_env(defn: ServiceDefinition, caller: Mapping[str, Any], kernel_env: Mapping[str, str]) -> dict[str, str]:
    """The caller's variables: allowed names only, never one the kernel or the definition sets."""
    allowed = set(defn.allowed_envs or ())
    result: dict[str, str] = {}
    for key, value in caller.items():
        if key not in allowed:
            raise StartRefused(f"environment variable {key!r} is not allowed for service {defn.name!r} "
                               f"(allowed: {', '.join(sorted(allowed)) or 'none'})")
        if key in kernel_env or key in defn.env:
            raise StartRefused(f"environment variable {key!r} is already set by the kernel; it cannot be overridden")
        if not isinstance(value, str):
            raise StartRefused(f"environment variable {key!r}: value must be a string")
        result[key] = value
    return result


#: Programs whose ``-c`` argument is a shell script (values substituted into it are shell-quoted).
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ash", "ksh", "mksh", "yash"})


def as_argv(command: str | Sequence[str]) -> list[str]:
    """A command as given: a string is a script for ``/bin/sh -c``, a list is the argv itself."""
    return ["/bin/sh", "-c", command] if isinstance(command, str) else [str(part) for part in command]


def shell_script_index(argv: Sequence[str]) -> int | None:
    """The index of the script in ``sh -c SCRIPT ...`` (``bash -ec``, ``sh -o pipefail -c``), else None."""
    if not argv or os.path.basename(argv[0]) not in SHELLS:
        return None
    seen_c = takes_value = False
    for index, arg in enumerate(argv[1:], 1):
        if takes_value:  # the argument of -o / +o
            takes_value = False
        elif arg == "--" or (arg[:1] in "-+" and len(arg) > 1):
            short = not arg.startswith("--")
            seen_c = seen_c or (short and "c" in arg[1:])
            takes_value = short and arg[-1] == "o"
        else:
            return index if seen_c else None
    return None


def expand_argv(parts: Sequence[str], variables: Mapping[str, Any], source: str) -> list[str]:
    """Expand each argv element; in a shell's ``-c`` script the substituted values are shell-quoted."""
    script = shell_script_index(parts)
    return [expand(part, variables, f"{source}[{i}]", quote=i == script) for i, part in enumerate(parts)]


def command_of(command: str | list[str], variables: Mapping[str, Any], source: str) -> list[str]:
    """A definition's command with its templates expanded: a shell string or an argv.

    A shell string is a script: every substituted value is shell-quoted (a working
    folder named ``home$(touch x)`` stays one word), so templates must not add quotes
    of their own around a placeholder. An argv element is one word already and is
    not quoted, except the script of ``sh -c SCRIPT``.
    """
    if isinstance(command, str):
        return as_argv(expand(command, variables, f"{source}: command", quote=True))
    return expand_argv(command, variables, f"{source}: command")
