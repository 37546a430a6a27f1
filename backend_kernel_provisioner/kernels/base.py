"""The Jupyter side of every backend kernel: one ipykernel ``Kernel`` subclass.

A language recipe subclasses :class:`BackendKernel` (directly for a long-lived interpreter, or through
``compiled.CompiledKernel``) and implements :meth:`BackendKernel.execute_code`. Everything protocol-related
lives here: magics, streaming, ``input_request``, interrupts (both interrupt modes end up as SIGINT to this
process, which forwards it to the running child), one reply per execute with an ``exit_code``, ``kernel_info``,
completion, ``is_complete``, clean shutdown, what the kernel's limits did to a cell (:mod:`.resource_report`).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import tempfile
from dataclasses import dataclass, field
from typing import Any, ClassVar

import zmq
from ipykernel.kernelbase import Kernel
from traitlets import Dict, Float, Int, TraitError, Unicode

from backend_kernel_provisioner import __version__
from backend_kernel_provisioner.common.childproc import INTERRUPTED_EXIT_CODE, MISSING_PROGRAM_EXIT_CODE, describe_exit
from backend_kernel_provisioner.common.languages import LanguageSpec
from backend_kernel_provisioner.common.leftovers import write_owner
from backend_kernel_provisioner.kernels import completeness, magics, prompt_order, resource_report, syntax
from backend_kernel_provisioner.kernels.history import CellHistory
from backend_kernel_provisioner.kernels.ipykernel_private import (
    AbortQueuedBeforeReply,
    IntrospectBesideCell,
    KernelInfoWithoutDebugger,
    ReplyWithoutIdleFlush,
    ShutdownWithoutFlushRace,
    shell_ident,
)
from backend_kernel_provisioner.kernels.process import (
    ChildProcess,
    OutputRelay,
    ProgramNotFound,
    ProgramResult,
    cell_death_signal,
    find_program,
    run_child,
)


@dataclass
class CellResult:
    """Outcome of one cell: exit code 0 is success, anything else an error reply."""

    exit_code: int = 0
    ename: str = ""
    evalue: str = ""
    traceback: list[str] = field(default_factory=list)

    @classmethod
    def interrupted(cls) -> CellResult:
        return cls(INTERRUPTED_EXIT_CODE, "KeyboardInterrupt", "the cell was interrupted")

    @classmethod
    def missing(cls, program: str, what: str = "") -> CellResult:
        detail = f" ({what})" if what else ""
        return cls(MISSING_PROGRAM_EXIT_CODE, "ToolchainMissing",
                   f"program '{program}'{detail} was not found on PATH; install it or configure "
                   "the kernel to use another one")

    @classmethod
    def from_program(cls, result: ProgramResult, what: str = "program") -> CellResult:
        """Map a child's end to a cell result: exit status or the signal that killed it."""
        if result.signal is not None:
            return cls(result.exit_code, "Signal", f"{what} {describe_exit(result.returncode)}")
        if result.returncode:
            return cls(result.returncode, "ExitCode", f"{what} {describe_exit(result.returncode)}")
        return cls()


def apply_kernel_options(obj: Any, raw: str | None) -> None:
    """Set ``obj``'s configurable traits from the provisioner's JSON (BACKEND_KERNEL_OPTIONS)."""
    if not raw:
        return
    try:
        options = json.loads(raw)
    except ValueError as exc:
        obj.log.warning("BACKEND_KERNEL_OPTIONS is not valid JSON (%s); ignored", exc)
        return
    if not isinstance(options, dict):
        obj.log.warning("BACKEND_KERNEL_OPTIONS must be a JSON object, got %s; ignored", type(options).__name__)
        return
    known = set(obj.trait_names(config=True))
    for key, value in options.items():
        if key not in known:
            obj.log.warning("unknown kernel option %r for %s (known: %s); ignored",
                            key, type(obj).__name__, ", ".join(sorted(known)))
            continue
        try:
            setattr(obj, key, value)
        except TraitError as exc:
            obj.log.warning("kernel option %r has a bad value: %s", key, exc)


class BackendKernel(CellHistory, ReplyWithoutIdleFlush, KernelInfoWithoutDebugger, ShutdownWithoutFlushRace,
                    IntrospectBesideCell, AbortQueuedBeforeReply, Kernel):
    """Base of our own kernels. Subclasses set the class attributes and implement execute_code."""

    implementation = "backend-kernel-provisioner"
    implementation_version = __version__

    # -- what a recipe declares ------------------------------------------------------
    #: The language's table entry; it gives ``language_name``, ``display_language`` and the program.
    spec: ClassVar[LanguageSpec | None] = None
    language_name: ClassVar[str] = "text"
    display_language: ClassVar[str] = ""
    mimetype: ClassVar[str] = "text/plain"
    file_extension: ClassVar[str] = ".txt"
    pygments_lexer: ClassVar[str] = "text"
    codemirror_mode: ClassVar[Any] = "text"
    keywords: ClassVar[tuple[str, ...]] = ()
    line_comment: ClassVar[str] = "//"
    block_comment: ClassVar[tuple[str, str] | None] = ("/*", "*/")
    quotes: ClassVar[str] = "\"'"

    # -- settings ----------------------------------------------------------------------
    output_limit = Int(
        1_000_000, config=True,
        help="Bytes of output one cell may print; beyond it the rest is discarded with a notice (0 = no cap).",
    )
    interrupt_grace = Float(
        0.5, config=True,
        help="Seconds a program has to stop after SIGINT before its whole process tree is killed.",
    )
    shutdown_grace = Float(
        1.0, config=True,
        help="Seconds the interpreter and a running program have to exit cleanly at shutdown (exit "
             "handlers, flushed files) before their process tree is killed. Keep it below half the kernel "
             "manager's shutdown_wait_time (5 s), after which the manager signals the kernel itself.",
    )
    env_overrides = Dict(
        value_trait=Unicode(), config=True,
        help="Environment variables added for every program the kernel runs (%env changes it).",
    )
    work_root = Unicode(
        "", config=True,
        help="Folder under which the kernel makes its temporary work folder (default: the system temp).",
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A recipe that sets ``spec`` gets its names from the table unless it sets them itself."""
        super().__init_subclass__(**kwargs)
        spec = cls.__dict__.get("spec")
        if spec is not None:
            if "language_name" not in cls.__dict__:
                cls.language_name = spec.jupyter_language
            if "display_language" not in cls.__dict__:
                cls.display_language = spec.name

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        apply_kernel_options(self, os.environ.get("BACKEND_KERNEL_OPTIONS"))
        self.work_dir = tempfile.mkdtemp(prefix=f"backend-{self.language_name}-", dir=self.work_root or None)
        write_owner(self.work_dir)  # a SIGKILLed kernel's folder is swept at the next start (common/leftovers.py)
        self.seen_words: set[str] = set()
        self.current_child: ChildProcess | None = None
        self.interrupted = False
        self._cell_running = False
        self._silent = False
        self._interrupt_event: asyncio.Event | None = None
        self._version: str | None = None
        self.resources = resource_report.ResourceWatch.from_env(self.work_dir)  # limits told in the cell

    # -- kernel_info ---------------------------------------------------------------------

    def detect_version(self) -> str:
        """Version of the toolchain found (recipes override); '' when unknown."""
        return ""

    @property
    def toolchain_version(self) -> str:
        if self._version is None:
            try:
                self._version = self.detect_version()
            except (OSError, ValueError, IndexError) as exc:
                self.log.warning("could not detect the %s toolchain version: %s", self.language_name, exc)
                self._version = ""
        return self._version

    @property
    def language_info(self) -> dict[str, Any]:  # type: ignore[override]
        return {
            "name": self.language_name,
            "version": self.toolchain_version,
            "mimetype": self.mimetype,
            "file_extension": self.file_extension,
            "pygments_lexer": self.pygments_lexer,
            "codemirror_mode": self.codemirror_mode,
        }

    @property
    def banner(self) -> str:  # type: ignore[override]
        name = self.display_language or self.language_name
        version = self.toolchain_version or "toolchain not found"
        return f"{name} kernel of backend-kernel-provisioner {__version__} ({version})"

    # -- signals ---------------------------------------------------------------------------

    def start(self) -> None:
        super().start()
        self._loop = asyncio.get_event_loop()
        self._loop.add_signal_handler(signal.SIGINT, self._on_sigint)  # the loop's wakeup fd: no wait for an event

    def pre_handler_hook(self) -> None:
        """Keep our SIGINT handler (ipykernel's would raise KeyboardInterrupt into the loop); post too."""

    post_handler_hook = pre_handler_hook

    def _on_sigint(self) -> None:
        if self._cell_running:
            self.interrupt_cell()

    def interrupt_cell(self) -> None:
        """Stop the running cell: SIGINT to the child's group, SIGKILL to its tree after the grace.

        Interpreter recipes override this to keep their interpreter alive.
        """
        self.interrupted = True
        if self._interrupt_event is not None:
            self._interrupt_event.set()
        child = self.current_child
        if child is not None and child.running:
            child.signal(signal.SIGINT)
            self._loop.call_later(self.interrupt_grace, self._escalate, child)

    @staticmethod
    def _escalate(child: ChildProcess) -> None:
        if child.running:
            child.kill_tree()

    # -- helpers recipes and magics use -----------------------------------------------------

    def stream(self, name: str, text: str) -> None:
        """Publish text on stdout/stderr now (silent cells publish nothing)."""
        if text and not self._silent:
            self.send_response(self.iopub_socket, "stream", {"name": name, "text": text})

    def child_env(self) -> dict[str, str]:
        """Environment for programs the kernel runs: ours plus %env settings."""
        return {**os.environ, **self.env_overrides}

    def which(self, program: str) -> str | None:
        """Full path of ``program`` on the children's PATH (remembered per PATH: process.find_program)."""
        return find_program(program, self.child_env().get("PATH"))

    async def request_input(self, prompt: str = "", password: bool = False) -> str | None:
        """Ask the frontend for one line (input_request); None for end of file or interrupt."""
        if not self._allow_stdin:
            return None
        while True:  # drop stale replies
            try:
                self.stdin_socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
        assert self.session is not None, "a running kernel has its session"
        await prompt_order.iopub_sent(self)  # the output published before goes out first
        parent = self.get_parent("shell")
        ident = shell_ident(self)
        self.session.send(self.stdin_socket, "input_request", {"prompt": prompt, "password": password},
                          parent, ident=ident)
        while not self.interrupted:
            try:
                _, reply = self.session.recv(self.stdin_socket, mode=zmq.NOBLOCK)
            except Exception:  # a malformed message must not end the cell
                self.log.warning("invalid input_reply", exc_info=True)
                reply = None
            if reply:
                value = str(reply.get("content", {}).get("value", ""))
                return None if value == "\x04" else value
            await asyncio.sleep(0.02)
        return None

    async def run_program(self, argv: list[str], *, cwd: str | None = None, env: dict[str, str] | None = None,
                          stdin: bool | None = None, publish: Any = None) -> ProgramResult:
        """Run a program as the cell's child: output streamed, stdin served, interruptible. ``stdin`` defaults
        to whether the cell allows stdin; ``publish(name, text)`` replaces streaming (compiler output)."""
        if self.interrupted:
            return ProgramResult(-signal.SIGINT)
        allow = self._allow_stdin if stdin is None else stdin
        child = await ChildProcess.start(argv, cwd=cwd or os.getcwd(), env=env or self.child_env(), stdin=allow,
                                         death_signal=cell_death_signal())
        self.current_child = child
        self.resources.program_started(argv[0], child)
        relay = OutputRelay(publish or self.stream, limit=self.output_limit)
        try:
            return await run_child(child, relay, self.request_input if allow else None)
        finally:
            self.current_child = None

    # -- execute ------------------------------------------------------------------------------

    async def execute_code(self, code: str) -> CellResult:
        """Run the cell's code (magics already removed). Recipes implement this."""
        raise NotImplementedError

    async def do_execute(self, code: str, silent: bool, store_history: bool = True,
                         user_expressions: dict | None = None, allow_stdin: bool = False,
                         **kwargs: Any) -> dict[str, Any]:
        self.interrupted, self._interrupt_event = False, asyncio.Event()
        self._cell_running, self._silent, self._allow_stdin = True, silent, allow_stdin
        self.resources.cell_started(None if silent else self.stream)
        try:
            result = await self._execute(code)
        except ProgramNotFound as exc:
            result = CellResult.missing(exc.program)
        except (Exception, KeyboardInterrupt) as exc:  # every execute gets exactly one reply
            self.log.exception("cell failed inside the kernel")
            result = CellResult(1, type(exc).__name__, str(exc))
        finally:
            self._cell_running = False
        if self.interrupted and result.exit_code:
            result = CellResult.interrupted()
        result = await self.resources.judge(result, self.stream)
        self._silent = False
        reply = self._reply(result, silent)
        self.abort_queued_if_error(reply, silent)
        return reply

    async def _execute(self, code: str) -> CellResult:
        found, rest = magics.split_magics(code, self.line_comment)
        for name, argument in found:
            exit_code = await magics.run_magic(self, name, argument)
            if self.interrupted:
                return CellResult.interrupted()
            if exit_code:
                return CellResult(exit_code, "MagicError", f"%{name} failed with exit code {exit_code}")
        if not rest:
            return CellResult()
        self.seen_words |= syntax.words(rest)
        return await self.execute_code(rest)

    def _reply(self, result: CellResult, silent: bool) -> dict[str, Any]:
        if result.exit_code == 0:
            return {"status": "ok", "execution_count": self.execution_count, "payload": [],
                    "user_expressions": {}, "exit_code": 0}
        traceback = result.traceback or [f"{result.ename}: {result.evalue}"]
        content = {"ename": result.ename, "evalue": result.evalue, "traceback": traceback}
        if not silent:
            self.send_response(self.iopub_socket, "error", content)
        return {"status": "error", "execution_count": self.execution_count, **content,
                "exit_code": result.exit_code}

    # -- completion, is_complete, shutdown ------------------------------------------------------

    async def do_complete(self, code: str, cursor_pos: int) -> dict[str, Any]:
        cursor_pos = len(code) if cursor_pos is None else cursor_pos
        token, start = syntax.token_before(code, cursor_pos)
        if token.startswith("%"):
            candidates = {f"%{name}" for name in magics.registered()}
        else:
            candidates = set(self.keywords) | self.seen_words | syntax.words(code)
            candidates.discard(token)
        matches = sorted(c for c in candidates if token and c.startswith(token))
        return {"status": "ok", "matches": matches, "cursor_start": start, "cursor_end": cursor_pos,
                "metadata": {}}

    async def do_is_complete(self, code: str) -> dict[str, Any]:
        return await completeness.is_complete(self, code)  # the language's parser, or its block rules

    async def do_shutdown(self, restart: bool) -> dict[str, Any]:
        """Stop the running program and the interpreter cleanly, then remove the work folder.

        The children belong to the main loop (their pipes and exit watchers) while ``shutdown_request``
        arrives on the control thread: the stop runs on the main loop, or everything is killed from here.
        """
        stopping = asyncio.run_coroutine_threadsafe(self.stop_children(), self._loop)
        try:
            await asyncio.wait_for(asyncio.wrap_future(stopping), self.stop_budget)
        except Exception as exc:  # a timeout, or a failure of the stop itself: kill instead
            self.log.warning("stopping the kernel's programs failed (%s); killing them", exc or type(exc).__name__)
            self.kill_children()
        shutil.rmtree(self.work_dir, ignore_errors=True)
        return {"status": "ok", "restart": restart}

    @property
    def stop_budget(self) -> float:
        """Seconds :meth:`stop_children` may take before everything is killed instead."""
        return self.shutdown_grace + 1.0

    async def stop_children(self) -> None:
        """Stop the running cell's program: SIGTERM and end of input, killed after ``shutdown_grace``."""
        child = self.current_child
        if child is not None:
            await child.stop(self.shutdown_grace, signal.SIGTERM)

    def kill_children(self) -> None:
        """Kill every program of the kernel at once (the fallback of :meth:`do_shutdown`)."""
        child = self.current_child
        if child is not None:
            child.kill_tree()
