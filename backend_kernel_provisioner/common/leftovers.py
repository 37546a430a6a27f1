"""Nothing of ours outlives its owner: launch markers on processes, owner records on folders.

Why: a kernel's cell may start programs in the background (``sleep 1000 &``)
or in its own session; when the kernel, or the server process that owns it,
is SIGKILLed, PDEATHSIG only reaches direct children and the rest is
reparented to init. And a SIGKILLed server never removes its temp folders.

* **Launch markers.** Every kernel launch gets ``BACKEND_KERNEL_LAUNCH=<owner
  pid>-<owner start ticks>-<random>`` in its environment; everything the
  kernel, its interpreter and its cells start inherits it. Whoever owns the
  launch kills the processes carrying the marker (``terminate_marked``) when
  the kernel stops; processes whose marker names a dead owner are killed by
  the sweep. A process that drops its environment (``env -i``) loses the mark:
  the process group of a marked process is signalled too, and the provisioner
  adds the kernel's descendants it remembers.
* **Owner records.** Each temp folder we make holds ``.bkp-owner.json``
  ``{"pid", "start"}`` (start = field 22 of ``/proc/<pid>/stat``, so a reused
  pid is not taken for the owner), optionally a ``connection_file``. The
  sweep removes folders with our name prefixes, our uid and a dead owner,
  and the connection file they name.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterable

from backend_kernel_provisioner.common.childproc import proc_stat, signal_group

#: The environment variable carrying a kernel launch's marker.
LAUNCH_ENV = "BACKEND_KERNEL_LAUNCH"
#: The owner record inside each of our temp folders.
OWNER_FILE = ".bkp-owner.json"
#: Name prefixes of the temp folders we make (control socket, service work folder, kernel work folder).
FOLDER_PREFIXES = ("bkp-ctl-", "bkp-services-", "backend-")

_MARKER = re.compile(r"(\d+)-(\d+)-[0-9a-f]+")
_lock = threading.Lock()
_made_here: set[str] = set()
_swept = False


# -- who is alive ------------------------------------------------------------------------------

def process_start(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (``/proc/<pid>/stat`` field 22); None when gone."""
    found = proc_stat(pid)
    if found is None or found[1][0] == "Z":
        return None
    return int(found[1][19])


def owner_alive(pid: int, start: int) -> bool:
    """Whether process ``pid`` still is the one that started at ``start`` (not a reused pid)."""
    return pid > 0 and process_start(pid) == start


def owner_prefix(pid: int | None = None) -> str:
    """``<pid>-<start>-``: how every launch marker of process ``pid`` (default: this one) begins."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}-{process_start(pid)}-"


def new_launch_marker() -> str:
    """A fresh marker for one kernel launch, naming this process as its owner."""
    return owner_prefix() + secrets.token_hex(8)


def marker_owner_alive(marker: str) -> bool:
    """False when the marker names an owner that is gone; a malformed marker counts as alive (not ours)."""
    match = _MARKER.fullmatch(marker)
    return match is None or owner_alive(int(match[1]), int(match[2]))


# -- marked processes -----------------------------------------------------------------------------

def launch_marker_of(pid: int, name: str = LAUNCH_ENV) -> str | None:
    """The launch marker (or the variable ``name``) in ``pid``'s environment as it was at exec, if any."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            environ = fh.read()
    except OSError:
        return None
    key = name.encode() + b"="
    for entry in environ.split(b"\0"):
        if entry.startswith(key):
            return entry[len(key):].decode(errors="replace")
    return None


def marked_processes(match: Callable[[str], bool], name: str = LAUNCH_ENV) -> list[int]:
    """Our uid's live processes (never this one) whose launch marker (or variable ``name``) satisfies
    ``match``."""
    uid, me, found = os.getuid(), os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid != uid:
                continue
        except OSError:
            continue
        marker = launch_marker_of(int(entry), name)
        if marker is not None and match(marker):
            found.append(int(entry))
    return found


def _signal(pids: Iterable[int], signum: int) -> None:
    """``signum`` to each process and to its process group (never our own group)."""
    own_group = os.getpgrp()
    for pid in pids:
        with contextlib.suppress(OSError):
            pgid = os.getpgid(pid)
            if pgid > 1 and pgid != own_group:
                signal_group(pgid, signum)
        with contextlib.suppress(OSError):
            os.kill(pid, signum)


def terminate_marked(match: Callable[[str], bool], grace: float = 1.0,
                     extra: Iterable[int] = (), name: str = LAUNCH_ENV) -> list[int]:
    """SIGTERM the marked processes (and ``extra``) with their groups, SIGKILL what is left after ``grace``.

    A process is marked by the launch marker, or by the environment variable ``name``
    (the web terminal marks its terminals so). SIGCONT follows SIGTERM, so a stopped
    job (Ctrl-Z) gets to act on it. Blocking (it scans ``/proc`` and sleeps): call it
    in a worker thread. Rescans until nothing marked is left, so children forked
    meanwhile go too. Returns the pids found first.
    """
    first = sorted({*marked_processes(match, name), *(p for p in extra if process_start(p) is not None)})
    if not first:
        return []
    _signal(first, signal.SIGTERM)
    _signal(first, signal.SIGCONT)
    deadline = time.monotonic() + grace
    left = first
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [p for p in set(first + marked_processes(match, name)) if process_start(p) is not None]
    for _ in range(20):
        if not left:
            break
        _signal(left, signal.SIGKILL)
        time.sleep(0.05)
        left = [p for p in set(left + marked_processes(match, name)) if process_start(p) is not None]
    return first


# -- folders with an owner record -----------------------------------------------------------------

def write_owner(folder: str, **extra: object) -> None:
    """Record this process as the owner of ``folder`` (plus ``extra`` fields), atomically."""
    pid = os.getpid()
    record = {"pid": pid, "start": process_start(pid), **extra}
    tmp = os.path.join(folder, OWNER_FILE + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(record, fh)
    os.replace(tmp, os.path.join(folder, OWNER_FILE))


def read_owner(folder: str) -> dict | None:
    try:
        with open(os.path.join(folder, OWNER_FILE)) as fh:
            record = json.load(fh)
    except (OSError, ValueError):
        return None
    ok = isinstance(record, dict) and isinstance(record.get("pid"), int) and isinstance(record.get("start"), int)
    return record if ok else None


def note(folder: str | None, **fields: object) -> None:
    """Add ``fields`` (such as ``connection_file``) to the owner record of ``folder``."""
    if folder and os.path.isdir(folder):
        record = read_owner(folder) or {}
        record.update(fields)
        record.pop("pid", None)
        record.pop("start", None)
        write_owner(folder, **record)


def make_private_dir(prefix: str) -> str:
    """A 0700 temp folder with our owner record; removed at normal exit if still there."""
    folder = tempfile.mkdtemp(prefix=prefix)
    write_owner(folder)
    with _lock:
        _made_here.add(folder)
    return folder


def remove_private_dir(folder: str | None) -> None:
    """Remove a folder made by :func:`make_private_dir`."""
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        with _lock:
            _made_here.discard(folder)


def _remove_at_exit() -> None:
    with _lock:
        folders = list(_made_here)
    for folder in folders:
        record = read_owner(folder)
        if record is not None and record["pid"] == os.getpid():  # not in a forked child
            remove_private_dir(folder)


atexit.register(_remove_at_exit)


def _remove_connection_file(path: object) -> None:
    """Remove a kernel connection file named in an owner record: only a regular ``.json`` file of ours."""
    if not isinstance(path, str) or not path.endswith(".json"):
        return
    with contextlib.suppress(OSError):
        st = os.lstat(path)
        if st.st_uid == os.getuid() and os.path.isfile(path) and not os.path.islink(path):
            os.unlink(path)


def stale_folders(root: str | None = None) -> list[str]:
    """Our folders in ``root`` (default: the temp folder) whose owner process is gone."""
    root = root or tempfile.gettempdir()
    stale = []
    try:
        names = os.listdir(root)
    except OSError:
        return []
    for name in names:
        if not name.startswith(FOLDER_PREFIXES):
            continue
        path = os.path.join(root, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if not os.path.isdir(path) or os.path.islink(path) or st.st_uid != os.getuid():
            continue
        record = read_owner(path)
        if record is not None and not owner_alive(record["pid"], record["start"]):
            stale.append(path)
    return stale


def remove_stale_folders(root: str | None = None, owner: int | None = None) -> list[str]:
    """Remove our folders whose owner is dead (only those of pid ``owner`` if given), and the connection
    files they name; returns the folders removed."""
    removed = []
    for folder in stale_folders(root):
        record = read_owner(folder) or {}
        if owner is not None and record.get("pid") != owner:
            continue
        _remove_connection_file(record.get("connection_file"))
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def sweep(root: str | None = None, grace: float = 1.0) -> dict[str, list]:
    """Kill processes marked by dead owners; remove our stale folders and the connection files they name.

    Blocking: run it in a worker thread. Returns what it found, for the log.
    """
    killed = terminate_marked(lambda marker: not marker_owner_alive(marker), grace)
    return {"processes": killed, "folders": remove_stale_folders(root)}


def sweep_once(root: str | None = None) -> dict[str, list] | None:
    """:func:`sweep` on the first call in this process (the next start after a crash); None after."""
    global _swept
    with _lock:
        if _swept:
            return None
        _swept = True
    return sweep(root)
