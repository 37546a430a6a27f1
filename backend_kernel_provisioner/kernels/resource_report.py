"""Tell the person who ran a cell that the kernel's limits stopped it, in the cell's own output.

Why here, in the kernel: the provisioner puts the kernel in a cgroup of its own
(``BACKEND_CGROUP``), and every program a cell starts inherits it. When the OOM
killer ends one of them, the program just "dies by SIGKILL", and a Python cell
running ``subprocess.run`` does not even fail; when the process limit refuses a
fork, the program prints some ``fork: Resource temporarily unavailable``. Only the
kernel sees both the cell and the cgroup's counters, so it compares them around each
cell: an OOM kill makes the cell an error saying so (naming the program where the
kernel knows it, and the limit), refused process starts are said in plain words.

The kernel also shows, once, why its previous launch died
(``BACKEND_KERNEL_PREVIOUS_DEATH``, set by the provisioner at a restart after a
death such as out of memory), and removes the variable so that no cell program
inherits it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import re
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from backend_kernel_provisioner.common.cgroups import Cgroup
from backend_kernel_provisioner.common.resource_limits import PREVIOUS_DEATH_ENV, format_bytes

#: The provisioner's one-paragraph account of the previous launch's death (absent after a clean stop).
#: The error name of a cell whose process the OOM killer ended, and of one whose forks were refused.
OOM_ENAME = "OutOfMemory"
PIDS_ENAME = "ProcessLimit"
#: Exit code of a program killed by SIGKILL (the OOM killer's signal), as a shell reports it.
OOM_EXIT_CODE = 128 + signal.SIGKILL
#: The kernel log, where the OOM killer names each process it kills (readable by root; best effort).
KERNEL_LOG = "/dev/kmsg"
_OOM_RECORD = re.compile(r"oom-kill:.*\boom_memcg=(?P<memcg>[^,]*),.*\btask=(?P<task>.*?),pid=(?P<pid>\d+)")

Publish = Callable[[str, str], None]
R = TypeVar("R")


class Child(Protocol):
    """What the watch needs of a started program (``process.ChildProcess`` has it)."""

    pid: int

    @property
    def proc(self) -> Any: ...


@dataclass
class _Known:
    name: str
    child: Child
    persistent: bool  # an interpreter that outlives the cell that started it

    @property
    def returncode(self) -> int | None:
        code = self.child.proc.returncode
        return code if isinstance(code, int) else None


@dataclass(frozen=True)
class Verdict:
    """What the limits did during one cell: ``oom`` and ``pids`` are the sentences to show ("" for none)."""

    oom: str = ""
    pids: str = ""

    def __bool__(self) -> bool:
        return bool(self.oom or self.pids)

    def error(self, exit_code: int, ename: str, evalue: str) -> tuple[int, str, str, list[str]]:
        """The cell's error (exit code, name, value, traceback), given how it ended otherwise; the earlier
        error, if any, stays in the traceback as context. Refused forks alone leave a succeeded cell
        alone (a program may survive them): the caller then shows :attr:`pids` on stderr."""
        name, value = (OOM_ENAME, self.oom) if self.oom else (PIDS_ENAME, self.pids)
        lines = [f"{name}: {value}"]
        if self.oom and self.pids:
            lines.append(self.pids)
        if exit_code and evalue:
            lines.append(f"(the cell ended with {ename}: {evalue})")
        return exit_code or OOM_EXIT_CODE, name, value, lines

    def fails_cell(self, exit_code: int) -> bool:
        return bool(self.oom) or bool(self.pids and exit_code)


class ResourceWatch:
    """The kernel's cgroup counters around each cell, and the programs the kernel started in it.

    ``cell_started`` before a cell, ``program_started`` for each program the kernel runs (a persistent
    interpreter is kept across cells), ``judge`` (``judge_reply`` in backend-python) after it. Without a
    cgroup every call is cheap and finds nothing."""

    def __init__(self, cgroup: Cgroup | None, previous_death: str = "", work_dir: str = "") -> None:
        self.cgroup = cgroup
        self.previous_death = previous_death
        self.work_dir = work_dir
        self._known: dict[int, _Known] = {}
        self._before: tuple[int, int] | None = None  # the counters after the previous cell (or at the first)

    @classmethod
    def from_env(cls, work_dir: str = "") -> ResourceWatch:
        """The kernel's own watch; takes ``BACKEND_KERNEL_PREVIOUS_DEATH`` out of ``os.environ`` (the cell
        programs inherit that, and must not repeat another launch's death as theirs)."""
        return cls(Cgroup.from_env(), os.environ.pop(PREVIOUS_DEATH_ENV, "").strip(), work_dir)

    # -- around a cell ------------------------------------------------------------------------------

    def cell_started(self, publish: Publish | None) -> None:
        """Take the counters (at the first cell; then the previous cell's end reading stands, so a program
        killed between cells is told by the next cell); with ``publish`` tell the previous death, once."""
        if publish is not None and self.previous_death:
            text, self.previous_death = self.previous_death, ""
            publish("stderr", f"[{text}]\n")
        self._known = {pid: k for pid, k in self._known.items() if k.persistent and k.returncode is None}
        if self._before is None:  # later cells start from the previous cell's reading: one read per cell
            self._before = self._counters()

    def program_started(self, argv0: str, child: Child, persistent: bool = False) -> None:
        """Remember a program the kernel started, to name it if the OOM killer ends it."""
        name = os.path.basename(argv0)
        if self.work_dir and os.path.abspath(argv0).startswith(os.path.join(self.work_dir, "")):
            name = f"./{name}"  # a program the kernel built for the cell
        self._known[child.pid] = _Known(f"the session's interpreter {name}" if persistent else name, child,
                                        persistent)

    async def verdict(self) -> Verdict:
        """What the limits did since :meth:`cell_started` (reads the kernel log off the event loop)."""
        if self.cgroup is None:
            return Verdict()
        oom_before, pids_before = self._before or (0, 0)
        oom_kills, refusals = self._before = self._counters()  # a kill between cells is told by the next one
        oom = ""
        if oom_kills > oom_before:
            victims = await asyncio.to_thread(self._logged_victims, oom_kills - oom_before)
            oom = self.describe_oom(victims)
        pids = ""
        if refusals > pids_before:
            limit = self.cgroup.pids_limit()
            count = refusals - pids_before
            pids = (f"{count} process start{'s' if count > 1 else ''} refused: the kernel's process limit "
                    f"(pids_limit {limit if limit is not None else 'unknown'}) was reached")
        return Verdict(oom, pids)

    def describe_oom(self, logged: list[tuple[str, int]]) -> str:
        """``killed: out of memory — ./main (pid 12) — limit 128 MiB, peak 128 MiB``."""
        assert self.cgroup is not None
        victims = [(self._known[pid].name if pid in self._known else task, pid) for task, pid in logged]
        if not victims:  # no readable kernel log: the programs of ours that died by SIGKILL
            victims = [(k.name, pid) for pid, k in self._known.items() if k.returncode == -signal.SIGKILL]
        named = ", ".join(f"{name} (pid {pid})" for name, pid in victims) or "a process of this cell"
        limit = self.cgroup.memory_limit()
        held = "no limit of its own: the machine ran out" if limit is None else f"limit {format_bytes(limit)}"
        return f"killed: out of memory — {named} — {held}, peak {format_bytes(self.cgroup.memory_peak())}"

    def _counters(self) -> tuple[int, int]:
        if self.cgroup is None:
            return 0, 0
        return self.cgroup.oom_kills(), self.cgroup.pids_refusals()

    def _logged_victims(self, count: int) -> list[tuple[str, int]]:
        """The last ``count`` OOM kills of our memory cgroup in the kernel log, as (command name, pid)."""
        assert self.cgroup is not None
        ours = self.cgroup.dirs.get("memory", "")
        found = [(task, pid) for memcg, task, pid in read_oom_records() if memcg and ours.endswith(memcg)]
        return found[-count:]

    # -- applying a verdict -------------------------------------------------------------------------

    async def judge(self, result: R, publish: Publish) -> R:
        """A :class:`~.base.CellResult` (exit_code, ename, evalue, traceback), as the limits made it: the
        limits' error, or for refused forks of a succeeded cell a notice on stderr."""
        verdict = await self.verdict()
        exit_code = int(getattr(result, "exit_code", 0))
        if not verdict.fails_cell(exit_code):
            if verdict.pids:
                publish("stderr", f"[{verdict.pids}]\n")
            return result
        code, ename, evalue, traceback = verdict.error(exit_code, getattr(result, "ename", ""),
                                                       getattr(result, "evalue", ""))
        return dataclasses.replace(result, exit_code=code, ename=ename, evalue=evalue,  # type: ignore[type-var]
                                   traceback=traceback)

    async def judge_reply(self, reply: dict[str, Any], publish: Publish,
                          send_error: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """The same for an ipykernel ``execute_reply`` with ``exit_code`` (backend-python); the limits' error
        is published too, after the cell's own error if it had one."""
        verdict = await self.verdict()
        exit_code = int(reply.get("exit_code") or 0)
        if not verdict.fails_cell(exit_code):
            if verdict.pids:
                publish("stderr", f"[{verdict.pids}]\n")
            return reply
        code, ename, evalue, traceback = verdict.error(exit_code, str(reply.get("ename", "")),
                                                       str(reply.get("evalue", "")))
        content = {"ename": ename, "evalue": evalue, "traceback": traceback}
        send_error(content)
        return {**reply, "status": "error", **content, "exit_code": code}


def read_oom_records(path: str = KERNEL_LOG) -> list[tuple[str, str, int]]:
    """Every ``oom-kill:`` record still in the kernel log as (memory cgroup path, command name, pid); [] where
    the log cannot be read (no permission, no such device in a container)."""
    records: list[tuple[str, str, int]] = []
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return records
    try:
        with contextlib.suppress(OSError):
            os.lseek(fd, 0, os.SEEK_SET)
        while True:
            try:
                record = os.read(fd, 8192).decode("utf-8", "replace")
            except BrokenPipeError:  # records overwritten while we read: go on with the next one
                continue
            except OSError:  # EAGAIN: the end
                break
            if not record:
                break
            for line in record.splitlines():  # /dev/kmsg gives one record a read; a file (tests) many
                match = _OOM_RECORD.search(line)
                if match:
                    records.append((match["memcg"], match["task"], int(match["pid"])))
    finally:
        os.close(fd)
    return records
