"""Persistent sessions: one long-lived interpreter per kernel, so state lasts between cells.

A recipe declares its interpreter (the language table's program) and its
loader; this base starts the interpreter (:mod:`.interpreter` holds the side
channel and the loader protocol), sends cells and completions to it, serves
its reads of stdin through ``input_request``, and interrupts only the cell,
restarting the session when a cell does not stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any, ClassVar

from traitlets import Float, Unicode

from backend_kernel_provisioner.kernels import completion_rank, displays, syntax, toolchain_versions
from backend_kernel_provisioner.kernels.base import BackendKernel, CellResult
from backend_kernel_provisioner.kernels.blocked_reads import descendants
from backend_kernel_provisioner.kernels.inspection import SessionInspection
from backend_kernel_provisioner.kernels.interpreter import InterpreterSession, SessionEnded, SessionStartError
from backend_kernel_provisioner.kernels.process import ChildProcess, OutputRelay, ProgramNotFound
from backend_kernel_provisioner.kernels.terminal import DEFAULT_SIZE

LOADERS_DIR = Path(__file__).with_name("loaders")
RESTART_NOTICE = "session restarted, state lost"


class _Router:
    """Output of the interpreter goes to the current cell's relay (the last one between cells)."""

    def __init__(self, kernel: SessionKernel) -> None:
        self.kernel = kernel

    def feed(self, name: str, data: bytes) -> None:
        self.kernel.relay.feed(name, data)

    def display(self, line: Any, folder: Path) -> None:
        displays.publish(self.kernel, line, folder)


class SessionKernel(SessionInspection, BackendKernel):
    """Base of the persistent-interpreter recipes: declare the interpreter and the loader file."""

    # -- what a recipe declares ------------------------------------------------------
    interpreter: ClassVar[str] = ""          # program looked up on PATH (default: the spec's program)
    loader: ClassVar[str] = ""               # file name under kernels/loaders/
    version_args: ClassVar[tuple[str, ...]] = ()  # default: the spec's version arguments
    #: The loader also checks the session's ``interrupt`` flag file after its blocking calls, for
    #: interpreters that act on SIGINT late or not at all while a call blocks (R, Octave, Scheme).
    interrupt_by_flag: ClassVar[bool] = False
    #: The loader opens the cells channel anew for each request (Octave): it is told ``exit`` at shutdown.
    loader_reopens_cells: ClassVar[bool] = False
    #: The interpreter runs on a pseudo-terminal (stdin and stdout; see terminal.py) of ``terminal_size()``.
    use_pty: ClassVar[bool] = False
    #: Seconds after an interrupt before a read of stdin still blocked is given a line: an interpreter
    #: that aborts the read itself does so within microseconds of the signal, and one whose read
    #: restarts (R, Octave, Lua, PHP) only sees the interrupt once the read returns.
    stdin_wake_delay: ClassVar[float] = 0.03

    interpreter_path = Unicode(
        "", config=True,
        help="The interpreter to run (a name on PATH or a path); default: the recipe's interpreter.",
    )
    startup_timeout = Float(60.0, config=True, help="Seconds the interpreter has to start its loader.")
    session_interrupt_grace = Float(
        3.0, config=True,
        help="Seconds a cell has to stop after an interrupt before the session is killed and restarted "
        "(its state is then lost).",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.interp_session: InterpreterSession | None = None
        self._held: list[tuple[str, str]] = []  # what the interpreter printed before the first cell
        self.relay = OutputRelay(lambda name, text: self._held.append((name, text)), limit=0)
        self._early_start: asyncio.Future[Any] | None = None
        self._router = _Router(self)
        self._folders = itertools.count(1)
        self._cell_serial = 0
        self._killed_on_interrupt = False

    # -- recipe hooks ----------------------------------------------------------------------

    def session_argv(self, program: str, loader: str) -> list[str]:
        """The command starting the interpreter on its loader."""
        return [program, loader]

    def cell_text(self, code: str) -> str:
        """The text the loader evaluates (recipes may strip a prefix such as ``<?php``)."""
        return code

    def interrupt_session(self, child: ChildProcess) -> None:
        """Ask the running cell to stop, keeping the interpreter: the flag file when the recipe
        uses it, then SIGINT to the interpreter's process group."""
        if self.interrupt_by_flag:
            self.raise_interrupt_flag()
        child.signal(signal.SIGINT)

    def raise_interrupt_flag(self) -> None:
        """Name the running request in the session's ``interrupt`` flag file (see interpreter.py)."""
        if self.interp_session is not None:
            self.interp_session.raise_interrupt_flag()

    def terminal_size(self) -> tuple[int, int]:
        """Rows and columns of the interpreter's terminal when the recipe ``use_pty``."""
        return DEFAULT_SIZE

    def result_data(self, text: str) -> dict[str, Any]:
        """MIME bundle of a cell's value (the loader's ``result``)."""
        return {"text/plain": text}

    # -- the session -----------------------------------------------------------------------

    @property
    def program(self) -> str:
        return self.interpreter_path or self.interpreter or (self.spec.program if self.spec else "")

    def detect_version(self) -> str:
        program = self.which(self.program)
        if program is None:
            return ""
        version_args = self.version_args or (self.spec.version_args if self.spec else ("--version",))

        def ask() -> str:
            done = subprocess.run([program, *version_args], capture_output=True, text=True, timeout=30,
                                  env=self.child_env())
            match = re.search(r"\d+\.\d+(?:\.\d+)?", done.stdout + done.stderr)
            return match.group(0) if match else ""

        return toolchain_versions.remembered(program, version_args, ask)

    async def kernel_info_request(self, stream: Any, ident: Any, parent: Any) -> None:
        """Answer, then start the interpreter: a frontend asks this first, and the interpreter's own start
        (R, Octave, Node.js: 50-200 ms) then passes while the user types, not in the first cell."""
        await super().kernel_info_request(stream, ident, parent)
        if self._early_start is None and self.interp_session is None:
            self._early_start = asyncio.ensure_future(self._start_early())

    async def _start_early(self) -> None:
        try:
            await self.start_session()
        except Exception as exc:  # the first cell starts it again, and says what went wrong
            self.log.debug("the interpreter did not start ahead of the first cell: %s", exc)

    async def start_session(self) -> InterpreterSession:
        """A running session, started (or restarted, with a notice) when needed."""
        early = self._early_start
        if early is not None and not early.done() and asyncio.current_task() is not early:
            await asyncio.wait([early])  # the start begun after kernel_info: this one uses it
        if self.interp_session is not None and self.interp_session.running:
            return self.interp_session
        if self.interp_session is not None:
            code = self.interp_session.returncode
            self.interp_session.close()
            self.interp_session = None
            self.stream("stderr", f"[the {self.display_language or self.language_name} session ended "
                                  f"(exit code {code}); {RESTART_NOTICE}]\n")
        program = self.which(self.program)
        if program is None:
            raise ProgramNotFound(self.program)
        loader = LOADERS_DIR / self.loader
        folder = Path(self.work_dir) / f"session-{next(self._folders)}"
        self.interp_session = await InterpreterSession.start(
            self.session_argv(program, str(loader)), cwd=os.getcwd(), env=self.child_env(), folder=folder,
            output=self._router, timeout=self.startup_timeout,
            terminal=self.terminal_size() if self.use_pty else None)
        self.resources.program_started(program, self.interp_session.child, persistent=True)
        return self.interp_session

    async def run_in_session(self, code: str) -> dict[str, Any]:
        """Evaluate ``code`` in the session outside a user cell (magics); returns the loader's answer."""
        session = await self.start_session()
        answer = await session.request("run", self.cell_text(code))
        await session.drain()
        self.relay.flush()
        return answer

    # -- execute ---------------------------------------------------------------------------

    async def execute_code(self, code: str) -> CellResult:
        self._cell_serial += 1
        self._killed_on_interrupt = False
        self.relay.close()
        self.relay = OutputRelay(self.stream, limit=self.output_limit)
        held, self._held = self._held, []
        for name, text in held:  # the interpreter's start-up messages, in the first cell as before
            self.stream(name, text)
        try:
            session = await self.start_session()
        except SessionStartError as exc:
            await asyncio.sleep(0.1)
            self.relay.flush()
            return CellResult(1, "SessionStartError", str(exc))
        serving = asyncio.ensure_future(self._serve_input(session))
        try:
            answer = await session.request("run", self.cell_text(code))
        except SessionEnded as ended:
            return await self._after_death(session, ended)
        finally:
            serving.cancel()
        await session.drain()
        self.relay.flush()
        if self.interrupted and answer.get("status") == "ok":
            # The interpreter lost the interrupt (libc's system() ignores SIGINT while it waits, a
            # read woken by our newline returns normally): the cell still ends as interrupted.
            return CellResult.interrupted()
        return self._cell_result(answer)

    async def _after_death(self, session: InterpreterSession, ended: SessionEnded) -> CellResult:
        await session.drain(0.5)
        self.relay.flush()
        session.close()
        self.interp_session = None
        if self._killed_on_interrupt:
            reason = "the cell did not stop on interrupt"
        else:
            reason = f"the interpreter exited with code {ended.returncode}"
        self.stream("stderr", f"[{reason}; {RESTART_NOTICE}]\n")
        with contextlib.suppress(SessionStartError, ProgramNotFound):
            await self.start_session()
        self.relay.flush()
        exit_code = ended.returncode if ended.returncode and ended.returncode > 0 else 1
        return CellResult(exit_code, "SessionRestarted", f"{reason}; {RESTART_NOTICE}")

    def _cell_result(self, answer: dict[str, Any]) -> CellResult:
        if answer.get("status") == "ok":
            result = answer.get("result")
            if isinstance(result, str) and result and not self._silent:
                self.send_response(self.iopub_socket, "execute_result", {
                    "execution_count": self.execution_count,
                    "data": {**self.result_data(result), **displays.result_data(answer)}, "metadata": {}})
            return CellResult()
        exit_code = answer.get("exit_code")
        exit_code = exit_code if isinstance(exit_code, int) and exit_code > 0 else 1
        ename = str(answer.get("ename") or "Error")
        evalue = str(answer.get("evalue") or f"exit code {exit_code}")
        traceback = [str(line) for line in answer.get("traceback") or []]
        return CellResult(exit_code, ename, evalue, traceback)

    async def _serve_input(self, session: InterpreterSession, poll: float = 0.03) -> None:
        """Answer the program's reads of stdin through input_request (the pipe is never closed:
        later cells still need it, so end-of-file or a cell without stdin interrupts the cell)."""
        child = session.child
        while child.running and not self.interrupted:
            await asyncio.sleep(poll)
            if not child.waiting_for_input():
                continue
            await session.drain(0.2)  # a prompt the program just wrote comes before the input box
            self.relay.flush()
            if not self._allow_stdin:
                self.stream("stderr", "[the cell reads standard input, but this frontend does not allow "
                                      "input; interrupting it]\n")
                self.interrupt_cell()
                return
            answer = await self.request_input("", False)
            if answer is None:
                if not self.interrupted:
                    self.stream("stderr", "[end of input cannot be sent to a persistent session; "
                                          "interrupting the cell]\n")
                    self.interrupt_cell()
                return
            await child.write_input(answer + "\n")

    # -- interrupt, completion, shutdown -----------------------------------------------------

    def interrupt_cell(self) -> None:
        """Interrupt only the cell; kill and restart the session if it does not stop in time."""
        self.interrupted = True
        if self._interrupt_event is not None:
            self._interrupt_event.set()
        session = self.interp_session
        if session is None or not session.running or not self._cell_running:
            return
        self.interrupt_session(session.child)
        serial = self._cell_serial
        self._loop.call_later(self.stdin_wake_delay, self._wake_reader, session, serial)
        self._loop.call_later(self.session_interrupt_grace, self._kill_stuck, session, serial)

    def _wake_reader(self, session: InterpreterSession, serial: int) -> None:
        """A cell blocked reading stdin only sees the interrupt once its read returns: give it a line."""
        if self._cell_running and serial == self._cell_serial and session.child.waiting_for_input():
            asyncio.ensure_future(session.child.write_input("\n"))

    def _kill_stuck(self, session: InterpreterSession, serial: int) -> None:
        if self._cell_running and serial == self._cell_serial and session.running:
            self._killed_on_interrupt = True
            session.child.kill_tree()

    def signal_user_processes(self, child: ChildProcess, signum: int = signal.SIGINT) -> None:
        """Signal everything below the interpreter, not the interpreter itself."""
        for pid in descendants(child.pid)[1:]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)

    async def do_complete(self, code: str, cursor_pos: int) -> dict[str, Any]:
        cursor_pos = len(code) if cursor_pos is None else cursor_pos
        base = await super().do_complete(code, cursor_pos)
        if self._cell_running or (self.interp_session is not None and self.interp_session.current is not None):
            return base  # a request in flight (is_complete, inspect): two must never wait for answers at once
        try:
            session = await self.start_session()
            answer = await session.request("complete", code[:cursor_pos], timeout=5)
        except (SessionEnded, SessionStartError, ProgramNotFound, asyncio.TimeoutError, OSError):
            return base
        matches = [str(m) for m in answer.get("matches") or []]
        token = answer.get("token")
        if not isinstance(token, str):
            token, _ = syntax.token_before(code, cursor_pos)
        extra = {k for k in self.keywords if token and k.startswith(token)}
        if base["cursor_start"] == cursor_pos - len(token):
            extra |= set(base["matches"])
        merged = completion_rank.rank(set(matches) | extra)  # public names first
        return {"status": "ok", "matches": merged, "cursor_start": cursor_pos - len(token),
                "cursor_end": cursor_pos, "metadata": {}}

    async def stop_children(self) -> None:
        """The running program, then the interpreter, each given ``shutdown_grace`` to exit cleanly."""
        await super().stop_children()
        if self._early_start is not None and not self._early_start.done():  # let it finish, then stop it
            await asyncio.wait([self._early_start], timeout=self.shutdown_grace)
        session, self.interp_session = self.interp_session, None
        if session is not None and not await session.stop(self.shutdown_grace, self.loader_reopens_cells):
            self.log.warning("the %s interpreter did not exit within %g s of the end of its input; killed",
                             self.display_language or self.language_name, self.shutdown_grace)

    def kill_children(self) -> None:
        super().kill_children()
        session, self.interp_session = self.interp_session, None
        if session is not None:
            session.close()
