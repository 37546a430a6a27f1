"""The reaper: no service process group outlives the process that hosts the sidecar.

Services run in their own sessions (the recipe of
:mod:`backend_kernel_provisioner.common.childproc`), so PDEATHSIG only reaches
a group's leader. The host's own signal handlers are never replaced; instead
two things make sure nothing of a group outlives the host:

* an ``atexit`` hook sends SIGTERM to every live group on a normal exit;
* a tiny ``/bin/sh`` *reaper* (one per server process) reads ``+pgid``/``-pgid``
  lines from a pipe; when the pipe closes (the server died by any signal,
  even SIGKILL) it sends SIGTERM, then SIGKILL after a grace period, to every
  group still registered.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import threading

from backend_kernel_provisioner.common.childproc import signal_group

REAPER_SCRIPT = r"""
trap '' INT TERM HUP
groups=" "
while IFS= read -r line; do
  case "$line" in
    +*) groups="$groups${line#+} ";;
    -*) g=${line#-}; new=" "
        for x in $groups; do [ "$x" = "$g" ] || new="$new$x "; done
        groups=$new;;
  esac
done
[ "$groups" = " " ] && exit 0
for g in $groups; do kill -TERM -$g 2>/dev/null; done
sleep "$1"
for g in $groups; do kill -KILL -$g 2>/dev/null; done
"""


class GroupReaper:
    """Remembers live service process groups and kills them when this process goes away."""

    def __init__(self, grace: float = 3.0) -> None:
        self.grace = grace
        self.groups: set[int] = set()
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._owner = 0

    def _ensure(self) -> None:
        if self._proc is not None and self._owner == os.getpid() and self._proc.poll() is None:
            return
        self._owner = os.getpid()
        self._proc = subprocess.Popen(
            ["/bin/sh", "-c", REAPER_SCRIPT, "reaper", str(self.grace)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
        assert self._proc.stdin is not None
        for pgid in self.groups:
            self._write(f"+{pgid}\n")

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
