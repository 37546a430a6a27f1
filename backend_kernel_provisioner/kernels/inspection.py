"""Inspect (Shift-Tab in JupyterLab, ``name?`` in a console): what the name at the cursor is.

Why from the language itself: a user of IRkernel expects R's help page, of ijavascript the
function's signature, of IHaskell GHCi's ``:info``. A session kernel therefore asks its loader
(``<id> inspect <path>``, the file holding the name and the detail level; see interpreter.py), which
answers with the language's own help, signature or value. A compiled kernel has no program to ask:
it shows the declarations of the name in the cell and in the cells it ran before (regular
expressions per language, :mod:`.declarations`) and what the toolchain documents
(:mod:`.toolchain_docs`: C's manual pages, ``go doc``, ``javap``).

While a cell runs, the interpreter is busy and the request must not wait for it (see
ipykernel_private.IntrospectBesideCell): the answer then comes from the recorded declarations and
the keyword table, or is ``found: false``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from traitlets import Float
from traitlets.config import Configurable

from backend_kernel_provisioner.kernels import declarations, magics, toolchain_docs
from backend_kernel_provisioner.kernels.interpreter import SessionEnded, SessionStartError
from backend_kernel_provisioner.kernels.process import ProgramNotFound

#: Cells remembered for declarations (the newest first), and the most text kept of one cell.
MAX_CELLS = 200
MAX_CELL_CHARS = 200_000
#: Most characters of one answer (a long help page is cut with a notice).
MAX_TEXT = 20_000
#: Loaders that answer ``inspect`` (a loader that does not know a request word may run the text: the others
#: are never asked, their kernels answer from the cells' declarations).
INSPECTING_LOADERS = frozenset({"bash_loader.sh", "ghci_loader.ghci", "guile_loader.scm", "lua_loader.lua",
                                "node_loader.js", "octave_loader.m", "php_loader.php", "r_loader.R"})


def not_found() -> dict[str, Any]:
    return {"status": "ok", "found": False, "data": {}, "metadata": {}}


def found(text: str) -> dict[str, Any]:
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT] + "\n[... cut]"
    return {"status": "ok", "found": True, "data": {"text/plain": text}, "metadata": {}}


class Inspection(Configurable):
    """Mixin for a ``BackendKernel``: ``do_inspect`` from the recorded cells; subclasses add the language."""

    inspect_timeout = Float(
        10.0, config=True,
        help="Seconds an inspection (Shift-Tab) waits for the language's answer (the interpreter's help, a "
             "toolchain's documentation program); without it, the answer comes from the cells' declarations and "
             "the keyword table.",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: What the kernel already ran, for declarations: (label, text), oldest first.
        self.inspect_cells: list[tuple[str, str]] = []

    @property
    def name_syntax(self) -> declarations.NameSyntax:
        return declarations.syntax_of(self.language_name)  # type: ignore[attr-defined]

    async def do_execute(self, code: str, silent: bool, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Remember the cell (its declarations answer later inspections), then run it."""
        if not silent and code.strip():
            self.inspect_cells.append((f"cell [{self.execution_count}]", code[:MAX_CELL_CHARS]))  # type: ignore[attr-defined]
            del self.inspect_cells[:-MAX_CELLS]
        return await super().do_execute(code, silent, *args, **kwargs)  # type: ignore[misc]

    async def do_inspect(self, code: str, cursor_pos: int | None, detail_level: int = 0,
                         omit_sections: Any = ()) -> dict[str, Any]:
        cursor = len(code) if cursor_pos is None else cursor_pos
        name, start = declarations.name_at_cursor(code, cursor, self.name_syntax)
        if not name:
            return not_found()
        magic = magics.registered().get(name) if start > 0 and code[start - 1] == "%" else None
        if magic is not None:
            return found(f"%{magic.name}: {magic.help or 'a magic of this kernel'}")
        try:
            text = await self.inspect_name(name, code, int(detail_level or 0))
        except Exception:  # an inspection never fails the request: the user just sees nothing
            self.log.warning("inspecting %r failed", name, exc_info=True)  # type: ignore[attr-defined]
            text = ""
        return found(text) if text else not_found()

    async def inspect_name(self, name: str, code: str, detail: int) -> str:
        """The text shown for ``name`` ('' when nothing is known); subclasses ask the language first."""
        return self.declared(name, code)

    def declared(self, name: str, code: str) -> str:
        """The declarations of ``name`` in ``code`` (the cell being edited) and the cells run before."""
        sources = [("this cell", code), *reversed(self.inspect_cells)]
        shown = []
        for label, text, line in declarations.find_declarations(name, sources, self.name_syntax):
            shown.append(f"{text}\n    ({label}, line {line})")
        return "\n\n".join(shown)

    def keyword_text(self, name: str, busy: bool = False) -> str:
        """What the keyword table says (while the interpreter is busy, all a session kernel knows)."""
        if name not in self.keywords:  # type: ignore[attr-defined]
            return ""
        language = self.display_language or self.language_name  # type: ignore[attr-defined]
        text = f"{name}: a keyword or common name of {language}."
        if busy:
            text += "\n(A cell is running: inspect again when it has finished for the interpreter's own answer.)"
        return text


class SessionInspection(Inspection):
    """Mixin for ``SessionKernel``: the loader answers from the interpreter when it is free."""

    async def inspect_name(self, name: str, code: str, detail: int) -> str:
        text = await self.ask_loader(name, detail)
        if text is None:  # busy: never wait for the running cell
            return self.declared(name, code) or self.keyword_text(name, busy=True)
        return text or self.declared(name, code) or self.keyword_text(name)

    async def ask_loader(self, name: str, detail: int) -> str | None:
        """The loader's text for ``name`` ('' when it knows nothing), None when the interpreter is busy."""
        if self.loader not in INSPECTING_LOADERS:  # type: ignore[attr-defined]
            return ""
        if self._cell_running:  # type: ignore[attr-defined]
            return None
        try:
            session = await self.start_session()  # type: ignore[attr-defined]
        except (SessionStartError, ProgramNotFound, OSError):
            return ""
        if session.current is not None or self._cell_running:  # type: ignore[attr-defined]
            return None  # another request (a completion beside this one) is being answered
        try:
            answer = await session.request("inspect", f"{name}\n{detail}\n", timeout=self.inspect_timeout)
        except (SessionEnded, asyncio.TimeoutError, OSError):
            return ""
        if answer.get("status") != "ok" or answer.get("found") is not True:
            return ""
        return str(answer.get("text") or "").rstrip()


class CompiledInspection(Inspection):
    """Mixin for ``CompiledKernel``: the cells' declarations, else what the toolchain documents."""

    async def inspect_name(self, name: str, code: str, detail: int) -> str:
        text = self.declared(name, code)
        if text:
            return text
        document = toolchain_docs.TOOLCHAIN_DOCS.get(self.language_name)  # type: ignore[attr-defined]
        if document is None:
            return self.keyword_text(name)
        for candidate in declarations.candidates(name):
            text = await document(candidate, self.child_env(), self.inspect_timeout)  # type: ignore[attr-defined]
            if text:
                return text
        return self.keyword_text(name)
