"""Figures a session interpreter saved as image files: published as ``display_data`` after the cell.

Why files: the loaders (R, Octave, Julia) can render a plot to PNG but have no channel for rich
output; the kernel picks up ``figure-*.png`` from the session folder once the cell has answered.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

FIGURE_PATTERN = "figure-*.png"


def take_figures(folder: Path) -> list[bytes]:
    """The PNG files the cell left in ``folder``, oldest first; the files are removed."""
    images = []
    for path in sorted(folder.glob(FIGURE_PATTERN)):
        with contextlib.suppress(OSError):
            data = path.read_bytes()
            if data.startswith(b"\x89PNG"):
                images.append(data)
        with contextlib.suppress(OSError):
            path.unlink()
    return images


def publish_figures(folder: Path, send: Callable[[str, dict[str, Any]], None]) -> int:
    """Send each figure as ``display_data`` with ``image/png`` (base64); returns how many."""
    images = take_figures(folder)
    for number, data in enumerate(images, 1):
        send("display_data", {"data": {"image/png": base64.b64encode(data).decode("ascii"),
                                       "text/plain": f"<Figure {number}>"},
                              "metadata": {}})
    return len(images)


class FiguresAfterCells:
    """Mixin for a SessionKernel recipe: after each cell, publish the figures its loader saved."""

    async def execute_code(self, code: str) -> Any:
        result = await super().execute_code(code)  # type: ignore[misc]
        session = self.interp_session  # type: ignore[attr-defined]
        if session is not None and not self._silent:  # type: ignore[attr-defined]
            publish_figures(session.folder,
                            lambda kind, content: self.send_response(self.iopub_socket, kind, content))  # type: ignore[attr-defined]
        return result
