"""Language-neutral source helpers: bracket balance for is_complete, words for completion."""

from __future__ import annotations

import re

_PAIRS = {")": "(", "]": "[", "}": "{"}
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def bracket_status(code: str, line_comment: str = "//", block_comment: tuple[str, str] | None = ("/*", "*/"),
                   quotes: str = "\"'") -> str:
    """``complete``, ``incomplete`` (an open bracket, string or comment) or ``invalid`` (a stray closer)."""
    stack: list[str] = []
    i, n = 0, len(code)
    while i < n:
        if line_comment and code.startswith(line_comment, i):
            end = code.find("\n", i)
            i = n if end < 0 else end
            continue
        if block_comment and code.startswith(block_comment[0], i):
            end = code.find(block_comment[1], i + len(block_comment[0]))
            if end < 0:
                return "incomplete"
            i = end + len(block_comment[1])
            continue
        char = code[i]
        if char in quotes:
            j = i + 1
            while j < n and code[j] != char and code[j] != "\n":
                j += 2 if code[j] == "\\" else 1
            if j >= n:
                return "incomplete"
            i = j + 1
            continue
        if char in "([{":
            stack.append(char)
        elif char in _PAIRS and (not stack or stack.pop() != _PAIRS[char]):
            return "invalid"
        i += 1
    return "incomplete" if stack else "complete"


def words(code: str, min_length: int = 2) -> set[str]:
    """Identifiers in ``code`` (remembered for completion)."""
    return {w for w in _WORD.findall(code) if len(w) >= min_length}


def token_before(code: str, cursor_pos: int) -> tuple[str, int]:
    """The identifier (or ``%magic``) ending at the cursor, and where it starts."""
    start = cursor_pos
    while start > 0 and (code[start - 1].isalnum() or code[start - 1] in "_%"):
        start -= 1
    return code[start:cursor_pos], start
