"""``%limits``: the kernel's resource limits and what it uses of them now, in every backend kernel.

Why a magic: a person whose cell was just killed for memory wants to see how close
the kernel is to its limits before trying again (and someone without limits, that
there are none). The numbers are the kernel's cgroup's own counters
(``BACKEND_CGROUP``), which hold the kernel and every program its cells started;
``MEM_LIMIT`` and ``CPU_LIMIT`` are what the provisioner offered the kernel's
programs (jupyter-resource-usage reads ``MEM_LIMIT``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from backend_kernel_provisioner.common.cgroups import Cgroup
from backend_kernel_provisioner.common.resource_limits import format_bytes
from backend_kernel_provisioner.kernels.magics import register_magic

HELP = "%limits shows the kernel's memory, CPU and process limits and how much of each it uses now."
NO_CGROUP = "no cgroup: this kernel runs without limits"
#: Variables the provisioner sets beside the cgroup, shown as they are.
LIMIT_VARIABLES = ("MEM_LIMIT", "CPU_LIMIT")


def _known(value: Any, missing: str = "unknown") -> str:
    return missing if value is None else str(value)


def limits_text(cgroup: Cgroup | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The magic's report, one line per kind (the kernel's own cgroup and environment by default)."""
    environ = os.environ if environ is None else environ
    cgroup = cgroup if cgroup is not None else Cgroup.from_env(dict(environ))
    variables = [f"{name}={environ[name]}" for name in LIMIT_VARIABLES if environ.get(name)]
    if cgroup is None:
        return "\n".join([NO_CGROUP, *variables]) + "\n"
    memory_limit, cpu_limit = cgroup.memory_limit(), cgroup.cpu_limit()
    cpu_used = cgroup.cpu_seconds()
    pids_limit = cgroup.pids_limit()
    lines = [
        f"memory: {format_bytes(cgroup.memory_usage())} used, peak {format_bytes(cgroup.memory_peak())}, "
        + ('no limit' if memory_limit is None else f"limit {format_bytes(memory_limit)}"),
        f"cpu: {'unknown' if cpu_used is None else f'{cpu_used:.1f} s'} used, "
        + ('no limit' if cpu_limit is None else f"limit {cpu_limit:g} cores"),
        f"processes: {_known(cgroup.pids_current())} now, "
        + ("no limit" if pids_limit is None else f"limit {pids_limit}"),
        f"out-of-memory kills: {cgroup.oom_kills()}",
        f"refused process starts: {cgroup.pids_refusals()}",
    ]
    if variables:
        lines.append("environment: " + " ".join(variables))
    return "\n".join(lines) + "\n"


def _limits(kernel: Any, argument: str) -> int:
    """The magic in our own kernels (the registry of :mod:`.magics`)."""
    kernel.stream("stdout", limits_text())
    return 0


def register_kernel_magics() -> None:
    register_magic("limits", _limits, HELP)


def register_ipython(ipython: Any) -> None:
    """The same magic in backend-python (an IPython line magic)."""

    def limits(line: str = "") -> None:
        print(limits_text(), end="")

    limits.__doc__ = HELP
    ipython.register_magic_function(limits, magic_kind="line", magic_name="limits")


register_kernel_magics()  # importing this module is the hook our kernel framework needs (see __main__.py)
