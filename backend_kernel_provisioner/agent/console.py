"""The runner's ``console``: ordered output items, streams of one kind merged.

Each record is cut at ``max_record_bytes`` (on a UTF-8 character boundary,
so a character is never split) with a notice saying how much was dropped.
"""

from __future__ import annotations

from typing import Any

#: Preferred MIME types for a display, richest first; text/plain is the fallback.
MEDIA_PREFERENCE = (
    "application/x-sorna-drawing",
    "application/vnd.sorna.gitgraph",
    "image/svg+xml",
    "image/png",
    "image/jpeg",
    "image/gif",
    "audio/ogg",
    "audio/wav",
    "audio/mpeg",
    "application/json",
    "text/markdown",
    "text/latex",
)


def cut_utf8(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` UTF-8 bytes, never inside a character."""
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    kept = encoded[:max_bytes].decode("utf-8", errors="ignore")
    dropped = len(encoded) - len(kept.encode("utf-8"))
    return f"{kept}\n[output truncated: {dropped} bytes dropped]\n"


class ConsoleBuffer:
    """Collects console items until the agent takes them."""

    def __init__(self, max_record_bytes: int) -> None:
        self.max_record_bytes = max_record_bytes
        self._items: list[list[Any]] = []

    def add_stream(self, name: str, text: str) -> None:
        if not text:
            return
        kind = "stderr" if name == "stderr" else "stdout"
        if self._items and self._items[-1][0] == kind:
            self._items[-1][1] = cut_utf8(self._items[-1][1] + text, self.max_record_bytes)
        else:
            self._items.append([kind, cut_utf8(text, self.max_record_bytes)])

    def add_display(self, data: dict[str, Any]) -> None:
        """A display_data/execute_result bundle becomes one item: media, html, or plain text."""
        for mime in MEDIA_PREFERENCE:
            if mime in data:
                value = data[mime]
                if isinstance(value, str):
                    value = cut_utf8(value, self.max_record_bytes)
                self._items.append(["media", [mime, value]])
                return
        if "text/html" in data:
            self._items.append(["html", cut_utf8(data["text/html"], self.max_record_bytes)])
            return
        plain = data.get("text/plain")
        if plain is not None:
            self.add_stream("stdout", plain if plain.endswith("\n") else plain + "\n")

    def add_error(self, content: dict[str, Any]) -> None:
        traceback = content.get("traceback") or [f"{content.get('ename')}: {content.get('evalue')}"]
        self.add_stream("stderr", "\n".join(traceback) + "\n")

    def take(self) -> list[list[Any]]:
        items, self._items = self._items, []
        return items
