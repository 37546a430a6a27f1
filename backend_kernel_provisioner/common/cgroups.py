"""Control groups: which hierarchy this machine has, and one cgroup's limits, members and counters.

Why here, in ``common``: the provisioner makes a kernel's cgroups and joins the
kernel to one; the sidecar joins services to theirs; the kernel itself reads its
cgroup's counters to tell a cell that its program ran out of memory. All three
need the same reading of the same files.

Two layouts exist and this machine may have either (or both, "hybrid"):

* cgroup v2: one unified tree; ``memory.max``, ``cpu.max``, ``pids.max``,
  ``memory.events`` (``oom_kill``), ``cpu.stat`` (``usage_usec``). A parent must
  enable the controllers for its children (``cgroup.subtree_control``).
* cgroup v1: one tree per controller; ``memory.limit_in_bytes``,
  ``cpu.cfs_quota_us``, ``pids.max``, ``memory.oom_control`` (``oom_kill``),
  ``cpuacct.usage``. A hybrid machine mounts v2 too, often with no controller
  in it: v2 is used only where it has the memory controller.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass, field

from backend_kernel_provisioner.common.resource_limits import Limits

#: The controllers we limit or read (v1 names; v2 has ``cpuacct``'s counter in ``cpu.stat``).
CONTROLLERS = ("memory", "cpu", "cpuacct", "pids")
#: The variable that tells a kernel (and the programs of its cells) which cgroup it is in.
CGROUP_ENV = "BACKEND_CGROUP"
_UNLIMITED_V1 = 1 << 60  # memory.limit_in_bytes above this is "no limit" (the kernel prints PAGE_COUNTER_MAX)


@dataclass(frozen=True)
class Layout:
    """Where each controller's hierarchy is mounted, and where this process sits in it."""

    version: int
    mounts: dict[str, str]  # controller -> mount point (v2: the same unified mount for all)
    own: dict[str, str]  # controller -> this process's cgroup directory

    def parent_dirs(self, parent: str = "") -> dict[str, str]:
        """Directories new cgroups go under: ``parent`` inside each hierarchy (an absolute path inside the
        tree, such as ``/jupyter-kernels``), or this process's own cgroup when ``parent`` is empty."""
        if not parent:
            return dict(self.own)
        return {c: os.path.join(mount, parent.strip("/")) for c, mount in self.mounts.items()}


def _mounts(mountinfo: str) -> tuple[str | None, dict[str, tuple[str, str]]]:
    """The unified mount point and the v1 mounts (controller -> (mount point, root inside the tree))."""
    unified, v1 = None, {}
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        if tail[0] == "cgroup2" and unified is None:
            unified = fields[4]
        elif tail[0] == "cgroup":
            for option in tail[2].split(","):
                if option in CONTROLLERS:
                    v1[option] = (fields[4], fields[3])
    return unified, v1


def _own_paths(self_cgroup: str) -> dict[str, str]:
    """``/proc/self/cgroup`` as controller -> path (``""`` for the unified tree)."""
    paths = {}
    for line in self_cgroup.splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            paths[name] = path
    return paths


def _read(path: str) -> str:
    with open(path) as fh:
        return fh.read()


def detect_layout(proc: str = "/proc/self") -> Layout | None:
    """This machine's layout: v2 where its unified tree has the memory controller, else v1 where the
    memory controller is mounted; None where neither (no cgroups to make)."""
    try:
        unified, v1 = _mounts(_read(f"{proc}/mountinfo"))
        own = _own_paths(_read(f"{proc}/cgroup"))
    except OSError:
        return None
    if unified is not None and "" in own:
        here = os.path.join(unified, own[""].lstrip("/"))
        try:
            available = _read(os.path.join(unified, "cgroup.controllers")).split()
        except OSError:
            available = []
        if "memory" in available:
            return Layout(2, dict.fromkeys(CONTROLLERS, unified), dict.fromkeys(CONTROLLERS, here))
    if "memory" not in v1:
        return None
    mounts, dirs = {}, {}
    for name, (mount, root) in v1.items():
        path = own.get(name, "/")
        inside = os.path.relpath(path, root) if path.startswith(root) else path.lstrip("/")
        mounts[name] = mount
        dirs[name] = os.path.normpath(os.path.join(mount, inside))
    return Layout(1, mounts, dirs)


@dataclass
class Cgroup:
    """One cgroup: a directory per controller (v1) or one directory (v2)."""

    version: int
    dirs: dict[str, str]
    _files: dict[str, str] = field(default_factory=dict, repr=False)

    # -- where -----------------------------------------------------------------------------------

    def child(self, name: str) -> Cgroup:
        return Cgroup(self.version, {c: os.path.join(d, name) for c, d in self.dirs.items()})

    @property
    def unique_dirs(self) -> list[str]:
        return list(dict.fromkeys(self.dirs.values()))

    def _path(self, controller: str, name: str) -> str:
        return os.path.join(self.dirs.get(controller) or next(iter(self.dirs.values())), name)

    @property
    def procs_files(self) -> list[str]:
        """The ``cgroup.procs`` files a process writes its pid to, to join (one per hierarchy)."""
        return [os.path.join(d, "cgroup.procs") for d in self.unique_dirs]

    def to_env(self) -> str:
        return json.dumps({"version": self.version, "dirs": self.dirs}, sort_keys=True)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Cgroup | None:
        text = (os.environ if environ is None else environ).get(CGROUP_ENV, "")
        try:
            data = json.loads(text) if text else None
            return cls(int(data["version"]), {str(k): str(v) for k, v in data["dirs"].items()}) if data else None
        except (ValueError, KeyError, TypeError):
            return None

    # -- making and removing ---------------------------------------------------------------------

    def create(self, limits: Limits, controllers_for_children: bool = False) -> None:
        """Make the directories and write ``limits`` (OSError when this process may not)."""
        for path in self.unique_dirs:
            os.makedirs(path, exist_ok=True)
        if self.version == 2 and controllers_for_children:
            self.enable_controllers()
        self.apply(limits)

    def enable_controllers(self) -> None:
        """v2: let this cgroup's children have memory, cpu and pids limits (its parent must have them)."""
        wanted = [c for c in ("memory", "cpu", "pids") if c in _read(self._path("memory", "cgroup.controllers"))]
        with open(self._path("memory", "cgroup.subtree_control"), "w") as fh:
            fh.write(" ".join(f"+{c}" for c in wanted))

    def apply(self, limits: Limits) -> None:
        if self.version == 2:
            self._write("memory", "memory.max", limits.memory or "max")
            if limits.memory and os.path.exists(self._path("memory", "memory.swap.max")):
                self._write("memory", "memory.swap.max", 0)  # the limit means the limit, not swap beyond it
            self._write("cpu", "cpu.max", f"{int(limits.cpu * 100_000)} 100000" if limits.cpu else "max 100000")
            self._write("pids", "pids.max", limits.pids or "max")
            return
        if "memory" in self.dirs:
            swap = os.path.exists(self._path("memory", "memory.memsw.limit_in_bytes"))
            if swap:  # memory+swap may never be below memory: lift it first, so a limit can be raised too
                self._write("memory", "memory.memsw.limit_in_bytes", -1)
            self._write("memory", "memory.limit_in_bytes", limits.memory or -1)
            if swap and limits.memory:
                self._write("memory", "memory.memsw.limit_in_bytes", limits.memory)
        if "cpu" in self.dirs:
            period = int(_read(self._path("cpu", "cpu.cfs_period_us")))
            self._write("cpu", "cpu.cfs_quota_us", int(limits.cpu * period) if limits.cpu else -1)
        if "pids" in self.dirs:
            self._write("pids", "pids.max", limits.pids or "max")
        elif limits.pids:
            raise OSError("pids_limit: this machine mounts no pids controller")

    def _write(self, controller: str, name: str, value: object) -> None:
        with open(self._path(controller, name), "w") as fh:
            fh.write(str(value))

    def join(self, pid: int = 0) -> None:
        """Move ``pid`` (0: the calling process) into this cgroup, in every hierarchy."""
        for path in self.procs_files:
            with open(path, "w") as fh:
                fh.write(str(pid))

    def members(self) -> set[int]:
        """Every process in this cgroup and the cgroups below it."""
        found: set[int] = set()
        for top in self.unique_dirs:
            for folder, _, _ in os.walk(top):
                try:
                    found.update(int(p) for p in _read(os.path.join(folder, "cgroup.procs")).split())
                except (OSError, ValueError):
                    continue
        return found

    def kill_all(self, wait: float = 2.0) -> list[int]:
        """SIGKILL every member (again, until none is left or ``wait`` ran out); returns the pids signalled."""
        killed: list[int] = []
        deadline = time.monotonic() + wait
        while True:
            members = self.members()
            if not members or time.monotonic() > deadline:
                return killed
            for pid in members:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.01)

    def remove(self, wait: float = 2.0) -> bool:
        """Kill the members, then remove the directories (children first); False when one stayed."""
        self.kill_all(wait)
        ok = True
        for top in self.unique_dirs:
            for folder, _, _ in sorted(os.walk(top), key=lambda entry: -entry[0].count("/")):
                ok = _rmdir(folder, time.monotonic() + wait) and ok
        return ok

    # -- reading ---------------------------------------------------------------------------------

    def _number(self, controller: str, name: str) -> int | None:
        try:
            text = _read(self._path(controller, name)).strip()
        except OSError:
            return None
        return None if text == "max" else int(text.split()[0])

    def _keyed(self, controller: str, name: str, key: str) -> int:
        try:
            for line in _read(self._path(controller, name)).splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[0] == key:
                    return int(parts[1])
        except OSError:
            pass
        return 0

    def memory_usage(self) -> int | None:
        return self._number("memory", "memory.current" if self.version == 2 else "memory.usage_in_bytes")

    def memory_peak(self) -> int | None:
        return self._number("memory", "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes")

    def memory_limit(self) -> int | None:
        value = self._number("memory", "memory.max" if self.version == 2 else "memory.limit_in_bytes")
        return None if value is None or value >= _UNLIMITED_V1 else value

    def oom_kills(self) -> int:
        """Processes of this cgroup the OOM killer has killed (since the cgroup was made)."""
        if self.version == 2:
            return self._keyed("memory", "memory.events", "oom_kill")
        return self._keyed("memory", "memory.oom_control", "oom_kill")

    def cpu_seconds(self) -> float | None:
        """CPU time used by the members, past and present."""
        if self.version == 2:
            return self._keyed("cpu", "cpu.stat", "usage_usec") / 1e6
        value = self._number("cpuacct", "cpuacct.usage")
        return None if value is None else value / 1e9

    def cpu_limit(self) -> float | None:
        if self.version == 2:
            try:
                quota, period = _read(self._path("cpu", "cpu.max")).split()
            except (OSError, ValueError):
                return None
            return None if quota == "max" else int(quota) / int(period)
        v1_quota, v1_period = self._number("cpu", "cpu.cfs_quota_us"), self._number("cpu", "cpu.cfs_period_us")
        return None if v1_quota is None or v1_quota < 0 or not v1_period else v1_quota / v1_period

    def pids_current(self) -> int | None:
        return self._number("pids", "pids.current")

    def pids_limit(self) -> int | None:
        return self._number("pids", "pids.max")

    def pids_refusals(self) -> int:
        """Forks refused because ``pids.max`` was reached."""
        return self._keyed("pids", "pids.events", "max")

    def limits(self) -> Limits:
        return Limits(self.memory_limit(), self.cpu_limit(), self.pids_limit())


def _rmdir(folder: str, deadline: float) -> bool:
    while True:
        try:
            os.rmdir(folder)
            return True
        except FileNotFoundError:
            return True
        except OSError:  # EBUSY while a member is still exiting
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)


def join_in_child(procs_files: list[str]) -> None:
    """In a child before exec (``preexec_fn``): join the cgroup whose ``cgroup.procs`` files are given;
    the child's own children then start inside it."""
    for path in procs_files:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)


#: The shell that puts a command into a cgroup before it runs (see :func:`joining_argv`).
_JOIN_SCRIPT = (
    'n=$1; shift; while [ "$n" -gt 0 ]; do '
    'echo 0 > "$1" || { echo "cannot join the cgroup of $1" >&2; exit 125; }; shift; n=$((n-1)); done; exec "$@"'
)


def joining_argv(procs_files: list[str], argv: list[str]) -> list[str]:
    """``argv`` behind a ``/bin/sh`` that joins the cgroup (``cgroup.procs`` files) and then execs it:
    the same process, inside the cgroup before its first instruction.

    Why not ``preexec_fn``: a Python callback between fork and exec forbids ``vfork``, and a full fork
    of the server costs 5-20 ms per kernel start; the shell costs about one millisecond.
    """
    if not procs_files:
        return list(argv)
    return ["/bin/sh", "-c", _JOIN_SCRIPT, "bkp-join-cgroup", str(len(procs_files)), *procs_files, *argv]
