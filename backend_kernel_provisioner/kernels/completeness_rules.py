"""A language's blocks read without its interpreter: the fallback of :mod:`.completeness`.

Why rules and not only brackets: ``function f(x)`` (Lua), ``for i = 1:3`` (Octave), ``f x =`` (Haskell)
or ``x <- 1 +`` (R) balance their brackets and still ask for more; a console that ran them at once would
fail. The interpreter's own parser is the better judge (:mod:`.completeness` asks it first); these rules
answer when it cannot: before the session started, while a cell runs, and for languages whose interpreter
has no parse-only call (GHCi, Julia). Comments and strings are masked first, so a keyword or bracket in
them counts for nothing; then brackets and block words are counted on one stack, and the code's end is
checked for what still needs an operand or a body.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

# -- comments and strings ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Region:
    """A comment or string: where it starts, and the pattern that ends it, matched right after the start
    (or a function of the start's match giving that pattern: Lua's ``[==[`` ends with ``]==]``)."""

    start: str
    close: str | Callable[[re.Match[str]], str]
    #: A region that cannot span lines and is left open ends at its line (an error the language reports).
    multiline: bool = True


def _line_comment(prefix: str) -> Region:
    return Region(re.escape(prefix), r"[^\n]*")


def _quoted(quote: str, multiline: bool) -> Region:
    """A string with backslash escapes."""
    q = re.escape(quote)
    return Region(q, rf"(?:[^{q}\\]|\\.)*{q}" if multiline else rf"(?:[^{q}\\\n]|\\.)*{q}", multiline)


def _lua_long(match: re.Match[str]) -> str:
    return rf".*?\]{match.group('eq')}\]"


_C_COMMENTS = (_line_comment("//"), Region(r"/\*", r".*?\*/"))
#: Octave's and Julia's ``'`` is a string unless it follows a value (then it is the transpose).
_APOSTROPHE = r"(?<![\w)\]}.'])'"
LEXICONS: dict[str, tuple[Region, ...]] = {
    "lua": (Region(r"--\[(?P<eq>=*)\[", _lua_long), _line_comment("--"), Region(r"\[(?P<eq>=*)\[", _lua_long),
            _quoted('"', False), _quoted("'", False)),
    "octave": (Region(r"(?m)^[ \t]*[%#]\{[ \t]*$", r".*?^[ \t]*[%#]\}[ \t]*$"),
               Region(r"\.\.\.", r"[^\n]*\n(?=\s*\S)"),  # a continuation needs a next line
               Region(r"[%#]", r"[^\n]*"), _quoted('"', False),
               Region(_APOSTROPHE, r"(?:[^'\n]|'')*'(?!')", multiline=False)),
    "julia": (Region("#=", r".*?=#"), _line_comment("#"), Region('"""', r'.*?"""'), _quoted('"', True),
              Region(_APOSTROPHE, r"(?:[^'\\\n]|\\.)+'", multiline=False)),
    "r": (_line_comment("#"), _quoted('"', True), _quoted("'", True), _quoted("`", True)),
    "haskell": (Region(r"\{-", r".*?-\}"), Region(r"--(?![!#$%&*+./<=>?@\\^|~:])", r"[^\n]*"),
                _quoted('"', False), Region(r"(?<![\w'])'", r"(?:[^'\\\n]|\\[^\n]+?)'", multiline=False)),
    "scheme": (Region(r"#\|", r".*?\|#"), Region(r"#\\", r"(?:x[0-9a-fA-F]+|[a-z]+\b|.)"), _line_comment(";"),
               _quoted('"', True)),
    "shell": (Region(r"(?<![^\s;&|()])#", r"[^\n]*"), _quoted('"', True), Region("'", "[^']*'")),
    "nodejs": (*_C_COMMENTS, _quoted('"', False), _quoted("'", False), _quoted("`", True)),
    "php": (*_C_COMMENTS, Region(r"#(?!\[)", r"[^\n]*"), _quoted('"', True), _quoted("'", True)),
}


def _blank(text: str) -> str:
    return re.sub(r"[^\n]", " ", text)


def mask(code: str, regions: tuple[Region, ...]) -> tuple[str, bool]:
    """``code`` with its comments and strings blanked (line breaks kept), and whether one is open at the end."""
    starts = [re.compile(r.start) for r in regions]
    out: list[str] = []
    pos = 0
    while True:
        found = [(m.start(), i, m) for i, pattern in enumerate(starts) if (m := pattern.search(code, pos))]
        if not found:
            out.append(code[pos:])
            return "".join(out), False
        at, index, match = min(found, key=lambda f: (f[0], f[1]))
        region = regions[index]
        close = region.close(match) if callable(region.close) else region.close
        closing = re.compile(close, re.S | re.M).match(code, match.end())
        out.append(code[pos:at])
        if closing is not None:
            out.append(_blank(code[at:closing.end()]))
            pos = closing.end()
            continue
        line_end = code.find("\n", match.end())
        if region.multiline or line_end < 0:
            out.append(_blank(code[at:]))
            return "".join(out), True
        out.append(_blank(code[at:line_end]))
        pos = line_end


# -- blocks --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Blocks:
    """Words that open and close a block, whether they count inside brackets (Octave's ``x(end)`` is an
    index and Julia's ``[i for i in v]`` has no ``end``, but Lua's ``f(function() ... end)`` is a block),
    what at the code's end asks for more (a trailing operator, a keyword before its body), and one level
    of indentation."""

    openers: frozenset[str] = frozenset()
    closers: frozenset[str] = frozenset()
    inside_brackets: bool = False
    continues: str = ""
    indent: str = "    "


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


BLOCKS: dict[str, Blocks] = {
    "lua": Blocks(_words("function do repeat if"), _words("end until"), True,
                  r"(?:[-+*/%^&~|<>=,:.]|\b(?:and|or|not|local))\s*\Z", "  "),
    "octave": Blocks(_words("for parfor while if switch function do try unwind_protect"),
                     _words("end endfor endparfor endwhile endif endswitch endfunction until end_try_catch "
                            "end_unwind_protect"), indent="  "),
    "julia": Blocks(_words("function macro module baremodule struct if for while let begin quote try do"),
                    _words("end"), continues=r"(?:[-+*/\\^<>=!&|~?:,%]|->)\s*\Z"),
    "r": Blocks(continues=r"(?:[-+*/^<>=!&|~?:,$@]|%[^%\n]*%|\b(?:else|repeat))\s*\Z", indent="  "),
    "haskell": Blocks(continues=r"(?:[-+*/$.<>=&|^!:@~?#%\\,]|\b(?:do|mdo|of|where|let|in|then|else|if|case|rec))"
                                r"\s*\Z", indent="  "),
    "nodejs": Blocks(continues=r"(?:(?<![-+])[-+]|[*/%=&|^<>!?:,.]|=>)\s*\Z"),
    "php": Blocks(continues=r"(?:(?<![-+])[-+]|[*/%=&|^<!:,.]|(?<!\?)>)\s*\Z"),
    "scheme": Blocks(indent="  "),
    "shell": Blocks(_words("if case do"), _words("fi esac done"), True,
                    r"(?:(?:\|\||&&|(?<![|&])\|)\s*|(?<!\\)(?:\\\\)*\\)\Z", "  "),
}

_TOKEN = re.compile(r"[A-Za-z_]\w*|[()\[\]{}]")
_PAIRS = {")": "(", "]": "[", "}": "{"}


def _stack(masked: str, blocks: Blocks) -> tuple[str, int, int]:
    """complete/incomplete/invalid from brackets and block words, with the open depth before the last line
    and at the end (the continuation is indented one level deeper when the last line opened something)."""
    stack: list[str] = []
    last_line = masked.rfind("\n", 0, len(masked.rstrip())) + 1
    before = -1
    for match in _TOKEN.finditer(masked):
        if before < 0 and match.start() >= last_line:
            before = len(stack)
        token = match.group()
        counted = blocks.inside_brackets or not any(t in "([{" for t in stack)
        if token in "([{" or (counted and token in blocks.openers):
            stack.append(token)
        elif token in _PAIRS:
            if not stack or stack.pop() != _PAIRS[token]:
                return "invalid", 0, 0
        elif counted and token in blocks.closers:
            if not stack or stack[-1] in "([{":
                return "invalid", 0, 0
            stack.pop()
    if before < 0:
        before = len(stack)
    return ("incomplete" if stack else "complete"), before, len(stack)


def _r_header_at_end(masked: str) -> bool:
    """The code ends with an R ``if (...)``-like header whose body is still to come."""
    text = masked.rstrip()
    if not text.endswith(")"):
        return False
    depth = 0
    for i in range(len(text) - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(text[i], 0)
        if depth == 0:
            return bool(re.search(r"\b(?:if|for|while|function)\s*\Z", text[:i]))
    return False


def _haskell_layout_open(code: str) -> bool:
    """``:{`` without ``:}``, or indented lines not yet ended by a blank line: GHCi reads a definition
    written over several lines until the layout is over, as its own ``:{`` does."""
    lines = code.split("\n")
    if sum(line.strip() == ":{" for line in lines) > sum(line.strip() == ":}" for line in lines):
        return True
    written = [line for line in lines if line.strip()]
    return len(written) >= 2 and bool(lines[-1].strip()) and lines[-1][:1].isspace()


def status(language: str, code: str, brackets: Callable[[str], str]) -> tuple[str, str]:
    """``(status, indent)`` of ``code`` by ``language``'s rules; ``brackets(code)`` (the bracket balance of
    :mod:`.syntax`) decides for a language without rules here (the compiled ones: a cell is a program)."""
    regions = LEXICONS.get(language)
    blocks = BLOCKS.get(language)
    if regions is None or blocks is None:
        verdict = brackets(code)
        return verdict, _indent(code, "    ", grow=True) if verdict == "incomplete" else ""
    masked, open_at_end = mask(code, regions)
    if open_at_end:
        return "incomplete", _indent(code, "", grow=False)
    verdict, before, after = _stack(masked, blocks)
    if verdict == "invalid":
        return verdict, ""
    continues = bool(blocks.continues and re.search(blocks.continues, masked))
    continues = continues or (language == "r" and _r_header_at_end(masked))
    if verdict == "incomplete" or continues:
        return "incomplete", _indent(code, blocks.indent, grow=after > before or continues)
    if language == "haskell" and _haskell_layout_open(code):
        return "incomplete", _indent(code, blocks.indent, grow=False)
    return "complete", ""


def _indent(code: str, unit: str, grow: bool) -> str:
    """The last written line's indentation, one ``unit`` deeper when that line opened a block."""
    lines = [line for line in code.split("\n") if line.strip()]
    base = re.match(r"[ \t]*", lines[-1]).group() if lines else ""  # type: ignore[union-attr]
    return base + unit if grow else base
