"""Process-group plumbing for services: child set-up, stopping a group, and a reaper.

Services run in their own sessions (so a Ctrl-C in the server's terminal does
not reach them, and a stop reaches all their children).  The Jupyter server's
own signal handlers are never replaced; instead two things make sure nothing
outlives the server:

* an ``atexit`` hook sends SIGTERM to every live group on a normal exit;
* a tiny ``/bin/sh`` *reaper* (one per server process) reads ``+pgid``/``-pgid``
  lines from a pipe; when the pipe closes (the server died by any signal,
  even SIGKILL) it sends SIGTERM, then SIGKILL after a grace period, to every
  group still registered.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import signal
import subprocess
import threading

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


def child_preexec() -> None:
    """In the child before exec: default SIGINT/SIGPIPE (ipykernel and Python ignore them)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)


async def spawn(argv: list[str], *, cwd: str | None, env: dict[str, str] | None,
                stderr: int = asyncio.subprocess.PIPE) -> asyncio.subprocess.Process:
    """Start ``argv`` in its own session with piped output (``stderr``: PIPE or STDOUT)."""
    return await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd or None,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
        start_new_session=True,
        preexec_fn=child_preexec,
    )


def signal_group(pgid: int, signum: int) -> bool:
    """Send ``signum`` to a process group; False when it no longer exists."""
    try:
        os.killpg(pgid, signum)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return False


async def stop_group(proc: asyncio.subprocess.Process, grace: float) -> int:
    """SIGTERM the process's group, SIGKILL it after ``grace`` seconds; returns the exit code."""
    signal_group(proc.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except asyncio.TimeoutError:
        signal_group(proc.pid, signal.SIGKILL)
        await proc.wait()
    # Children that ignored SIGTERM and outlived the leader are still in the group.
    signal_group(proc.pid, signal.SIGKILL)
    return proc.returncode if proc.returncode is not None else -signal.SIGKILL


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
