"""Names in source text, per language: which name a cursor is on, and where a name is declared.

Why regular expressions and no parser: inspection must answer at once, in kernels whose program
is not running (a compiled language between cells) or is busy (a session running a cell). A small
table per language finds the callee at the cursor (``add`` in ``add(1, |``) and the declarations
of a name in the cells the kernel ran (``int add(int a, int b)``), which is what a user wants to
see there: the signature, not the body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Identifier parts of the usual languages.
_ID = r"[A-Za-z_]\w*"
#: Statements that look like ``type name(...)`` to a regex but declare nothing.
_NOT_A_TYPE = r"(?!(?:return|else|case|goto|throw|delete|new|sizeof|yield|await|do|if|while|for|switch)\b)"


@dataclass(frozen=True)
class NameSyntax:
    """One language's names: ``name`` matches one (``{name}`` in a pattern is the name looked up);
    ``call`` says where the callee is when the cursor is on no name: ``c`` before the open
    parenthesis, ``lisp`` right after it, ``apply`` first in the expression (Haskell), ``command``
    first in the command (shell); a pattern ending in ``{`` takes the block it opens."""

    name: str = _ID
    call: str = "c"
    patterns: tuple[str, ...] = ()
    quotes: str = "\"'"
    line_comment: str = "//"


_C_FUNCTION = (rf"^[ \t]*{_NOT_A_TYPE}[A-Za-z_][\w:<>,*&\[\] \t]*?[\s*&]{{name}}\s*"
               r"\((?:[^;{}()]|\([^()]*\))*\)(?:\s*(?:const|noexcept|override|final))*(?:\s*->\s*[\w:<>*& ]+)?"
               r"(?=\s*[{;:])")
_C_TYPE = r"^[ \t]*(?:typedef\s+)?(?:struct|union|enum(?:\s+class)?|class)\s+{name}\b[^;{()]*\{"
_C_TYPEDEF = r"^[ \t]*typedef\b(?:[^;{}]|\{[^{}]*\})*?\b{name}\s*;"
_C_MACRO = r"^[ \t]*#[ \t]*define[ \t]+{name}\b.*$"
_C_VARIABLE = rf"^[ \t]*{_NOT_A_TYPE}[A-Za-z_][\w:<>,*& \t]*?[\s*&]{{name}}\s*(?:\[[^\]]*\]\s*)*(?:=[^;]*)?;"

_JAVA_MODIFIERS = r"(?:(?:public|private|protected|static|final|abstract|synchronized|native|default|strictfp)\s+)*"

SYNTAX: dict[str, NameSyntax] = {
    "c": NameSyntax(patterns=(_C_FUNCTION, _C_TYPE, _C_TYPEDEF, _C_MACRO, _C_VARIABLE)),
    "c++": NameSyntax(name=rf"(?:{_ID}::)*~?{_ID}",
                      patterns=(_C_FUNCTION, _C_TYPE, _C_TYPEDEF, _C_MACRO, _C_VARIABLE)),
    "go": NameSyntax(name=rf"{_ID}(?:\.{_ID})*", quotes="\"'`", patterns=(
        r"^func\s+(?:\([^)]*\)\s*)?{name}\s*(?:\[[^\]]*\])?\s*\([^)]*\)[^{\n]*",
        r"^[ \t]*type\s+{name}\b[^\n{]*\{",
        r"^[ \t]*type\s+{name}\b[^\n{]*$",
        r"^[ \t]*(?:var|const)\s+{name}\b[^\n]*",
        r"^[ \t]*{name}\s*:=[^\n]*",
    )),
    "rust": NameSyntax(name=rf"(?:{_ID}::)*{_ID}", quotes='"', patterns=(
        r"^[ \t]*(?:pub(?:\([^)]*\))?\s+)?(?:(?:const|async|unsafe|extern\s+\"[^\"]*\")\s+)*fn\s+{name}\b"
        r"(?:<[^>]*>)?\s*\([^)]*\)(?:\s*->\s*[^{;\n]+)?",
        r"^[ \t]*(?:pub(?:\([^)]*\))?\s+)?(?:struct|enum|union|trait)\s+{name}\b[^;{]*\{",
        r"^[ \t]*(?:pub(?:\([^)]*\))?\s+)?(?:struct|type)\s+{name}\b[^;{]*;",
        r"^[ \t]*(?:pub\s+)?(?:const|static)\s+(?:mut\s+)?{name}\b[^;]*;",
        r"^[ \t]*let\s+(?:mut\s+)?{name}\b[^;]*;",
    )),
    "java": NameSyntax(name=r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*", patterns=(
        rf"^[ \t]*{_JAVA_MODIFIERS}(?:<[^>]*>\s+)?{_NOT_A_TYPE}[A-Za-z_][\w<>\[\],.? ]*\s+{{name}}\s*\([^)]*\)"
        r"(?:\s*throws\s+[\w.,\s]+?)?(?=\s*[{;])",
        rf"^[ \t]*{_JAVA_MODIFIERS}(?:sealed\s+|non-sealed\s+)?(?:class|interface|enum|record)\s+{{name}}\b[^{{]*",
        rf"^[ \t]*{_JAVA_MODIFIERS}{_NOT_A_TYPE}[A-Za-z_][\w<>\[\],.? ]*\s+{{name}}\s*(?:=[^;]*)?;",
    )),
    "javascript": NameSyntax(name=r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*", quotes="\"'`", patterns=(
        r"^[ \t]*(?:export\s+)?(?:async\s+)?function\s*\*?\s*{name}\s*\([^)]*\)",
        r"^[ \t]*(?:export\s+)?class\s+{name}\b[^{\n]*",
        r"^[ \t]*(?:const|let|var)\s+{name}\s*=[^\n]*",
    )),
    "lua": NameSyntax(name=rf"{_ID}(?:[.:]{_ID})*", line_comment="--", patterns=(
        r"^[ \t]*(?:local\s+)?function\s+(?:[\w.:]+[.:])?{name}\s*\([^)]*\)",
        r"^[ \t]*(?:local\s+)?{name}\s*=[^=\n][^\n]*",
    )),
    "R": NameSyntax(name=r"(?:[A-Za-z.][\w.]*:::?)?[A-Za-z.][\w.]*", quotes="\"'`", line_comment="#", patterns=(
        r"^[ \t]*`?{name}`?\s*(?:<<?-|=)\s*function\s*\([^)]*\)",
        r"^[ \t]*`?{name}`?\s*(?:<<?-|=)[^\n]*",
    )),
    "php": NameSyntax(name=rf"\${_ID}|\\?(?:{_ID}\\)*{_ID}(?:::\$?{_ID})?", patterns=(
        r"^[ \t]*(?:(?:public|private|protected|static|final|abstract)\s+)*function\s+&?{name}\s*\([^)]*\)"
        r"(?:\s*:\s*\??[\w\\|]+)?",
        r"^[ \t]*(?:(?:final|abstract|readonly)\s+)*(?:class|interface|trait|enum)\s+{name}\b[^{\n]*",
        r"^[ \t]*\$?{name}\s*=[^=\n][^\n]*",
    )),
    "octave": NameSyntax(name=rf"{_ID}(?:\.{_ID})*", quotes='"', line_comment="%", patterns=(
        r"^[ \t]*function\s+(?:(?:\[[^\]]*\]|\w+)\s*=\s*)?{name}\b(?:\s*\([^)]*\))?",
        r"^[ \t]*{name}\s*=[^=\n][^\n]*",
    )),
    "haskell": NameSyntax(name=r"(?:[A-Z][\w']*\.)*[A-Za-z_][\w']*", call="apply", quotes='"', line_comment="--",
                          patterns=(
        r"^{name}\s*::[^\n]*(?:\n[ \t]+[^\n]*)*",
        r"^(?:data|newtype|type|class)\s+(?:[^\n=]*=>\s*)?{name}\b[^\n]*",
        r"^{name}\b[^\n=]*=[^\n]*",
    )),
    "scheme": NameSyntax(name=r"[^\s()\[\]'\"`,;#][^\s()\[\]'\"`,;]*", call="lisp", quotes='"', line_comment=";",
                         patterns=(
        r"^[ \t]*\(define\*?\s+\({name}(?:\s[^)]*)?\)",
        r"^[ \t]*\(define(?:-syntax|-record-type)?\s+{name}(?=[\s)])[^\n]*",
    )),
    "bash": NameSyntax(name=r"[A-Za-z_.][\w.+-]*", call="command", line_comment="#", patterns=(
        r"^[ \t]*(?:function\s+{name}(?:\s*\(\))?|{name}\s*\(\))",
        r"^[ \t]*(?:export\s+|local\s+|readonly\s+|declare\s+(?:-\w+\s+)?)?{name}=[^\n]*",
        r"^[ \t]*alias\s+{name}=[^\n]*",
    )),
    "julia": NameSyntax(name=r"[A-Za-z_][\w!]*(?:\.[A-Za-z_][\w!]*)*", quotes='"', line_comment="#", patterns=(
        r"^[ \t]*function\s+{name}\s*\([^)]*\)",
        r"^[ \t]*{name}\s*\([^)]*\)\s*=[^\n]*",
        r"^[ \t]*(?:mutable\s+)?struct\s+{name}\b[^\n]*",
    )),
}

#: Words that start a shell command without being it (``if grep ...``: the command is grep).
_SHELL_PREFIXES = {"if", "then", "else", "elif", "do", "while", "until", "!", "time", "exec", "command", "sudo"}
#: Where a Haskell expression starts, besides a line's start and an open parenthesis.
_EXPRESSION_STARTS = re.compile(r"=|\$|<-|->|\bin\b|\bthen\b|\belse\b|\bdo\b|,")


def syntax_of(language: str) -> NameSyntax:
    """The table entry of a language (the plain C-like default for others)."""
    return SYNTAX.get(language, NameSyntax())


def _open_parens(code: str, syntax: NameSyntax) -> list[int]:
    """Offsets of the parentheses still open at the end of ``code`` (strings and line comments skipped)."""
    stack: list[int] = []
    i, n = 0, len(code)
    while i < n:
        char = code[i]
        if syntax.line_comment and code.startswith(syntax.line_comment, i):
            end = code.find("\n", i)
            i = n if end < 0 else end
            continue
        if char in syntax.quotes:
            end = i + 1
            while end < n and code[end] != char:
                end += 2 if code[end] == "\\" else 1
            i = end + 1
            continue
        if char == "(":
            stack.append(i)
        elif char == ")" and stack:
            stack.pop()
        i += 1
    return stack


def _first_name(text: str, pattern: re.Pattern[str]) -> str:
    match = pattern.match(text.lstrip(" \t"))
    return match.group(0) if match else ""


def name_at_cursor(code: str, cursor: int, syntax: NameSyntax) -> tuple[str, int]:
    """The name the cursor is in or ends, else the callee of the call it is in; and where it starts."""
    pattern = re.compile(syntax.name)
    line_start = code.rfind("\n", 0, cursor) + 1
    line_end = code.find("\n", cursor)
    line = code[line_start:len(code) if line_end < 0 else line_end]
    for match in pattern.finditer(line):
        if match.start() < cursor - line_start <= match.end():
            return match.group(0), line_start + match.start()
    before = code[:cursor]
    opened = _open_parens(before, syntax)
    if syntax.call == "command":
        segment_start = max(before.rfind(c) for c in "\n;|&(`") + 1
        words = list(re.finditer(r"\S+", before[segment_start:]))
        for word_match in words:  # the command, after `if`, `!`, assignments ...; else the keyword itself
            word = word_match.group(0)
            if (word not in _SHELL_PREFIXES and "=" not in word) or word_match is words[-1]:
                found = pattern.match(word)
                return (found.group(0), segment_start + word_match.start()) if found else ("", cursor)
        return "", cursor
    if syntax.call == "apply":
        start = max(opened[-1] + 1 if opened else 0, line_start)
        text = before[start:]
        starts = [m.end() for m in _EXPRESSION_STARTS.finditer(text)]
        if starts:
            text = text[starts[-1]:]
        name = _first_name(text, pattern)
        return name, len(before) - len(text.lstrip(" \t"))
    if not opened:
        return "", cursor
    if syntax.call == "lisp":
        text = before[opened[-1] + 1:]
        return _first_name(text, pattern), len(before) - len(text.lstrip(" \t"))
    head = before[:opened[-1]].rstrip(" \t")
    found = re.search(rf"(?:{syntax.name})\Z", head[-200:])
    return (found.group(0), len(head) - len(found.group(0))) if found else ("", cursor)


def _with_block(source: str, match: re.Match[str], max_lines: int = 25) -> str:
    """The matched head and the block its ``{`` opens (up to ``max_lines`` lines)."""
    depth, i = 0, match.end() - 1
    while i < len(source):
        depth += {"{": 1, "}": -1}.get(source[i], 0)
        if depth == 0:
            break
        i += 1
    text = source[match.start():i + 1]
    lines = text.split("\n")
    if len(lines) > max_lines:
        lines = [*lines[:max_lines - 1], "    ...", lines[-1]]
    return "\n".join(lines)


def candidates(name: str) -> list[str]:
    """The name, then its last part (``add`` for ``std::add``, ``max`` for ``Math.max``)."""
    last = re.split(r"::|\.|:|\\|->", name)[-1]
    return [name] if last == name or not last else [name, last]


def find_declarations(name: str, sources: list[tuple[str, str]], syntax: NameSyntax,
                      limit: int = 5) -> list[tuple[str, str, int]]:
    """Declarations of ``name`` in ``sources`` ((label, text), searched in order): (label, text, line)."""
    found: list[tuple[str, str, int]] = []
    seen: set[tuple[str, int] | str] = set()  # a line of a cell is shown once (by its first pattern), a text once
    for candidate in candidates(name):
        escaped = re.escape(candidate)
        compiled = [re.compile(p.replace("{name}", escaped), re.M) for p in syntax.patterns]
        for label, source in sources:
            for pattern in compiled:
                for match in pattern.finditer(source):
                    text = _with_block(source, match) if match.group(0).endswith("{") else match.group(0)
                    text = "\n".join(line.rstrip() for line in text.strip("\n").split("\n")).strip()
                    line = source.count("\n", 0, match.start() + len(match.group(0)) - len(match.group(0).lstrip()))
                    if text and text not in seen and (label, line) not in seen:
                        seen |= {text, (label, line)}
                        found.append((label, text, line + 1))
                    if len(found) >= limit:
                        return found
        if found:
            return found
    return found
