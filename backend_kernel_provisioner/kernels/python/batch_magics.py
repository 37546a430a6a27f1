"""``%clean``, ``%build`` and ``%exec`` for ``backend-python`` (IPython line magics).

Why a thread: IPython runs a line magic synchronously on the kernel's main
thread, where ipykernel's event loop is busy running the cell. The child is run
by the framework's own asyncio process control (:func:`kernels.process.run_child`:
own process group, stdin detection through ``/proc``, tree kill) on a private
event loop in a worker thread; the main thread publishes the output and answers
stdin through ``input()``, which ipykernel turns into ``input_request``. Ctrl-C
(a KeyboardInterrupt in the main thread) kills the child's process group.
"""

from __future__ import annotations

import asyncio
import atexit
import builtins
import concurrent.futures
import contextlib
import os
import queue
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from IPython.core.magic import no_var_expand

from backend_kernel_provisioner.common.childproc import INTERRUPTED_EXIT_CODE
from backend_kernel_provisioner.kernels import batch

if TYPE_CHECKING:
    from backend_kernel_provisioner.kernels.process import ChildProcess

Publish = Callable[[str, str], None]
Ask = Callable[[], "str | None"]


class BatchStepFailed(Exception):
    """A batch step ended with a non-zero exit code; backend-python replies with ``exit_code``."""

    def __init__(self, step: str, exit_code: int) -> None:
        super().__init__(f"%{step} failed with exit code {exit_code}")
        self.step = step
        self.exit_code = exit_code

    def _render_traceback_(self) -> list[str]:  # IPython shows this instead of a traceback
        return [str(self)]


class BatchInterrupted(KeyboardInterrupt):
    """The step was interrupted; its child's process tree is gone."""

    exit_code = INTERRUPTED_EXIT_CODE

    def _render_traceback_(self) -> list[str]:
        return [f"KeyboardInterrupt: {self}"]


class _RunningStep:
    """A step's child and the worker thread's event loop that owns it."""

    def __init__(self) -> None:
        self.child: ChildProcess | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None

    def kill(self, wait: float = 10) -> None:
        """Kill the child's whole tree (on its own loop) and wait for the worker to end."""
        if self.child is not None and self.loop is not None and not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: the step is over
                self.loop.call_soon_threadsafe(self.child.kill_tree)
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout=wait)


_RUNNING: set[_RunningStep] = set()


def stop_running_steps(*_: Any, **__: Any) -> None:
    """Kill every running step's process tree (kernel shutdown, interpreter exit)."""
    for step in list(_RUNNING):
        step.kill(wait=2)


atexit.register(stop_running_steps)


def run_command(command: str, *, cwd: str, env: dict[str, str], publish: Publish, ask: Ask | None) -> int:
    """Run ``command`` in ``/bin/sh`` from synchronous code; its exit code.

    ``publish(name, text)`` gets the output as it comes; ``ask()`` is called (on
    this thread) when the child blocks reading stdin and returns the line or None
    for end of file. Raises :class:`BatchInterrupted` on KeyboardInterrupt.
    """
    events: queue.Queue[tuple[Any, ...]] = queue.Queue()
    running = _RunningStep()

    async def ask_main_thread(_prompt: str, _password: bool) -> str | None:
        answer: concurrent.futures.Future[str | None] = concurrent.futures.Future()
        events.put(("input", answer))
        return await asyncio.wrap_future(answer)

    async def main() -> int:
        running.loop = asyncio.get_running_loop()
        from backend_kernel_provisioner.kernels.process import ChildProcess, OutputRelay, run_child  # on first use

        running.child = await ChildProcess.start(["/bin/sh", "-c", command], cwd=cwd, env=env,
                                                 stdin=ask is not None)
        relay = OutputRelay(lambda name, text: events.put(("output", name, text)))
        result = await run_child(running.child, relay, ask_main_thread if ask is not None else None)
        return result.exit_code

    def worker() -> None:
        try:
            events.put(("done", asyncio.run(main())))
        except BaseException as exc:  # handed to the main thread, which re-raises it
            events.put(("error", exc))

    running.thread = threading.Thread(target=worker, name="batch-step", daemon=True)
    _RUNNING.add(running)
    running.thread.start()
    try:
        return _serve(events, publish, ask)
    except KeyboardInterrupt:
        running.kill()
        _drain(events, publish)
        raise BatchInterrupted("the batch step was interrupted") from None
    finally:
        _RUNNING.discard(running)


def _serve(events: queue.Queue, publish: Publish, ask: Ask | None) -> int:
    """The main thread's side: publish output, answer input, until the worker is done."""
    while True:
        try:
            event = events.get(timeout=0.1)  # a timeout keeps Ctrl-C deliverable
        except queue.Empty:
            continue
        kind = event[0]
        if kind == "output":
            publish(event[1], event[2])
        elif kind == "input":
            answer: concurrent.futures.Future = event[1]
            if not answer.done():
                answer.set_result(ask() if ask is not None else None)
        elif kind == "done":
            return int(event[1])
        else:
            raise event[1]


def _drain(events: queue.Queue, publish: Publish) -> None:
    while True:
        try:
            event = events.get_nowait()
        except queue.Empty:
            return
        if event[0] == "output":
            publish(event[1], event[2])
        elif event[0] == "input" and not event[1].done():
            event[1].set_result(None)


def _publish(name: str, text: str) -> None:
    stream = sys.stderr if name == "stderr" else sys.stdout
    stream.write(text)
    stream.flush()


def _ask_kernel() -> str | None:
    """One line from the frontend (ipykernel's input() sends input_request); None = end of file."""
    from IPython.core.error import StdinNotImplementedError

    sys.stdout.flush()
    sys.stderr.flush()
    try:
        return builtins.input("")
    except (EOFError, StdinNotImplementedError):
        return None


class BatchMagics:
    """The three steps for one IPython shell, with its BatchState (127 after a failed build)."""

    language = "python"

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.state = batch.BatchState()

    def run_step(self, step: str, spec: str) -> int:
        cwd = os.getcwd()
        plan = self.state.plan(self.language, step, spec, cwd)
        if plan.command is None:
            if plan.message:
                _publish("stderr", f"%{step}: {plan.message}\n")
            exit_code = plan.exit_code
        else:
            try:
                exit_code = run_command(plan.command, cwd=cwd, env={**os.environ, **plan.env},
                                        publish=_publish, ask=_ask_kernel if self._allow_stdin() else None)
            except BatchInterrupted:
                self.state.record(step, INTERRUPTED_EXIT_CODE)
                raise
        self.state.record(step, exit_code)
        return exit_code

    def _allow_stdin(self) -> bool:
        kernel = getattr(self.shell, "kernel", None)
        return bool(getattr(kernel, "_allow_stdin", True))

    def magic(self, step: str) -> Callable[[str], None]:
        def line_magic(line: str = "") -> None:
            exit_code = self.run_step(step, line)
            if exit_code:
                raise BatchStepFailed(step, exit_code)

        line_magic.__doc__ = _HELP[step]
        return no_var_expand(line_magic)  # a shell command, verbatim: $$ and {x} are the shell's


_HELP = {
    "clean": "%clean [CMD|*]: run a clean command in the working folder (* = make clean with a Makefile).",
    "build": "%build [CMD|*]: build the project (* = make, or pip install -e . for setup.py/pyproject.toml).",
    "exec": "%exec [CMD|*]: run the program (* = python main.py; 127 after a failed build); "
            "it sees _BACKEND_BATCH_MODE=1.",
}


def register_ipython(ipython: Any) -> BatchMagics:
    """Register %clean, %build and %exec with an IPython shell."""
    magics = BatchMagics(ipython)
    # ipykernel's do_shutdown sets exit_now (from its control thread): no step may outlive the kernel.
    ipython.observe(stop_running_steps, names="exit_now")
    for step in batch.STEPS:
        ipython.register_magic_function(magics.magic(step), magic_kind="line", magic_name=step)
    return magics
