"""A kernel's (or a service's) resource limits, as a value: memory, CPUs, processes.

One value type for every place a limit is given (provisioner traits, a
``start_kernel()`` keyword, a service policy) and every place it is enforced
(a cgroup here, a container engine, a pod), so that ``128M`` means the same
thing everywhere and every message prints it the same way (``128 MiB``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

#: Carries a launch's death (out of memory, a crash) into the next launch, whose kernel shows it on its first
#: cell: set by the provisioner (or a remote kernel's launcher), read and removed by the kernel.
PREVIOUS_DEATH_ENV = "BACKEND_KERNEL_PREVIOUS_DEATH"

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgtKMGT]?)(i?[bB]?)\s*")


def parse_memory(text: str | int | None, where: str = "memory_limit") -> int | None:
    """Bytes from ``128M``, ``128Mi``, ``512m``, ``2g``, ``1.5G`` or a plain number of bytes; None for
    ``""``/``0``. Units are binary, as Docker's and Kubernetes' ``Mi`` (a limit is never a decimal surprise)."""
    if text is None or text == "" or text == 0:
        return None
    if isinstance(text, int):
        return text if text > 0 else None
    match = _SIZE.fullmatch(str(text))
    if match is None:
        raise ValueError(f"{where}: {text!r} is not a size (for example 512M, 2Gi, 1.5G or a number of bytes)")
    value = int(float(match[1]) * _UNITS[match[2].lower()])
    if value <= 0:
        return None
    if value < 4 << 20:
        raise ValueError(f"{where}: {text!r} is below 4 MiB, too little for any kernel (did you mean {text}M?)")
    return value


def format_bytes(count: int | None) -> str:
    """``128 MiB``, ``1.5 GiB``, ``900 KiB``; ``unknown`` for None."""
    if count is None:
        return "unknown"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            value = count / size
            return f"{value:.0f} {unit}" if value >= 100 or value == int(value) else f"{value:.1f} {unit}"
    return f"{count} B"


@dataclass(frozen=True)
class Limits:
    """What a cgroup (or a container) is held to; None: no limit of that kind."""

    memory: int | None = None  # bytes
    cpu: float | None = None  # cores (0.5 = half of one core)
    pids: int | None = None  # processes and threads

    @classmethod
    def of(cls, memory: str | int | None = None, cpu: float | str | None = None, pids: int | str | None = None,
           where: str = "") -> Limits:
        """From the traits' (or a policy's) values: ``""``/``0`` mean no limit; a bad value names ``where``."""
        prefix = f"{where}." if where else ""
        try:
            cores = float(cpu) if cpu not in (None, "") else 0.0
            count = int(pids) if pids not in (None, "") else 0
        except (TypeError, ValueError):
            raise ValueError(f"{prefix}cpu_limit/pids_limit: not a number ({cpu!r}, {pids!r})") from None
        if cores < 0 or count < 0:
            raise ValueError(f"{prefix}cpu_limit/pids_limit: must not be negative ({cpu!r}, {pids!r})")
        return cls(parse_memory(memory, f"{prefix}memory_limit"), cores or None, count or None)

    @classmethod
    def from_mapping(cls, data: dict[str, Any], where: str) -> Limits:
        """From ``{"memory": "256M", "cpu": 0.5, "pids": 64}`` (a service policy's ``limits``); unknown keys
        are refused, naming them, rather than silently ignored."""
        unknown = set(data) - {"memory", "cpu", "pids"}
        if unknown:
            raise ValueError(f"{where}: unknown limit {', '.join(sorted(unknown))} (known: memory, cpu, pids)")
        return cls.of(data.get("memory"), data.get("cpu"), data.get("pids"), where=where)

    def __bool__(self) -> bool:
        return any(value is not None for value in (self.memory, self.cpu, self.pids))

    def describe(self) -> str:
        """``memory 128 MiB, cpu 0.5, pids 64`` (``no limits`` when none is set)."""
        parts = []
        if self.memory is not None:
            parts.append(f"memory {format_bytes(self.memory)}")
        if self.cpu is not None:
            parts.append(f"cpu {self.cpu:g}")
        if self.pids is not None:
            parts.append(f"pids {self.pids}")
        return ", ".join(parts) or "no limits"

    def as_json(self) -> dict[str, Any]:
        return {"memory": self.memory, "cpu": self.cpu, "pids": self.pids}
