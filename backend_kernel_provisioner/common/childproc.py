"""The one recipe for every child process we start: cells, services, prestart commands, the bootstrap script.

Why one recipe: each of these must behave the same way towards signals and
must not outlive its owner. A child gets

* a new session (its own process group), so a stop reaches everything it
  started and a Ctrl-C in the server's terminal does not;
* default SIGINT and SIGPIPE (ipykernel and Python ignore them, and children
  inherit that);
* a parent-death signal (PDEATHSIG; SIGKILL for cells, SIGTERM for services,
  which then have the grace period of the reaper), so it dies with the process
  that started it even when that process is SIGKILLed;

and it is stopped by SIGTERM to its whole group, then SIGKILL after a grace period.

A cell's program may go without the parent-death signal (``death_signal=None``):
the launch's cgroup and marker already take it when the kernel dies. Without a
Python callback between fork and exec, ``subprocess`` uses ``vfork``, which
saves 5-7 ms per program in a kernel-sized process (SIGPIPE is restored by
``subprocess`` itself, and a caught SIGINT is reset by exec).
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import os
import signal
import termios
from typing import IO, Any

from backend_kernel_provisioner.common.cgroups import Cgroup, join_in_child

#: What a shell reports for a program stopped by Ctrl-C (128 + SIGINT); every kernel uses it.
INTERRUPTED_EXIT_CODE = 130
#: Seconds a stop waits for a SIGKILLed group's members to die (delivery is asynchronous; normally microseconds).
GROUP_DEATH_WAIT = 1.0
#: What a shell reports when the program to run does not exist.
MISSING_PROGRAM_EXIT_CODE = 127

_PR_SET_PDEATHSIG = 1

PIPE = asyncio.subprocess.PIPE
STDOUT = asyncio.subprocess.STDOUT
DEVNULL = asyncio.subprocess.DEVNULL


@functools.lru_cache(maxsize=1)
def _libc() -> Any:
    """libc for prctl, loaded in the parent on first use (never between fork and exec; ctypes costs
    milliseconds to import, which every kernel's start would pay)."""
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def child_setup(death_signal: int | None = signal.SIGKILL, controlling_terminal: bool = False,
                cgroup_procs: list[str] | None = None) -> None:
    """In the child before exec: Ctrl-C and broken pipes behave as in a terminal, and the
    child gets ``death_signal`` when its parent dies, even when the parent itself is killed.
    With ``controlling_terminal``, its stdin (a terminal) becomes the controlling terminal of its
    new session, as a login on a terminal would have it (``/dev/tty`` works, job control, SIGHUP).
    With ``cgroup_procs`` (a cgroup's ``cgroup.procs`` files), it joins that cgroup before exec, so
    that nothing it starts escapes the cgroup's limits."""
    if cgroup_procs:
        join_in_child(cgroup_procs)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    if death_signal is not None:
        _libc().prctl(_PR_SET_PDEATHSIG, death_signal, 0, 0, 0)
    if controlling_terminal:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)


async def spawn(
    argv: list[str],
    *,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
    stdin: int | IO[Any] | None = DEVNULL,
    stdout: int | IO[Any] | None = PIPE,
    stderr: int | IO[Any] | None = PIPE,
    death_signal: int | None = signal.SIGKILL,
    controlling_terminal: bool = False,
    cgroup: Cgroup | None = None,
) -> asyncio.subprocess.Process:
    """Start ``argv`` with the recipe above (own session, default signals, ``death_signal`` when we die),
    inside ``cgroup`` when one is given."""
    procs = cgroup.procs_files if cgroup is not None else None
    needs_callback = (death_signal is not None or controlling_terminal or procs
                      or signal.getsignal(signal.SIGINT) == signal.SIG_IGN)  # exec keeps an ignored signal
    if death_signal is not None:
        _libc()  # loaded here: the callback runs in the child
    return await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd or None,
        env=env,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
        preexec_fn=(lambda: child_setup(death_signal, controlling_terminal, procs)) if needs_callback else None,
    )


def signal_group(pgid: int, signum: int) -> bool:
    """Send ``signum`` to a process group; False when it no longer exists (or is not ours)."""
    try:
        os.killpg(pgid, signum)
        return True
    except (ProcessLookupError, PermissionError):
        return False


async def stop_group(proc: asyncio.subprocess.Process, grace: float) -> int:
    """SIGTERM the process's group, SIGKILL it after ``grace`` seconds; returns the exit code.

    Children that ignored SIGTERM and outlived the leader are still in the group: they get SIGKILL too,
    and the stop returns once they have died (a signal is delivered asynchronously: without the wait a
    caller could still see them running).
    """
    signal_group(proc.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except asyncio.TimeoutError:
        signal_group(proc.pid, signal.SIGKILL)
        await proc.wait()
    if signal_group(proc.pid, signal.SIGKILL):
        await _until_group_dead(proc.pid, GROUP_DEATH_WAIT)
    return proc.returncode if proc.returncode is not None else -signal.SIGKILL


def proc_stat(pid: int) -> tuple[str, list[str]] | None:
    """``/proc/<pid>/stat`` as (command name, the fields after it: state, ppid, pgrp, ...); None when gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except OSError:
        return None
    name_start, name_end = stat.find("("), stat.rfind(")")
    if name_start < 0 or name_end < 0:
        return None
    return stat[name_start + 1:name_end], stat[name_end + 1:].split()


def group_has_live_members(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs (zombies, dead but not yet reaped, do not count)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            found = proc_stat(int(entry))
            if found is not None and found[1][2] == str(pgid) and found[1][0] != "Z":
                return True
    return False


async def _until_group_dead(pgid: int, limit: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while group_has_live_members(pgid) and loop.time() < deadline:
        await asyncio.sleep(0.01)


def signal_name(signum: int) -> str:
    """``SIGSEGV (Segmentation fault)`` for 11."""
    try:
        name = signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
    description = signal.strsignal(signum) or ""
    return f"{name} ({description})" if description else name


def describe_exit(returncode: int) -> str:
    """How a child ended, from asyncio's return code (negative: the signal that killed it)."""
    if returncode < 0:
        return f"killed by {signal_name(-returncode)}"
    return f"exited with code {returncode}"
