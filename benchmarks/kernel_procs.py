"""A kernel's processes on this machine, found by its kernel id; whether a process has exited.

The remote benchmark's "remote host" is this machine, so the processes a remote
kernel left running can be seen directly. A kernel's processes carry its id: on
the command line (the launchers' ``--kernel-id``, a local kernel's connection
file ``kernel-<id>.json``) or in the environment (``KERNEL_ID``, which
gateway_provisioners exports in the SSH command, inherited by the kernel).
"""

from __future__ import annotations

import os


def _read(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def parent_and_state(pid: int) -> tuple[int, str] | None:
    """``(ppid, state)`` from /proc, or None once the process is gone."""
    try:
        state, ppid = _read(f"/proc/{pid}/stat").decode().rsplit(")", 1)[1].split()[:2]
    except (OSError, ValueError, IndexError):
        return None
    return int(ppid), state


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie has exited: only its parent has not reaped it yet)."""
    found = parent_and_state(pid)
    return found is not None and found[1] != "Z"


def kernel_processes(kernel_id: str) -> dict[int, int]:
    """Live processes carrying ``kernel_id`` (not this one), each with its parent pid."""
    marker = kernel_id.encode()
    found: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        pid = int(entry)
        try:
            if marker not in _read(f"/proc/{pid}/cmdline") and marker not in _read(f"/proc/{pid}/environ"):
                continue
        except OSError:
            continue
        info = parent_and_state(pid)
        if info is not None and info[1] != "Z":
            found[pid] = info[0]
    return found
