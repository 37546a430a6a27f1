"""Toolchain versions remembered between kernel starts.

Why: ``kernel_info`` (the first request of every frontend) carries the
language's version, and asking the toolchain costs a process per start:
3 ms for ``gcc``, 20 ms for ``R``, 50 ms for ``octave``, 100-250 ms for ``java``
and ``ghc``, all of it on the way to the kernel's first answer. The answer is
kept per program file, keyed by its real path, size and modification time
(an upgrade replaces the file, and so the key), in
``$XDG_CACHE_HOME/backend-kernel-provisioner/toolchain-versions.json``.
Only a version string is kept: a wrong entry misnames a version, nothing more.
Where the folder cannot be written the version is simply asked each time.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence

#: Entries kept at most (a machine has a few dozen toolchains; old keys go first).
MAX_ENTRIES = 200


def cache_file() -> str:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "backend-kernel-provisioner", "toolchain-versions.json")


def _key(program: str, args: Sequence[str]) -> str | None:
    try:
        real = os.path.realpath(program)
        info = os.stat(real)
    except OSError:
        return None
    return json.dumps([real, info.st_size, info.st_mtime_ns, list(args)])


def _load(path: str) -> dict[str, str]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def _store(path: str, entries: dict[str, str]) -> None:
    """Write atomically (another kernel may read or write it at the same time); failures are ignored."""
    with contextlib.suppress(OSError):
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".versions-", dir=os.path.dirname(path))
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(dict(list(entries.items())[-MAX_ENTRIES:]), fh)
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def remembered(program: str, args: Sequence[str], detect: Callable[[], str]) -> str:
    """The version ``detect()`` finds for ``program`` run with ``args``: from the file when this very
    program file was asked before, else asked now and written down (an empty answer is not kept)."""
    key = _key(program, args)
    if key is None:
        return detect()
    path = cache_file()
    entries = _load(path)
    if key in entries:
        return entries[key]
    version = detect()
    if version:
        entries.pop(key, None)
        entries[key] = version
        _store(path, entries)
    return version
