"""``is_complete`` asked of the language itself: does the input end early, and how is the next line indented.

Why ask the language: only its parser knows its blocks. ``jupyter console`` (and JupyterLab's console on
Enter) send each line typed so far; a kernel that answered from bracket balance alone ran ``function f(x)``
(Lua), ``for i = 1:3`` (Octave) or ``if true; then`` (shell) at once, and they failed. So:

* the shell asks ``bash -n`` (a separate process of a few milliseconds, so it answers beside a running cell
  too): "unexpected end of file" means incomplete;
* the session kernels whose loader answers ``<id> is_complete <path>`` (R's ``parse``, Node's
  ``vm.Script``, Lua's ``load``, PHP's ``token_get_all``, Octave's parser, Guile's ``read``) ask their
  interpreter when it is idle: it parses without running anything;
* otherwise (the interpreter not started yet, busy with a cell or another request, a loader that does not
  answer in time, GHCi and Julia, which have no parse-only call here), the rules of
  :mod:`.completeness_rules` decide: brackets, strings, comments and the language's block words.

Nothing here ever waits for a running cell: a frontend gives up on a kernel that does not answer
``is_complete`` within a second (``jupyter console``'s ``kernel_is_complete_timeout``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from typing import Any

from backend_kernel_provisioner.kernels import completeness_rules, magics, syntax
from backend_kernel_provisioner.kernels.interpreter import SessionEnded

#: Loaders that answer ``is_complete`` requests (a loader that does not know the word would take the
#: request for a cell and run it, so only these are asked).
ANSWERING_LOADERS = frozenset({
    "r_loader.R", "node_loader.js", "lua_loader.lua", "php_loader.php", "octave_loader.m", "guile_loader.scm",
})
#: Seconds the interpreter has to answer before the rules do (well inside a frontend's one second).
LOADER_TIMEOUT = 0.5
#: Seconds ``bash -n`` has.
PROGRAM_TIMEOUT = 0.5
#: Kernels that read another kernel's language (the remote R server's cells are R).
RULES_OF = {"rserver": "r"}
STATUSES = ("complete", "incomplete", "invalid")
_BASH_EARLY_END = re.compile(r"unexpected end of file|unexpected EOF|delimited by end-of-file")
_TRAILING_BACKSLASH = re.compile(r"(?<!\\)(?:\\\\)*\\\Z")


def language_of(kernel: Any) -> str:
    """The key of the kernel's language (``lua``, ``octave``, ...), as the rules name it."""
    spec = getattr(kernel, "spec", None)
    key = spec.key if spec is not None else str(getattr(kernel, "language_name", ""))
    return RULES_OF.get(key, key)


async def is_complete(kernel: Any, code: str) -> dict[str, Any]:
    """The ``is_complete_reply`` content for ``code`` (leading magics, help requests included, are complete)."""
    _, rest = magics.split_magics(code, kernel.line_comment)
    if not rest.strip():
        return {"status": "complete"}
    language = language_of(kernel)
    rules, rules_indent = completeness_rules.status(
        language, rest, lambda text: syntax.bracket_status(text, kernel.line_comment, kernel.block_comment,
                                                           kernel.quotes))
    asked = await _ask_language(kernel, language, rest)
    status, indent = asked if asked is not None else (rules, None)
    if status != "incomplete":
        return {"status": status}
    if indent is None:
        indent = rules_indent if rules == "incomplete" else _last_indent(rest)
    return {"status": "incomplete", "indent": indent}


async def _ask_language(kernel: Any, language: str, code: str) -> tuple[str, str | None] | None:
    """The language's own verdict (and indent, when it gives one), or None when it cannot answer now."""
    if language == "shell":
        return await _bash_syntax(kernel, code)
    if getattr(kernel, "loader", "") in ANSWERING_LOADERS:
        return await _ask_loader(kernel, code)
    return None


async def _ask_loader(kernel: Any, code: str) -> tuple[str, str | None] | None:
    """Ask the session's loader, only when it is idle: a cell running, or another request awaited, would make
    this one wait (and two readers of its answers must never wait at once)."""
    session = getattr(kernel, "interp_session", None)
    if session is None or not session.running or kernel._cell_running or session.current is not None:
        return None
    try:
        # The text as typed, not ``cell_text`` (what a recipe makes of a cell to run it): the loader parses it.
        answer = await session.request("is_complete", code, timeout=LOADER_TIMEOUT)
    except (SessionEnded, asyncio.TimeoutError, OSError, RuntimeError) as exc:
        kernel.log.debug("the interpreter did not answer is_complete (%s); the rules answer", exc)
        return None
    status = answer.get("complete")
    if status not in STATUSES:
        return None
    indent = answer.get("indent")
    return status, indent if isinstance(indent, str) else None


async def _bash_syntax(kernel: Any, code: str) -> tuple[str, str | None] | None:
    """``bash -n`` on the text: it parses without running, and a missing ``fi`` or quote is "unexpected end
    of file" (a here-document cut short is only a warning; a trailing backslash continues the line)."""
    bash = kernel.which(getattr(kernel, "program", "") or "bash") or kernel.which("bash")
    if bash is None:
        return None
    env = {**kernel.child_env(), "LC_ALL": "C", "LANG": "C"}
    env.pop("LANGUAGE", None)
    try:
        proc = await asyncio.create_subprocess_exec(
            bash, "--norc", "--noprofile", "-n", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env, cwd=os.getcwd())
    except OSError:
        return None
    try:
        _, errors = await asyncio.wait_for(proc.communicate(code.encode()), PROGRAM_TIMEOUT)
    except asyncio.TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        return None
    if _BASH_EARLY_END.search(errors.decode(errors="replace")) or _TRAILING_BACKSLASH.search(code.rstrip("\n")):
        return "incomplete", None
    return ("invalid" if proc.returncode else "complete"), None


def _last_indent(code: str) -> str:
    lines = [line for line in code.split("\n") if line.strip()]
    return lines[-1][: len(lines[-1]) - len(lines[-1].lstrip())] if lines else ""
