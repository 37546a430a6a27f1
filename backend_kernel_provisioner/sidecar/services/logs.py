"""Each service's output in its own size-capped, rotating log file.

Log files are created 0600 and never through a symlink: a service's output
can hold tokens and passwords, and the log folder may be moved somewhere
less private than the manager's own 0700 folder.
"""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path
from typing import BinaryIO


class RotatingLog:
    """Appends bytes to ``path``; past ``max_bytes`` it shifts ``path`` to ``path.1`` ... ``path.N``."""

    def __init__(self, path: str | os.PathLike[str], max_bytes: int = 5 * 1024 * 1024, backups: int = 2) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self._open()

    def _open(self) -> BinaryIO:
        """Open for appending, private to us, refusing a symlink planted in the file's place."""
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        os.fchmod(fd, 0o600)
        return os.fdopen(fd, "ab")

    def write(self, data: bytes) -> None:
        if self._fh.closed:
            self._fh = self._open()
        size = self._fh.tell()
        if size and size + len(data) > self.max_bytes:
            self._rotate()
        self._fh.write(data)
        self._fh.flush()

    def line(self, text: str) -> None:
        """A line from the manager itself (prestart logs, exits), marked as such."""
        self.write(f"[service-manager] {text}\n".encode("utf-8", "replace"))

    def _rotate(self) -> None:
        self._fh.close()
        for index in range(self.backups, 0, -1):
            src = self.path.with_name(f"{self.path.name}.{index - 1}") if index > 1 else self.path
            if src.exists():
                os.replace(src, self.path.with_name(f"{self.path.name}.{index}"))
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
        self._fh = self._open()

    def read(self, tail: int | None = None) -> str:
        """The current file's text, or only its last ``tail`` lines."""
        try:
            with open(self.path, "rb") as fh:
                if tail is None:
                    return fh.read().decode("utf-8", "replace")
                lines = deque(fh, maxlen=tail)
        except FileNotFoundError:
            return ""
        return b"".join(lines).decode("utf-8", "replace")

    def close(self) -> None:
        self._fh.close()
