"""A kernel's cgroups across its launches, and how its death is told.

Why a cgroup per launch: the kernel and every program its cells start are
held to the limits together (children inherit the cgroup, and no process can
leave it); the cgroup's own counters say whether the OOM killer struck, which
neither an exit code (SIGKILL is SIGKILL) nor a process table can; and at the
end every member, however it detached itself, is found and killed. The leaf
is made fresh for each launch, so its peak memory and OOM count are that
launch's alone; the tree (with the services' leaves) lives as long as the kernel.

Where no cgroup can be made (no permission, no memory controller, a v2 parent
without delegated controllers) the kernel starts unlimited: with a warning, once
per kernel, when limits were asked for; silently otherwise.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from backend_kernel_provisioner.common.cgroups import CGROUP_ENV, Cgroup, joining_argv
from backend_kernel_provisioner.common.childproc import describe_exit
from backend_kernel_provisioner.common.kernel_cgroups import KernelCgroups
from backend_kernel_provisioner.common.offload import in_worker
from backend_kernel_provisioner.common.resource_limits import Limits, format_bytes
from backend_kernel_provisioner.server.process_monitor import ProcessMonitor
from backend_kernel_provisioner.server.traits import BackendProvisionerTraits

#: How many of the biggest vanished processes an out-of-memory message names.
NAMED_PROCESSES = 3


@dataclass(frozen=True)
class DeathReport:
    """A death of the kernel's own: the user's message, whether it was out of memory, the launch's counters,
    and the runner's ``oom`` event (None for other deaths)."""

    message: str
    oom: bool
    usage: dict[str, Any]
    oom_event: dict[str, Any] | None


class KernelLimits:
    """Makes each launch's cgroup, puts the kernel in it, reads it when the kernel dies, removes it at the end."""

    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        self.tree: KernelCgroups | None = None
        self.cgroup: Cgroup | None = None
        self.limits = Limits()
        self._warned = False

    def prepare(self, settings: BackendProvisionerTraits, kernel_id: str) -> None:
        """Before a launch: a fresh leaf for the kernel with the limits asked for now (blocking: cgroupfs)."""
        self.limits = settings.resource_limits()
        self.cgroup = None
        if not (settings.use_cgroups or self.limits):
            return
        try:
            if self.tree is None:
                self.tree = KernelCgroups.for_kernel(kernel_id, settings.cgroup_parent)
            self.cgroup = self.tree.kernel(self.limits)
        except OSError as exc:
            self._cannot(exc)

    def _cannot(self, exc: OSError) -> None:
        if self.limits and not self._warned:
            self.log.warning("kernel limits (%s) are not enforced: no cgroup could be made (%s); the kernel starts "
                             "without them", self.limits.describe(), exc)
            self._warned = True
        elif not self.limits:
            self.log.debug("no cgroup for the kernel: %s", exc)
        self.cgroup = None

    def environment(self) -> dict[str, str]:
        """What the kernel is told: its cgroup (for ``%limits`` and a cell's out-of-memory message) and
        ``MEM_LIMIT``/``CPU_LIMIT`` as jupyter-resource-usage reads them (only limits really enforced)."""
        if self.cgroup is None:
            return {}
        env = {CGROUP_ENV: self.cgroup.to_env()}
        if self.limits.memory:
            env["MEM_LIMIT"] = str(self.limits.memory)
        if self.limits.cpu:
            env["CPU_LIMIT"] = f"{self.limits.cpu:g}"
        return env

    def command(self, argv: list[str]) -> list[str]:
        """The kernel's command line, joining its cgroup before it starts, so nothing escapes it."""
        return joining_argv(self.cgroup.procs_files if self.cgroup is not None else [], argv)

    def out_of_memory(self) -> bool:
        """Whether the OOM killer struck in this launch's cgroup (the leaf is the launch's own)."""
        return self.cgroup is not None and self.cgroup.oom_kills() > 0

    async def report_death(self, pid: int | None, returncode: int, monitor: ProcessMonitor | None,
                           kernel_id: str) -> DeathReport:
        """What to tell of a launch's kernel that ended by itself; the local provisioner and a remote kernel's
        launcher tell it the same way (the process monitor is asked only after an OOM kill: it logs)."""
        oom = await in_worker(self.out_of_memory)
        vanished = await in_worker(monitor.report_vanished) if monitor is not None and oom else []
        message = await in_worker(self.describe_death, pid, returncode, vanished, oom)
        usage = await in_worker(self.usage)
        # the runner's event for a kernel killed for memory
        event = ({"type": "oom", "event": "oom", "key": "kernel:oom", "kernel_id": kernel_id, "message": message,
                  **usage, "processes": vanished[:5]} if oom else None)
        return DeathReport(message, oom, usage, event)

    def describe_death(self, pid: int | None, returncode: int, vanished: list[dict[str, Any]], oom: bool) -> str:
        """How the launch's kernel ended by itself, for the user (``vanished``: the process monitor's report)."""
        who = f"The kernel (pid {pid})" if pid else "The kernel"
        cgroup = self.cgroup
        if cgroup is not None and oom:
            limit = cgroup.memory_limit()
            text = (f"{who} was killed: out of memory — limit {format_bytes(limit) if limit else 'none (the machine)'}"
                    f", peak {format_bytes(cgroup.memory_peak())}")
            biggest = [p for p in vanished if p.get("pid") == pid or (pid and _descends(p, pid))][:NAMED_PROCESSES]
            if biggest:
                text += "; biggest processes when last seen: " + ", ".join(
                    f"{_command(p['cmdline'])} (pid {p['pid']}, {format_bytes(int(p['rss_bytes']))})" for p in biggest)
            return text + ". Its variables are lost."
        return f"{who} died: {describe_exit(returncode)}. Its variables are lost."

    def usage(self) -> dict[str, Any]:
        """The launch's counters now (for the event and the log)."""
        cgroup = self.cgroup
        if cgroup is None:
            return {}
        return {"memory_limit": cgroup.memory_limit(), "memory_peak": cgroup.memory_peak(),
                "oom_kills": cgroup.oom_kills(), "cpu_seconds": cgroup.cpu_seconds()}

    def end_launch(self) -> None:
        """After a launch stopped: kill whatever is left in its leaf and remove it (blocking)."""
        cgroup, self.cgroup = self.cgroup, None
        if cgroup is not None and not cgroup.remove():
            self.log.warning("kernel cgroup %s could not be removed", cgroup.unique_dirs[0])

    def remove(self) -> None:
        """The kernel is gone for good: its whole tree (services' leaves too) goes (blocking)."""
        self.end_launch()
        tree, self.tree = self.tree, None
        if tree is not None and not tree.remove():
            self.log.warning("kernel cgroups %s could not be removed", tree.root.unique_dirs[0])


def _descends(process: dict[str, Any], pid: int) -> bool:
    return any(parent.get("pid") == pid for parent in process.get("parents", []))


def _command(cmdline: str) -> str:
    words = cmdline.split()
    return os.path.basename(words[0]) + (" " + " ".join(words[1:3]) if len(words) > 1 else "") if words else "?"
