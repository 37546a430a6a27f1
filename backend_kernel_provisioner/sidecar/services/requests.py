"""What a start request may ask of a service definition: its arguments, its variables, its command.

The runner let the platform pass ``options.arguments`` and ``options.envs``
with a start request; only names the definition allows are accepted, and a
caller cannot override what the kernel or the definition already sets.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def command_of(command: str | list[str], variables: Mapping[str, Any], source: str) -> list[str]:
    """A definition's (or model's) command with its templates expanded: a shell string or an argv."""
    if isinstance(command, str):
        return ["/bin/sh", "-c", expand(command, variables, f"{source}: command")]
    return [expand(part, variables, f"{source}: command[{i}]") for i, part in enumerate(command)]
