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
        self._displays: dict[str, int] = {}  # display_id -> index of its item, until the items are taken

    def add_stream(self, name: str, text: str) -> None:
        if not text:
            return
        kind = "stderr" if name == "stderr" else "stdout"
        if self._items and self._items[-1][0] == kind:
            self._items[-1][1] = cut_utf8(self._items[-1][1] + text, self.max_record_bytes)
        else:
            self._items.append([kind, cut_utf8(text, self.max_record_bytes)])

    def add_display(self, data: dict[str, Any], display_id: str | None = None, update: bool = False) -> None:
        """A display_data/execute_result bundle becomes one item: media, html, or plain text. An
        ``update_display_data`` replaces its display's item while the agent has not taken it yet."""
        item = self._bundle_item(data)
        if item is None:
            return
        if update and display_id in self._displays:
            self._items[self._displays[display_id]] = item
        elif display_id:  # its own item (never merged into a neighbouring stream), so it can be replaced
            self._displays[display_id] = len(self._items)
            self._items.append(item)
        elif item[0] == "stdout":
            self.add_stream("stdout", item[1])
        else:
            self._items.append(item)

    def _bundle_item(self, data: dict[str, Any]) -> list[Any] | None:
        for mime in MEDIA_PREFERENCE:
            if mime in data:
                value = data[mime]
                if isinstance(value, str):
                    value = cut_utf8(value, self.max_record_bytes)
                return ["media", [mime, value]]
        if "text/html" in data:
            return ["html", cut_utf8(data["text/html"], self.max_record_bytes)]
        plain = data.get("text/plain")
        if plain is None:
            return None
        return ["stdout", cut_utf8(plain if plain.endswith("\n") else plain + "\n", self.max_record_bytes)]

    def add_error(self, content: dict[str, Any]) -> None:
        traceback = content.get("traceback") or [f"{content.get('ename')}: {content.get('evalue')}"]
        self.add_stream("stderr", "\n".join(traceback) + "\n")

    def take(self) -> list[list[Any]]:
        self._displays.clear()
        items, self._items = self._items, []
        return items
