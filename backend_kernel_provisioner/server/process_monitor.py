"""Remembers recent process tables so an out-of-memory notice can name what vanished.

The runner's step 6: on ``{"type": "oom"}`` the agent asks which process
trees were likely killed; we answer with the processes seen in the last
snapshots that are gone now, each with its parent chain.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from dataclasses import asdict, dataclass

from backend_kernel_provisioner.common.childproc import proc_stat

_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    ppid: int
    start_time: float  # seconds since boot
    vm_bytes: int
    rss_bytes: int
    cmdline: str


def _boot_uptime() -> float:
    with open("/proc/uptime") as fh:
        return float(fh.read().split()[0])


def read_process(pid: int) -> ProcessInfo | None:
    stat = proc_stat(pid)
    if stat is None:
        return None
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmdline = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None
    name, fields = stat
    return ProcessInfo(
        pid=pid,
        ppid=int(fields[1]),
        start_time=int(fields[19]) / _TICKS,
        vm_bytes=int(fields[20]),
        rss_bytes=int(fields[21]) * _PAGE,
        cmdline=cmdline or f"[{name}]",
    )


def process_table() -> dict[int, ProcessInfo]:
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = read_process(int(entry))
            if info is not None:
                table[info.pid] = info
    return table


#: At most this many remembered descendants per watched process.
MAX_LINEAGE = 10_000


def descendants_in(table: dict[int, ProcessInfo], pid: int, start_time: float | None) -> dict[int, float]:
    """Descendants of ``pid`` in one snapshot (pid → start time); empty when ``pid`` is absent or
    another process (a reused pid) than the one started at ``start_time``."""
    root = table.get(pid)
    if root is None or (start_time is not None and root.start_time != start_time):
        return {}
    children: dict[int, list[int]] = {}
    for info in table.values():
        children.setdefault(info.ppid, []).append(info.pid)
    found: dict[int, float] = {}
    todo = list(children.get(pid, []))
    while todo:
        current = todo.pop()
        if current not in found and current != pid:
            found[current] = table[current].start_time
            todo.extend(children.get(current, []))
    return found


class ProcessMonitor:
    """Keeps the last few process tables; ``report_vanished`` compares them with now."""

    #: One monitor per interval for the whole server process: the table is the machine's,
    #: so every kernel reading it separately would only repeat the same scan.
    _shared: dict[float, tuple[ProcessMonitor, int]] = {}

    def __init__(self, interval: float = 5.0, keep: int = 6, log: logging.Logger | None = None) -> None:
        self.interval = interval
        self.snapshots: deque[dict[int, ProcessInfo]] = deque(maxlen=keep)
        #: Watched roots ``(pid, start_time)`` → every descendant any snapshot saw (pid → start time).
        #: The snapshots rotate within seconds; a kernel's stop may come later than that.
        self.lineages: dict[tuple[int, float], dict[int, float]] = {}
        self.log = log or logging.getLogger(__name__)
        self._task: asyncio.Task | None = None

    @classmethod
    def acquire(cls, interval: float, log: logging.Logger | None = None) -> ProcessMonitor:
        """The running monitor for ``interval`` (started on first use); pair with :meth:`release`."""
        monitor, users = cls._shared.get(interval, (None, 0))
        if monitor is None:
            monitor = cls(interval, log=log)
            monitor.start()
        cls._shared[interval] = (monitor, users + 1)
        return monitor

    async def release(self) -> None:
        """One user less; the last one stops the monitor."""
        monitor, users = self._shared.get(self.interval, (None, 0))
        if monitor is not self:
            return
        if users > 1:
            self._shared[self.interval] = (self, users - 1)
            return
        del self._shared[self.interval]
        await self.stop()

    def snapshot(self) -> None:
        table = process_table()
        self.snapshots.append(table)
        for (pid, start_time), seen in list(self.lineages.items()):
            found = descendants_in(table, pid, start_time)
            if len(seen) + len(found) > MAX_LINEAGE:  # a fork bomb must not grow the server: keep the live
                for child in [c for c, t in seen.items() if c not in table or table[c].start_time != t]:
                    seen.pop(child, None)
            for child, child_start in found.items():
                if len(seen) < MAX_LINEAGE:
                    seen.setdefault(child, child_start)

    def watch(self, pid: int, start_time: float) -> None:
        """Remember every descendant of this process that a snapshot sees, until :meth:`unwatch`."""
        self.lineages.setdefault((pid, start_time), {})

    def unwatch(self, pid: int, start_time: float) -> None:
        self.lineages.pop((pid, start_time), None)

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop the snapshots. A blocking ``KernelManager`` (``jupyter run``) runs each call in a loop of its
        own, so the task may belong to a loop that is closed by now: then there is nothing left to stop."""
        task, self._task = self._task, None
        if task is None:
            return
        owner = task.get_loop()
        if owner is asyncio.get_running_loop():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        else:  # that loop never runs again: drop the task, without asyncio's "destroyed but pending"
            if not owner.is_closed():
                task.cancel()
            task._log_destroy_pending = False  # type: ignore[attr-defined]

    async def _run(self) -> None:
        # The first snapshot comes one interval in: at a kernel's start there is nothing of its own to
        # see yet, and a /proc walk then would compete with the kernel's start for the CPU.
        while True:
            await asyncio.sleep(self.interval)
            await asyncio.to_thread(self.snapshot)

    def descendants(self, pid: int, start_time: float | None = None) -> list[int]:
        """Remembered descendants of ``pid`` (started at ``start_time``) that still run (same pid *and* start time).

        Why: a kernel's programs that dropped their environment carry no launch
        marker, and once the kernel is gone they are reparented to init; the
        snapshots still know whose they were. Each snapshot's parent links are
        followed within that snapshot only, so a reused pid never mixes trees.
        """
        found: dict[int, float] = {}
        for table in list(self.snapshots):
            found.update(descendants_in(table, pid, start_time))
        for (root, root_start), seen in list(self.lineages.items()):
            if root == pid and (start_time is None or root_start == start_time):
                found.update(seen)
        alive = []
        for child, start in found.items():
            now = read_process(child)
            if now is not None and now.start_time == start:
                alive.append(child)
        return alive

    def report_vanished(self) -> list[dict]:
        """Processes remembered but gone now (biggest RSS first), each with its parent chain; logged."""
        now = process_table()
        remembered: dict[int, ProcessInfo] = {}
        for table in self.snapshots:
            remembered.update(table)
        uptime = _boot_uptime()
        vanished = [
            info for pid, info in remembered.items()
            if pid not in now or now[pid].start_time != info.start_time
        ]
        vanished.sort(key=lambda info: info.rss_bytes, reverse=True)
        report = []
        for info in vanished:
            chain: list[dict[str, object]] = []
            parent = info.ppid
            while parent and parent in remembered and len(chain) < 32:
                chain.append({"pid": parent, "cmdline": remembered[parent].cmdline})
                parent = remembered[parent].ppid
            entry = {**asdict(info), "elapsed": max(0.0, uptime - info.start_time), "parents": chain}
            report.append(entry)
            self.log.warning(
                "OOM suspect: pid=%d elapsed=%.0fs vm=%d rss=%d cmd=%s parents=%s",
                info.pid, entry["elapsed"], info.vm_bytes, info.rss_bytes, info.cmdline,
                " <- ".join(str(p["pid"]) for p in chain),
            )
        return report


