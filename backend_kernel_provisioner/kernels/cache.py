"""A bounded cache of build outputs, keyed by everything that changes the result."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path


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


class BuildCache:
    """Folders of built programs under ``root``, least recently used evicted past ``max_bytes``.

    A build happens in a fresh folder from :meth:`new_build_dir` and becomes an entry
    with one atomic rename (:meth:`commit`), so a failed or interrupted build never
    leaves a half entry behind.
    """

    def __init__(self, root: str | os.PathLike[str], max_bytes: int) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes

    def lookup(self, key: str) -> Path | None:
        entry = self.root / key
        if not entry.is_dir():
            return None
        now = time.time()
        os.utime(entry, (now, now))
        return entry

    def new_build_dir(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".build-", dir=self.root))

    def commit(self, build_dir: Path, key: str) -> Path:
        entry = self.root / key
        try:
            os.rename(build_dir, entry)
        except OSError:  # another kernel sharing the cache made it first
            shutil.rmtree(build_dir, ignore_errors=True)
        self.evict(keep=key)
        return entry

    def evict(self, keep: str = "") -> None:
        entries = [p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")]
        sizes = {p: _size(p) for p in entries}
        total = sum(sizes.values())
        for entry in sorted(entries, key=lambda p: p.stat().st_mtime):
            if total <= self.max_bytes:
                break
            if entry.name == keep:
                continue
            shutil.rmtree(entry, ignore_errors=True)
            total -= sizes[entry]
