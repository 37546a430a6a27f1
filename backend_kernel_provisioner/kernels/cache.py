"""A bounded cache of build outputs, keyed by everything that changes the result.

The cache holds programs the kernel runs, and ``cache_dir`` may be shared by
several kernels, so an entry is only used when nobody else could have put it
there or changed it since it was built:

* **The root is ours.** The cache folder must be a directory owned by this
  user and writable by nobody else (no group or other write bit), and every
  folder above it must be owned by this user or root and not writable by
  others unless sticky (``/tmp``), as OpenSSH's ``StrictModes`` asks. We create
  it with mode 0700. A root that fails is not used: one warning, then the
  kernel's private cache (``fallback``) takes its place.
* **Entries are ours.** An entry (a folder named by the key) and everything
  in it must be owned by this user and not group/world-writable.
* **Entries are what we built.** When a build becomes an entry, every file's
  SHA-256 (and every symlink's target) goes into ``.manifest.json`` (mode
  0600) inside it; a lookup re-hashes the files and refuses an entry with a
  missing, changed or extra file. The key names *what* was built (sources,
  flags, compiler); the manifest proves the files are the ones that build made.

A refused entry is removed when we can and built again (one warning each).
Ownership and modes are what keep other users out; the manifest catches a
file replaced after the build by a process of the same user that writes into
the cache by name (another kernel's cell, say). Nothing here defends against
root, or against a same-user process racing the check and the run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

#: The file in each entry listing its files' SHA-256 (``{"path": "sha256:..."}`` or ``"link:target"``).
MANIFEST = ".manifest.json"


def cache_key(*parts: object) -> str:
    """Stable hash of the sources, flags, compiler and its version."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def _size(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def _unsafe(st: os.stat_result, what: str, path: str | os.PathLike[str]) -> str | None:
    """Why a file of ours is not trusted (another owner, writable by others), or None."""
    if st.st_uid != os.geteuid():
        return f"{what} {path} is owned by uid {st.st_uid}, not by us (uid {os.geteuid()})"
    if st.st_mode & 0o022 and not stat.S_ISLNK(st.st_mode):
        return f"{what} {path} is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def root_problem(root: Path) -> str | None:
    """Why ``root`` (a resolved path) must not hold programs we run, or None."""
    for parent in reversed(root.parents):
        try:
            st = os.stat(parent)
        except FileNotFoundError:
            break  # created below, by us
        if st.st_uid not in (0, os.geteuid()):
            return f"the folder {parent} above the cache is owned by uid {st.st_uid}"
        if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
            return f"the folder {parent} above the cache is writable by others (mode {stat.S_IMODE(st.st_mode):04o})"
    try:
        st = os.lstat(root)
    except FileNotFoundError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        return f"the cache {root} is not a directory"
    return _unsafe(st, "the cache", root)


def manifest_of(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` (but the manifest): its SHA-256, or a symlink's target."""
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, folder)
            if rel == MANIFEST:
                continue
            found[rel] = "link:" + os.readlink(path) if os.path.islink(path) else _sha256(path)
    return found


def _drop_group_and_other_write(folder: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in [".", *dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o022:
                os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o022)


def entry_problem(entry: Path) -> str | None:
    """Why the entry at ``entry`` must not be run: not ours, writable by others, or changed since its build."""
    try:
        st = os.lstat(entry)
    except FileNotFoundError:
        return "it is gone"
    if not stat.S_ISDIR(st.st_mode):
        return f"{entry} is not a directory"
    for dirpath, dirnames, filenames in os.walk(entry):
        for name in [".", *dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            problem = _unsafe(os.lstat(path), "the cache entry's file", os.path.normpath(path))
            if problem:
                return problem
    try:
        recorded = json.loads((entry / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        return f"its manifest cannot be read ({exc})"
    if stat.S_IMODE(os.lstat(entry / MANIFEST).st_mode) & 0o077:
        return f"its manifest {entry / MANIFEST} is readable or writable by others"
    actual = manifest_of(entry)
    changed = sorted(set(recorded) ^ set(actual) | {k for k in recorded if actual.get(k) != recorded[k]})
    if changed:
        return f"its content differs from what was built ({', '.join(changed[:5])})"
    return None


def _checked(entry: Path) -> str | None:
    try:
        return entry_problem(entry)
    except OSError as exc:  # changed under us while we looked
        return f"it cannot be checked ({exc})"


class BuildCache:
    """Folders of built programs under ``root``, least recently used evicted past ``max_bytes``.

    A build happens in a fresh folder from :meth:`new_build_dir` and becomes an entry
    with one atomic rename (:meth:`commit`), so a failed or interrupted build never
    leaves a half entry behind. Only entries that pass the checks in the module's
    docstring are returned; a root that fails them is replaced by ``fallback``.
    Calls may block (hashing): the kernel runs them in a worker thread and shows
    :meth:`take_warnings` afterwards.
    """

    def __init__(self, root: str | os.PathLike[str], max_bytes: int, *,
                 fallback: str | os.PathLike[str] | None = None) -> None:
        self.configured = Path(root)
        self.fallback = Path(fallback) if fallback is not None else None
        self.max_bytes = max_bytes
        self._warned: set[str] = set()
        self._pending: list[str] = []

    # -- warnings ---------------------------------------------------------------------

    def _warn(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            self._pending.append(message)

    def take_warnings(self) -> list[str]:
        """Warnings not shown yet (each problem is reported once)."""
        pending, self._pending = self._pending, []
        return pending

    # -- the root ---------------------------------------------------------------------

    @property
    def root(self) -> Path:
        """The folder in use: the configured one when it is safe, else the private fallback (created 0700)."""
        configured = Path(os.path.realpath(self.configured))
        problem = root_problem(configured)
        if problem is None:
            return self._made(configured)
        private = Path(os.path.realpath(self.fallback)) if self.fallback is not None else None
        if private is None or private == configured or root_problem(private) is not None:
            private = Path(tempfile.mkdtemp(prefix="backend-cache-"))
            self.fallback = private
        self._warn(f"compile cache {self.configured} is not used: {problem}; using the private cache {private}")
        return self._made(private)

    @staticmethod
    def _made(root: Path) -> Path:
        if not root.exists():
            root.mkdir(mode=0o700, parents=True, exist_ok=True)
        return root

    # -- entries ----------------------------------------------------------------------

    def lookup(self, key: str) -> Path | None:
        """The entry for ``key`` if it exists and passes the checks; a refused one is removed."""
        entry = self.root / key
        if not os.path.lexists(entry):
            return None
        problem = _checked(entry)
        if problem is not None:
            self._warn(f"compile cache entry {entry} is not used: {problem}; building again")
            self._discard(entry)
            return None
        now = time.time()
        os.utime(entry, (now, now))
        return entry

    def new_build_dir(self) -> Path:
        return Path(tempfile.mkdtemp(prefix=".build-", dir=self.root))

    def commit(self, build_dir: Path, key: str) -> Path:
        """Record the build's manifest and make it the entry for ``key``; returns the folder to run."""
        _drop_group_and_other_write(build_dir)  # a umask of 002 must not make every entry refused
        fd = os.open(build_dir / MANIFEST, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(manifest_of(build_dir), fh, sort_keys=True)
        entry = build_dir.parent / key
        for _ in range(2):
            try:
                os.rename(build_dir, entry)
                break
            except OSError:  # the entry exists: another kernel sharing the cache made it first, or it is bad
                if _checked(entry) is None:
                    shutil.rmtree(build_dir, ignore_errors=True)
                    break
                self._discard(entry)
        else:
            return build_dir  # a bad entry we cannot remove: run our own build, uncached
        self.evict(keep=key)
        return entry

    def _discard(self, entry: Path) -> None:
        """Move a refused entry out of the way (then remove it); nothing happens when we may not."""
        aside = entry.parent / f".bad-{entry.name}-{os.getpid()}-{time.monotonic_ns()}"
        try:
            os.rename(entry, aside)
        except OSError:
            return
        shutil.rmtree(aside, ignore_errors=True)

    def evict(self, keep: str = "") -> None:
        root = self.root
        entries = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
        sizes = {p: _size(p) for p in entries}
        total = sum(sizes.values())
        for entry in sorted(entries, key=lambda p: p.stat().st_mtime):
            if total <= self.max_bytes:
                break
            if entry.name == keep:
                continue
            shutil.rmtree(entry, ignore_errors=True)
            total -= sizes[entry]
