"""Shell: one persistent bash session (``cd`` and variables last) on a pseudo-terminal, plus the runner's
shell magics: ``%resize ROWS COLS``, ``%ping`` and ``%show graph [PATH]`` (the git commit graph as a picture).

Why a terminal: the runner's shell was one, and users rely on it: ``tty``, ``stty size``, programs that
want a terminal (``top``, prompts on ``/dev/tty``), and output that arrives line by line instead of when a
program exits (C and Python buffer a pipe, not a terminal). Stderr stays a pipe (errors stay apart).

The magics are registered when this module is imported, i.e. only in the shell kernel's process.
"""

from __future__ import annotations

import os
from typing import Any

from traitlets import Int

from backend_kernel_provisioner.common.languages import LANGUAGES
from backend_kernel_provisioner.kernels.gitgraph import GitGraphError, display_bundle, read_graph
from backend_kernel_provisioner.kernels.magics import MagicError, register_magic
from backend_kernel_provisioner.kernels.session import SessionKernel

SHELL_KEYWORDS = (
    "if then else elif fi case esac for select while until do done in function time coproc "
    "echo printf read cd pwd export local declare unset source alias set shift return exit test "
    "ls cat grep sed awk git"
).split()


class ShellKernel(SessionKernel):
    """The shell recipe: cells are sourced by the loader inside one bash, on a pseudo-terminal."""

    spec = LANGUAGES["shell"]

    mimetype = "text/x-sh"
    file_extension = ".sh"
    pygments_lexer = "bash"
    codemirror_mode = "shell"
    keywords = tuple(SHELL_KEYWORDS)
    line_comment = "#"
    block_comment = None
    loader = "bash_loader.sh"
    use_pty = True

    terminal_rows = Int(24, config=True, help="Rows of the shell's terminal until %resize changes them.")
    terminal_columns = Int(80, config=True, help="Columns of the shell's terminal until %resize changes them.")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: The size %resize set (it outlives a session restart); None: the configured size.
        self.window: tuple[int, int] | None = None

    def terminal_size(self) -> tuple[int, int]:
        return self.window or (self.terminal_rows, self.terminal_columns)

    async def resize(self, rows: int, columns: int) -> dict[str, Any]:
        """Set the terminal's window size (TIOCSWINSZ: its programs get SIGWINCH) and LINES/COLUMNS."""
        self.window = (rows, columns)
        session = await self.start_session()  # a new session starts at this size
        if session.child.terminal is not None:
            session.child.terminal.set_size(rows, columns)
        return await self.run_in_session(f"export LINES={rows} COLUMNS={columns}")

    def session_argv(self, program: str, loader: str) -> list[str]:
        return [program, "--noprofile", "--norc", loader]

    def session_cwd(self) -> str:
        """The shell's current directory (``cd`` in cells moves it)."""
        session = self.interp_session
        if session is not None and session.running:
            try:
                return os.readlink(f"/proc/{session.child.pid}/cwd")
            except OSError:
                pass
        return os.getcwd()


async def _resize(kernel: Any, argument: str) -> int:
    parts = argument.split()
    if len(parts) != 2 or not all(p.isdigit() and 0 < int(p) < 65536 for p in parts):
        raise MagicError("usage: %resize ROWS COLS (two integers from 1 to 65535)")
    rows, cols = parts
    answer = await kernel.resize(int(rows), int(cols))
    if answer.get("status") != "ok":
        raise MagicError(f"the shell did not accept the size: {answer.get('evalue', '')}")
    kernel.stream("stdout", f"terminal size set to {rows} rows x {cols} columns\n")
    return 0


def _ping(kernel: Any, argument: str) -> int:
    kernel.stream("stdout", "pong\n")
    return 0


async def _show(kernel: Any, argument: str) -> int:
    what, _, path = argument.strip().partition(" ")
    if what != "graph":
        raise MagicError("usage: %show graph [PATH] (the git commit graph of the repository at PATH)")
    base = kernel.session_cwd() if hasattr(kernel, "session_cwd") else os.getcwd()
    folder = os.path.join(base, os.path.expanduser(path.strip())) if path.strip() else base
    try:
        commits = await read_graph(folder)
    except GitGraphError as exc:
        raise MagicError(str(exc)) from None
    if not kernel._silent:
        kernel.send_response(kernel.iopub_socket, "display_data", display_bundle(commits, folder))
    return 0


register_magic("resize", _resize, "%resize ROWS COLS sets the window size of the shell's terminal "
                                  "(what stty size says, SIGWINCH, LINES/COLUMNS).")
register_magic("ping", _ping, "%ping answers pong (a liveness check).")
register_magic("show", _show, "%show graph [PATH] shows the git commit graph of a repository (default: "
                              "the shell's current directory) as a picture, with the commit list as "
                              "application/vnd.sorna.gitgraph.")

kernel_class = ShellKernel
