"""Which process is blocked reading which file: how a kernel knows that a program waits for input.

Why from /proc: a program reading its stdin says nothing on any channel we
hold. A thread in ``read(fd)`` shows ``0 0x<fd> ...`` in
``/proc/PID/task/TID/syscall``, and an event loop (libuv, Go's netpoller) sleeps
in ``epoll_wait`` with the fd in the epoll's fdinfo; ``/proc/PID/fd/N`` says
which file the fd is. The same walk finds a program's whole process tree.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Collection

# Syscall numbers (they differ per architecture): reads on a fd, and event waits.
_SYSCALLS = {
    "x86_64": {"read": {0, 17, 19, 295, 327}, "epoll": {232, 281, 441}},
    "aarch64": {"read": {63, 65, 67, 69, 286}, "epoll": {22, 441}},
}
_ARCH = _SYSCALLS.get(platform.machine(), _SYSCALLS["x86_64"])
#: The syscalls that read one fd on this machine (read, readv, pread, ...).
READ_SYSCALLS = _ARCH["read"]


def _thread_files(pid: int, name: str) -> list[str]:
    """The text of ``/proc/PID/task/*/NAME`` for every thread of ``pid`` that still exists."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    texts = []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/{name}") as fh:
                texts.append(fh.read())
        except OSError:
            continue
    return texts


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it, parents first (from /proc/*/task/*/children)."""
    seen: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop(0)
        if current in seen:
            continue
        seen.append(current)
        for children in _thread_files(current, "children"):
            todo.extend(int(p) for p in children.split())
    return seen


def _fd_target(pid: int, fd: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        return ""


_EPOLLIN = 0x1


def _epoll_watches(pid: int, epfd: int) -> list[int]:
    """Fds the epoll ``epfd`` currently watches for input (``tfd: N events: HEX ...`` lines).

    An entry without EPOLLIN (a one-shot registration that already fired, as GHC's
    and libuv's event loops leave behind) is not a read in progress.
    """
    watched = []
    try:
        with open(f"/proc/{pid}/fdinfo/{epfd}") as fh:
            for line in fh:
                if not line.startswith("tfd:"):
                    continue
                fields = line.split()
                events = int(fields[fields.index("events:") + 1], 16) if "events:" in fields else _EPOLLIN
                if events & _EPOLLIN:
                    watched.append(int(fields[1]))
    except (OSError, ValueError, IndexError):
        return []
    return watched


def blocked_reading(pids: list[int], target: str | Collection[str]) -> bool:
    """True when a thread of ``pids`` sleeps reading (or epoll-waiting on) the file ``target`` (or one of them).

    ``target`` is what /proc/PID/fd/N links to, e.g. ``pipe:[1234]`` or ``/dev/pts/3``. A thread in
    ``read(fd)`` shows ``0 0x<fd> ...`` in /proc/PID/task/TID/syscall; an event
    loop (libuv, Go's netpoller) sleeps in epoll_wait with the fd in the epoll's fdinfo.
    """
    targets = {target} if isinstance(target, str) else set(target)
    for pid in pids:
        for syscall in _thread_files(pid, "syscall"):
            fields = syscall.split()
            if len(fields) < 2 or not fields[0].isdigit():
                continue  # "running" or "-1 ..." (not in a syscall)
            number, first_arg = int(fields[0]), int(fields[1], 16)
            if number in READ_SYSCALLS and _fd_target(pid, first_arg) in targets:
                return True
            if number in _ARCH["epoll"] and any(
                _fd_target(pid, fd) in targets for fd in _epoll_watches(pid, first_arg)
            ):
                return True
    return False
