"""The reaper: no service process group, and no process of a kernel, outlives the process that hosts the sidecar.

Services run in their own sessions (the recipe of
:mod:`backend_kernel_provisioner.common.childproc`), so PDEATHSIG only reaches
a group's leader. The host's own signal handlers are never replaced; instead
two things make sure nothing of a group outlives the host:

* an ``atexit`` hook sends SIGTERM to every live group on a normal exit;
* a tiny ``/bin/sh`` *reaper* (one per server process) reads ``+pgid``/``-pgid``
  lines from a pipe; when the pipe closes (the server died by any signal,
  even SIGKILL) it sends SIGTERM, then SIGKILL after a grace period, to every
  group still registered;
* a ``Mprefix`` line (:meth:`GroupReaper.watch_launches`) makes it do the same,
  on that death, to every process whose ``BACKEND_KERNEL_LAUNCH`` marker starts
  with ``prefix`` (this process's launch markers, see
  :mod:`backend_kernel_provisioner.common.leftovers`): a kernel's background
  programs, reparented to init, go promptly with their owner;
* then it removes the dead owner's temp folders and the connection files they
  name, and its kernels' cgroups (killing what is left in them)
  (:data:`REMOVE_FOLDERS`), as the sweep at the next start would.

The reaper itself never carries a launch marker, so a kernel stop never takes it.
"""

from __future__ import annotations

import atexit
import os
import re
import signal
import subprocess
import sys
import threading

from backend_kernel_provisioner.common.childproc import signal_group
from backend_kernel_provisioner.common.leftovers import LAUNCH_ENV

REAPER_SCRIPT = r"""
trap '' INT TERM HUP
groups=" "
marks=""
while IFS= read -r line; do
  case "$line" in
    +*) groups="$groups${line#+} ";;
    -*) g=${line#-}; new=" "
        for x in $groups; do [ "$x" = "$g" ] || new="$new$x "; done
        groups=$new;;
    M*) marks=${line#M};;
  esac
done
[ "$groups" = " " ] && [ -z "$marks" ] && exit 0
marked() {
  [ -n "$marks" ] || return 0
  grep -l -s -a -z -e "^$2=$marks" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3
}
hit() { for p in $2; do kill -$1 -$p 2>/dev/null; kill -$1 $p 2>/dev/null; done; }
first=$(marked "$@")
for g in $groups; do kill -TERM -$g 2>/dev/null; done
hit TERM "$first"
# the grace period only when something was signalled (a clean exit leaves nothing: no wait)
[ "$groups" = " " ] && [ -z "$first" ] || sleep "$1"
for g in $groups; do kill -KILL -$g 2>/dev/null; done
i=0
while [ $i -lt 20 ]; do
  pids=$(marked "$@"); [ -n "$pids" ] || break
  hit KILL "$pids"; i=$((i + 1)); sleep 0.1
done
"$3" -c "$REMOVE_FOLDERS" "$4" 2>/dev/null
"""

#: Run by the reaper with this interpreter once its owner is dead and the owner's kernels are killed:
#: their temp folders (control socket, service work folder, kernel work folders) and the connection
#: files they name go at once, by the same owner-record checks as the sweep at the next start.
REMOVE_FOLDERS = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from backend_kernel_provisioner.common.leftovers import remove_stale_folders; "
    "from backend_kernel_provisioner.common.kernel_cgroups import sweep_stale_cgroups; "
    "remove_stale_folders(); sweep_stale_cgroups()"
)
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


class GroupReaper:
    """Remembers live service process groups and kills them when this process goes away."""

    def __init__(self, grace: float = 3.0) -> None:
        self.grace = grace
        self.groups: set[int] = set()
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._owner = 0
        self.launch_prefix = ""

    def _ensure(self) -> None:
        if self._proc is not None and self._owner == os.getpid() and self._proc.poll() is None:
            return
        self._owner = os.getpid()
        self._proc = subprocess.Popen(
            ["/bin/sh", "-c", REAPER_SCRIPT, "reaper", str(self.grace), LAUNCH_ENV,
             sys.executable, _PACKAGE_PARENT],
            env={**{k: v for k, v in os.environ.items() if k != LAUNCH_ENV}, "REMOVE_FOLDERS": REMOVE_FOLDERS},
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
        assert self._proc.stdin is not None
        for pgid in self.groups:
            self._write(f"+{pgid}\n")
        if self.launch_prefix:
            self._write(f"M{self.launch_prefix}\n")

    def _write(self, line: str) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(line.encode())
            self._proc.stdin.flush()
        except OSError:
            self._proc = None

    def add(self, pgid: int) -> None:
        with self._lock:
            self.groups.add(pgid)
            self._ensure()
            self._write(f"+{pgid}\n")

    def watch_launches(self, prefix: str) -> None:
        """On this process's death, also kill every process whose launch marker starts with ``prefix``."""
        if not re.fullmatch(r"[0-9]+-[0-9]+-", prefix):
            raise ValueError(f"launch marker prefix must be '<pid>-<start>-', got {prefix!r}")
        with self._lock:
            if self.launch_prefix == prefix and self._proc is not None and self._owner == os.getpid():
                return
            self.launch_prefix = prefix
            self._ensure()
            self._write(f"M{prefix}\n")

    def discard(self, pgid: int) -> None:
        with self._lock:
            if pgid in self.groups:
                self.groups.discard(pgid)
                if self._proc is not None:
                    self._write(f"-{pgid}\n")

    def terminate_all(self) -> None:
        """At interpreter exit: SIGTERM every live group (the reaper follows with SIGKILL)."""
        if self._owner != os.getpid():
            return
        for pgid in list(self.groups):
            signal_group(pgid, signal.SIGTERM)


REAPER = GroupReaper()
atexit.register(REAPER.terminate_all)
