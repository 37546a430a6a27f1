"""``backend-python``: ipykernel, plus the exit code every backend kernel reports.

The agent reads a run's exit code from the ``execute_reply``'s ``exit_code``
field (our other kernels set it too): 0 when the cell succeeded, the code of
``SystemExit`` or of a failed batch step, 130 for an interrupt, 1 for any other error. Like
the other kernels it tells a cell what the kernel's resource limits did to it (a subprocess
killed for memory, refused forks; see kernels/resource_report.py).
"""

from __future__ import annotations

import inspect
import logging
import sys
import threading
import time
from typing import Any

from ipykernel.ipkernel import IPythonKernel
from ipykernel.kernelapp import IPKernelApp
from tornado.ioloop import IOLoop

from backend_kernel_provisioner.common.childproc import INTERRUPTED_EXIT_CODE
from backend_kernel_provisioner.kernels.ipykernel_private import (
    AbortQueuedBeforeReply,
    IntrospectOnShellThread,
    ShutdownWithoutFlushRace,
)
from backend_kernel_provisioner.kernels.resource_report import ResourceWatch

EXTENSION = "backend_kernel_provisioner.kernels.python.extension"


def exit_code_of(error: BaseException | None) -> int:
    """The exit code an exception stands for."""
    if error is None:
        return 0
    code = getattr(error, "exit_code", None)
    if isinstance(code, int):
        return code
    if isinstance(error, KeyboardInterrupt):
        return INTERRUPTED_EXIT_CODE
    if isinstance(error, SystemExit):
        if error.code is None:
            return 0
        return error.code if isinstance(error.code, int) else 1
    return 1


class BackendPythonKernel(ShutdownWithoutFlushRace, IntrospectOnShellThread, AbortQueuedBeforeReply, IPythonKernel):
    """IPython's kernel with ``exit_code`` in every execute reply."""

    implementation = "backend-python"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.resources = ResourceWatch.from_env()
        self.last_busy = time.monotonic()  # when the latest cell ended (or the kernel started)

    async def do_execute(self, code: str, silent: bool, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            return await self._execute_with_exit_code(code, silent, *args, **kwargs)
        finally:
            self.last_busy = time.monotonic()

    async def _execute_with_exit_code(self, code: str, silent: bool, *args: Any, **kwargs: Any) -> dict[str, Any]:
        assert self.shell is not None, "the shell exists once the kernel runs"
        self.shell.last_execution_result = None
        self.resources.cell_started(None if silent else _write_stream)
        reply = await super().do_execute(code, silent, *args, **kwargs)
        result = self.shell.last_execution_result
        if reply.get("status") == "ok":
            reply["exit_code"] = 0
        elif result is not None:
            reply["exit_code"] = exit_code_of(result.error_before_exec or result.error_in_exec)
        else:
            reply["exit_code"] = 1
        reply = await self.resources.judge_reply(reply, _ignore if silent else _write_stream,
                                                 _ignore if silent else self._publish_error)
        self.abort_queued_if_error(reply, silent)
        return reply

    def _publish_error(self, content: dict[str, Any]) -> None:
        """An ``error`` message after whatever the cell printed (its streams are flushed first)."""
        sys.stdout.flush()
        sys.stderr.flush()
        self.send_response(self.iopub_socket, "error", content)

    # input() and getpass() interrupted: IPython renders a traceback by parsing the source of every
    # frame in it, and ipykernel's kernelbase.py (1,500 lines) made the first interrupt of an input()
    # take 0.1 s idle and most of a second on a busy machine. The same KeyboardInterrupt, raised
    # afresh here, leaves ipykernel's frames out (and shows the user's line, not ipykernel's).

    def raw_input(self, prompt: str = "") -> str:
        return _interrupt_without_kernel_frames(super().raw_input, prompt)

    def getpass(self, *args: Any, **kwargs: Any) -> str:
        return _interrupt_without_kernel_frames(super().getpass, *args, **kwargs)


def _write_stream(name: str, text: str) -> None:
    """Text on the cell's own stdout/stderr (IPython's streams: in order with what the cell prints)."""
    stream = sys.stderr if name == "stderr" else sys.stdout
    stream.write(text)
    stream.flush()


def _ignore(*args: Any) -> None:
    """What a silent cell publishes: nothing."""


def _interrupt_without_kernel_frames(read: Any, *args: Any, **kwargs: Any) -> str:
    """``read(...)``; its KeyboardInterrupt is raised again here, carrying no frame below this one."""
    try:
        return str(read(*args, **kwargs))
    except KeyboardInterrupt as exc:
        interrupted = KeyboardInterrupt(*exc.args)
    raise interrupted


class BackendPythonKernelApp(IPKernelApp):
    """The kernel application with our kernel class and IPython extension."""

    name = "backend-python-kernel"

    def init_kernel(self) -> None:
        if EXTENSION not in self.extensions:
            self.extensions = [*self.extensions, EXTENSION]
        super().init_kernel()

    def start(self) -> None:
        IOLoop.current().call_later(WARM_DELAY, self._warm_when_idle)  # the loop super().start() runs
        super().start()

    def _warm_when_idle(self) -> None:
        idle = time.monotonic() - getattr(self.kernel, "last_busy", 0.0)
        if idle < WARM_DELAY:  # a cell just ended: others may follow at once (a long cell does not matter)
            IOLoop.current().call_later(WARM_DELAY, self._warm_when_idle)
            return
        warm_traceback_renderer()


#: Seconds without a cell before the traceback renderer is warmed: not during the kernel's start or
#: cells, which the warming would slow (it holds the GIL about 25 ms).
WARM_DELAY = 0.5


def warm_traceback_renderer() -> None:
    """Pay early, in the background, what IPython's first traceback costs: importing stack_data,
    compiling pygments' Python lexer (stack_data makes a lexer subclass per traceback, whose regexes
    then come from ``re``'s cache) and inspect's file-to-module map. Otherwise the first interrupt
    (or error) of a session waits for it: about 80 ms idle, several times that on a busy machine."""
    def warm() -> None:
        try:
            import stack_data  # noqa: F401
            from pygments.lexers import get_lexer_by_name

            type("WarmLexer", (type(get_lexer_by_name("python3")),), {})(stripnl=False)
            inspect.getmodule(inspect.currentframe())
        except Exception:  # only a speed-up: the renderer works without it
            logging.getLogger(__name__).debug("could not warm the traceback renderer", exc_info=True)

    threading.Thread(target=warm, name="warm-traceback-renderer", daemon=True).start()


def main() -> None:
    BackendPythonKernelApp.launch_instance(kernel_class=BackendPythonKernel)


if __name__ == "__main__":
    main()
