"""``history_request`` answered from the kernel's own record of its cells (tail, range and search).

Why: frontends ask the kernel, not their own files, for the code run before (``jupyter console`` loads
its up-arrow history that way, JupyterLab's console too, and ``%history``-like tools search it); a kernel
that answers nothing looks as if nothing had been run. ipykernel's IPython kernel keeps its history in
SQLite; ours keep the cells of this kernel's life in memory, numbered by ``execution_count`` as the
``execute_input`` messages are, in one session numbered :data:`SESSION` (0 and negative numbers mean the
current session and the ones before it, as IPython's do; there are none before).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

#: The session number of every entry: the kernel remembers only its own life.
SESSION = 1
#: Cells kept (the oldest are dropped beyond it) and the longest cell text kept whole.
MAX_CELLS = 10_000
MAX_CELL_CHARS = 100_000


@dataclass
class Entry:
    line: int
    source: str
    output: str | None = None


class CellHistory:
    """Mixin for an ipykernel ``Kernel``: records each cell stored in the history (``store_history`` and not
    ``silent``, as IPython) with its ``execute_result`` text, and answers ``history_request``."""

    _history_entries: list[Entry] | None = None

    @property
    def history_entries(self) -> list[Entry]:
        if self._history_entries is None:
            self._history_entries = []
        return self._history_entries

    async def execute_request(self, stream: Any, ident: Any, parent: dict[str, Any]) -> None:
        content = parent.get("content") or {}
        silent = bool(content.get("silent", False))
        stored = bool(content.get("store_history", not silent)) and not silent
        if stored:  # recorded before it runs, under the number ipykernel is about to give it (IPython records
            # before running too: a cell that never ends is still in the history)
            self._record(self.execution_count + 1, str(content.get("code", "")))  # type: ignore[attr-defined]
        await super().execute_request(stream, ident, parent)  # type: ignore[misc]

    def _record(self, line: int, source: str) -> None:
        entries = self.history_entries
        entries.append(Entry(line, source[:MAX_CELL_CHARS]))
        del entries[:-MAX_CELLS]

    def send_response(self, stream: Any, msg_or_type: Any, content: Any = None, *args: Any, **kwargs: Any) -> Any:
        """The cell's ``execute_result`` is its output in the history (``output=True`` requests)."""
        if msg_or_type == "execute_result" and isinstance(content, dict):
            text = (content.get("data") or {}).get("text/plain")
            for entry in reversed(self.history_entries):
                if entry.line == content.get("execution_count"):
                    entry.output = text if isinstance(text, str) else None
                    break
        return super().send_response(stream, msg_or_type, content, *args, **kwargs)  # type: ignore[misc]

    async def do_history(self, hist_access_type: str, output: bool, raw: bool, session: int | None = None,
                         start: int | None = None, stop: int | None = None, n: int | None = None,
                         pattern: str | None = None, unique: bool = False, **kwargs: Any) -> dict[str, Any]:
        entries = select(self.history_entries, hist_access_type, session, start, stop, n, pattern, unique)
        history = [(SESSION, e.line, (e.source, e.output) if output else e.source) for e in entries]
        return {"status": "ok", "history": history}


def select(entries: list[Entry], access: str, session: int | None = None, start: int | None = None,
           stop: int | None = None, n: int | None = None, pattern: str | None = None,
           unique: bool = False) -> list[Entry]:
    """The entries a ``history_request`` asks for, oldest first (IPython's semantics):

    * ``tail``: the last ``n`` (10 by default);
    * ``range``: lines ``start`` (1 by default) up to ``stop`` (excluded; the end by default) of ``session``;
    * ``search``: cells whose whole text matches the glob ``pattern`` (``*``, ``?``, ``[...]``, case-sensitive
      as SQLite's GLOB), the last ``n`` of them when ``n`` is given, each text once with ``unique``.
    """
    if access == "tail":
        count = 10 if n is None else max(int(n), 0)
        return entries[-count:] if count else []
    if access == "range":
        if session not in (None, 0, SESSION):
            return []
        first = 1 if start is None else int(start)
        return [e for e in entries if e.line >= first and (stop is None or e.line < int(stop))]
    if access == "search":
        found = [e for e in entries if fnmatch.fnmatchcase(e.source, pattern or "*")]
        if unique:
            last: dict[str, Entry] = {e.source: e for e in found}
            found = [e for e in found if last[e.source] is e]
        return found[-int(n):] if n else found
    return []
