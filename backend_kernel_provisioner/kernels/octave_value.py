"""Where an Octave cell's value is: its last line, when that line is a bare expression (``6 * 7``, ``x``).

Why: Octave prints a bare expression's value itself (``ans = 42``), as text among the cell's output; a
notebook shows a cell's value as its ``execute_result``, as the other session kernels give it. Octave has
no way to tell a loader where a cell's last statement starts, so the kernel finds it here: when the last
line is one whole expression statement (no assignment, no ``;`` or ``,``, no keyword, not a command such as
``hold on``, not continued from the line before, brackets, strings and block comments of the lines before
closed), the text for the loader is the lines before it, a line holding only ``SEPARATOR``, then that
line. The loader runs the lines before, then the expression with its display suppressed, and answers
what Octave would have printed (``ans = 42``, ``x = 1``) as the result. Any other cell goes as it is.
"""

from __future__ import annotations

import re
from typing import NamedTuple

SEPARATOR = "\x1e"
KEYWORDS = frozenset((
    "if elseif else end endif for endfor parfor endparfor while endwhile do until switch case otherwise "
    "endswitch function endfunction return break continue try catch end_try_catch unwind_protect "
    "unwind_protect_cleanup end_unwind_protect global persistent classdef endclassdef methods endmethods "
    "properties endproperties events endevents enumeration endenumeration"
).split())
_COMMAND = re.compile(r"[A-Za-z_]\w*\s+(?:[A-Za-z0-9_'\"]|-(?![\s=]))")  # `hold on`, `pkg load x`, `format -long`
_WORD = re.compile(r"[A-Za-z_]\w*")
_BLOCK_COMMENT = re.compile(r"[ \t]*[%#]([{}])[ \t]*")
_VALUE_END = re.compile(r"[\w)\]}.']")  # after these a ' is the transpose, not a string


class _Scan(NamedTuple):
    top: str        # the line's code at bracket depth 0 outside strings and comments (a string or group: ``0``)
    depth: int      # its bracket balance
    end: int        # where its comment starts (its length without one)
    separator: int  # where its last ``;`` or ``,`` at depth 0 is (-1: none)


def _scan(line: str) -> _Scan | None:
    """What the line holds outside strings and comments; None when a string is left open."""
    top: list[str] = []
    depth = 0
    separator = -1
    i = 0
    while i < len(line):
        char = line[i]
        if char in "%#":
            return _Scan("".join(top), depth, i, separator)
        if char == '"' or (char == "'" and not (i and _VALUE_END.match(line[i - 1]))):
            i += 1
            while i < len(line):
                if char == '"' and line[i] == "\\":
                    i += 2
                    continue
                if line[i] == char:
                    if line[i + 1:i + 2] == char:  # a doubled quote is one quote
                        i += 2
                        continue
                    break
                i += 1
            else:
                return None
            top.append("0" if depth == 0 else "")
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                top.append("0")
        elif depth == 0:
            top.append(char)
            if char in ";,":
                separator = i
        i += 1
    return _Scan("".join(top), depth, len(line), separator)


def _is_expression(line: str) -> bool:
    stripped = line.strip()
    scanned = _scan(stripped)
    if not stripped or scanned is None or scanned.depth != 0:
        return False
    top = scanned.top.rstrip()
    word = _WORD.match(stripped)
    if word is not None and word.group(0) in KEYWORDS:
        return False
    if _COMMAND.match(stripped) or top.endswith("...") or not top or any(c in top for c in ";,"):
        return False
    assignment = re.search(r"(?<![=~!<>])=(?!=)", top)
    return assignment is None


def _closed(lines: list[str]) -> bool:
    """The lines before the last one leave no bracket, block comment or continuation open."""
    depth = 0
    in_comment = False
    for line in lines:
        block = _BLOCK_COMMENT.fullmatch(line)
        if block is not None:
            in_comment = block.group(1) == "{"
            continue
        if in_comment:
            continue
        scanned = _scan(line)
        if scanned is None:
            return False
        depth += scanned.depth
    last_code = next((line for line in reversed(lines) if line.strip()), "")
    scanned = _scan(last_code)
    continued = scanned is not None and scanned.top.rstrip().endswith(("...", "\\"))
    return depth == 0 and not in_comment and not continued


def cell_text(code: str) -> str:
    """The text for the loader: the cell, split before its last statement when that is a bare expression on
    the last line (``x = 3; x`` splits after the ``;``); the expression goes without its comment (the loader
    appends ``;`` to it)."""
    lines = code.rstrip().split("\n")
    scanned = _scan(lines[-1])
    if scanned is None or SEPARATOR in code or not _closed(lines[:-1]):
        return code
    before, last = lines[:-1], lines[-1][:scanned.end]
    if scanned.separator >= 0 and scanned.depth == 0:
        start = lines[-1][:scanned.separator + 1]
        word = _WORD.match(start.strip())
        if word is not None and word.group(0) in KEYWORDS:
            return code  # `if x, y, end` and the like: one statement
        before, last = [*before, start], last[scanned.separator + 1:]
    if not _is_expression(last):
        return code
    return "\n".join([*before, SEPARATOR, last.strip()])
