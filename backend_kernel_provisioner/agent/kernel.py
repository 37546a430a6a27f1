"""``AgentKernel``: one kernel, driven the way the platform's agent drove the runner."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager

from backend_kernel_provisioner.agent.console import ConsoleBuffer
from backend_kernel_provisioner.agent.platform import PlatformServices
from backend_kernel_provisioner.agent.run import (
    RUN_FAILED_EXIT_CODE,
    BadRequest,
    Run,
    Step,
    check_request,
    failed_result,
    run_result,
    steps_for,
)
from backend_kernel_provisioner.common.events import EventBus, Subscription
from backend_kernel_provisioner.install.kernelspecs import SPEC_PREFIX, spec_source_dir

log = logging.getLogger(__name__)

#: The runner's exit code when it could not finish a run itself.
KERNEL_LOST_EXIT_CODE = RUN_FAILED_EXIT_CODE


class AgentError(Exception):
    """A request the agent client cannot carry out (for example continuing an unknown run)."""


class AgentKernel(PlatformServices):
    """A backend kernel with the runner's operations: execute, input, interrupt, services, events."""

    def __init__(self, km: AsyncKernelManager, language: str, *, max_record_bytes: int = 1 << 20) -> None:
        self.km = km
        self.language = language
        self.max_record_bytes = max_record_bytes
        self.kc = km.client()
        self.started_at = time.time()
        self.bus = EventBus()
        self._run: Run | None = None
        self._run_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []
        self._pumps: list[asyncio.Task] = []
        self._restarting = False
        self._closed = False

    # -- lifecycle -----------------------------------------------------------------

    @classmethod
    async def start(
        cls,
        language: str,
        *,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        max_record_bytes: int = 1 << 20,
        provisioner: str | None = None,
        **provisioner_options: Any,
    ) -> AgentKernel:
        """Start ``backend-<language>`` through our provisioner (or the one named by ``provisioner``, for
        example ``backend-distributed-provisioner``); options are the provisioner's traits."""
        km = AsyncKernelManager(kernel_name=SPEC_PREFIX + language, kernel_spec_manager=_spec_manager())
        if provisioner:
            _choose_provisioner(km, provisioner)
        kwargs: dict[str, Any] = dict(provisioner_options)
        if cwd is not None:
            kwargs["cwd"] = cwd
        if env is not None:
            import os

            kwargs["env"] = {**os.environ, **env}
        await km.start_kernel(**kwargs)
        kernel = cls(km, language, max_record_bytes=max_record_bytes)
        try:
            await kernel._connect()
        except BaseException:
            await km.shutdown_kernel(now=True)
            raise
        return kernel

    async def _connect(self) -> None:
        """Open a fresh client and route its channels; also used after every restart."""
        self.kc = self.km.client()
        self.kc.start_channels()
        await self.kc.wait_for_ready(timeout=120)
        self._pumps = [
            asyncio.create_task(self._pump(channel))
            for channel in (self.kc.iopub_channel, self.kc.shell_channel, self.kc.stdin_channel)
        ]
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._watch_liveness()),
                asyncio.create_task(self._relay_provisioner_events()),
            ]

    async def _disconnect(self) -> None:
        await _cancel_all(self._pumps)
        self._pumps = []
        self.kc.stop_channels()

    async def __aenter__(self) -> AgentKernel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

    async def restart(self) -> None:
        """Restart the kernel process; services and health checks keep running."""
        await self._abandon_run()
        self._restarting = True
        # A ZeroMQ subscription kept across the restart can stay deaf: reconnect from scratch.
        await self._disconnect()
        try:
            await self.km.restart_kernel()
            await self._connect()
        finally:
            self._restarting = False
        self.bus.publish({"event": "kernel-restarted", "key": "kernel", "time": time.time()})

    async def shutdown(self) -> None:
        """Stop the kernel and everything the provisioner started for it."""
        if self._closed:
            return
        self._closed = True
        await _cancel_all(self._tasks)
        await self._disconnect()
        await self.km.shutdown_kernel(now=False)
        self.bus.publish({"event": "kernel-shutdown", "key": "kernel", "time": time.time()})
        self.bus.close()

    # -- message routing ---------------------------------------------------------------

    async def _pump(self, channel: Any) -> None:
        while True:
            try:
                msg = await channel.get_msg()
                self._route(msg)
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad message must not stop the channel
                log.exception("agent: failed to handle a message from the kernel")

    def _route(self, msg: dict[str, Any]) -> None:
        run = self._run
        if run is not None and run.record(msg):
            run.changed.set()

    # -- execute -----------------------------------------------------------------------

    async def execute(
        self,
        run_id: str,
        mode: str,
        text: str,
        *,
        opts: dict[str, Any] | None = None,
        flush_timeout: float = 2.0,
        exec_timeout: float | None = None,
    ) -> dict[str, Any]:
        """One runner request; returns ``{runId, status, exitCode, options, console}``.

        A query or batch with wrongly typed text or options, or one whose code cannot be
        sent, ends as ``finished`` with exit code -1 and the reason on stderr; the client
        stays usable.
        """
        if mode in ("query", "batch"):
            current = self._run
            if current is not None and current.run_id == run_id and not current.finished.is_set():
                raise AgentError(f"run {run_id!r} is already running; use mode 'continue'")
            try:
                steps = steps_for(mode, text, check_request(mode, text, opts))
            except BadRequest as exc:
                return failed_result(run_id, f"bad {mode} request: {exc}")
            await self._begin(run_id, steps)
        elif mode == "input":
            run = self._require_run(run_id)
            if run.pending_input is None:
                raise AgentError(f"run {run_id!r} is not waiting for input")
            run.send_input(self.kc, text)  # if it cannot be sent, the run keeps waiting (reason on stderr)
        elif mode == "continue":
            self._require_run(run_id)
        else:
            raise AgentError(f"unknown mode {mode!r}; expected query, batch, input or continue")
        return await self._collect(run_id, flush_timeout, exec_timeout)

    def _require_run(self, run_id: str) -> Run:
        run = self._run
        if run is None or run.run_id != run_id:
            raise AgentError(f"run {run_id!r} is not the active run")
        return run

    async def _begin(self, run_id: str, steps: list[Step]) -> None:
        """Wait for any other run to finish (one run at a time), then send the first step."""
        while True:
            current = self._run
            if current is None or current.finished.is_set():
                break
            if current.run_id == run_id:
                raise AgentError(f"run {run_id!r} is already running; use mode 'continue'")
            await current.finished.wait()
        async with self._run_lock:
            self._run = Run(run_id, steps, ConsoleBuffer(self.max_record_bytes))
            self._send_current()

    def _send_current(self) -> None:
        assert self._run is not None
        self._run.send_current(self.kc)

    async def _collect(self, run_id: str, flush_timeout: float, exec_timeout: float | None) -> dict[str, Any]:
        run = self._require_run(run_id)
        loop = asyncio.get_running_loop()
        flush_deadline = loop.time() + flush_timeout
        while True:
            step = run.current
            if step is None:  # abandoned: the kernel died or was restarted under the run
                run.console.add_stream("stderr", "the kernel stopped before the run finished\n")
                return self._result(run, "finished", KERNEL_LOST_EXIT_CODE)
            if step.done:
                return self._finish_step(run, step)
            if run.pending_input is not None:
                # stdin and IOPub are separate sockets: let output sent before the request land first.
                await self._settle_iopub()
                password = bool(run.pending_input.get("password"))
                return self._result(run, "waiting-input", None, {"is_password": password})
            if exec_timeout is not None and time.monotonic() - run.started >= exec_timeout:
                return await self._time_out(run)
            wait_for = flush_deadline - loop.time()
            if exec_timeout is not None:
                wait_for = min(wait_for, run.started + exec_timeout - time.monotonic())
            if flush_deadline - loop.time() <= 0:
                return self._result(run, "continued", None)
            run.changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(run.changed.wait(), max(wait_for, 0))

    async def _settle_iopub(self, quiet: float = 0.05, limit: float = 0.5) -> None:
        """Wait until IOPub has been quiet for ``quiet`` seconds (at most ``limit``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while loop.time() < deadline:
            if not await self.kc.iopub_channel.msg_ready():
                await asyncio.sleep(quiet)
                if not await self.kc.iopub_channel.msg_ready():
                    return
            await asyncio.sleep(0.005)

    def _finish_step(self, run: Run, step: Step) -> dict[str, Any]:
        result = self._result(run, step.finished_status, step.exit_code)
        run.index += 1
        if run.current is None:
            run.finished.set()
        else:
            self._send_current()
        return result

    async def _time_out(self, run: Run) -> dict[str, Any]:
        """The run outlived ``exec_timeout``: interrupt it and report ``exec-timeout``."""
        await self.interrupt()
        step = run.current
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._until_done(run), 10)
        exit_code = step.exit_code if step is not None and step.reply is not None else None
        run.index = len(run.steps)
        run.finished.set()
        return self._result(run, "exec-timeout", exit_code)

    async def _until_done(self, run: Run) -> None:
        while run.current is not None and not run.current.done:
            run.changed.clear()
            await run.changed.wait()

    def _result(self, run: Run, status: str, exit_code: int | None, options: dict | None = None) -> dict[str, Any]:
        return run_result(run.run_id, status, exit_code, run.console.take(), options)

    async def _abandon_run(self) -> None:
        run = self._run
        if run is not None and not run.finished.is_set():
            run.index = len(run.steps)
            run.finished.set()
            run.changed.set()

    # -- beside the running task ------------------------------------------------------------

    async def interrupt(self) -> None:
        """Stop the running cell (the kernel forwards it to the child's process tree)."""
        await self.km.interrupt_kernel()

    async def complete(self, text: str, opts: dict[str, Any] | None = None) -> list[str]:
        """Completion candidates for ``text`` (or ``opts['code']``) at the cursor."""
        opts = opts or {}
        code = opts.get("code", text)
        cursor = _cursor_position(code, opts)
        reply = await self._request("complete", code, cursor)
        return list(reply.get("matches", []))

    async def check_status(self) -> dict[str, Any]:
        """Liveness in the runner's shape, plus the kernel's state."""
        return {
            "started_at": self.started_at,
            "alive": await self.km.is_alive(),
            "language": self.language,
            "kernel_id": self.km.kernel_id,
            "running_run": self._run.run_id if self._run and not self._run.finished.is_set() else None,
        }

    async def _request(self, method: str, *args: Any, timeout: float = 30) -> dict[str, Any]:
        """A shell request from a private client, so its reply never crosses the pumps."""
        client = self.km.client()
        client.start_channels(iopub=False, stdin=False, hb=False, control=False)
        try:
            msg_id = getattr(client, method)(*args)
            deadline = time.monotonic() + timeout
            while True:
                msg = await client.shell_channel.get_msg(timeout=max(0.1, deadline - time.monotonic()))
                if msg["parent_header"].get("msg_id") == msg_id:
                    return msg["content"]
        finally:
            client.stop_channels()

    # -- events --------------------------------------------------------------------------------

    def events(self) -> Subscription:
        """Current state of every model and service first, then each change (kernel events too)."""
        return self.bus.subscribe()

    async def _watch_liveness(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if self._restarting or self._closed:
                continue
            if self.km.has_kernel and not await self.km.is_alive():
                self.bus.publish({"event": "kernel-died", "key": "kernel", "time": time.time()})
                await self._abandon_run()
                while not await self.km.is_alive():
                    await asyncio.sleep(1.0)


async def _cancel_all(tasks: list[asyncio.Task]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def _spec_manager() -> KernelSpecManager:
    """Installed kernelspecs, falling back to the ones this package ships."""
    manager = KernelSpecManager()
    manager.kernel_dirs.append(str(spec_source_dir()))
    return manager


def _cursor_position(code: str, opts: dict[str, Any]) -> int:
    """Cursor offset from the runner's ``row``/``col`` (0-based), else the end of the code."""
    if "row" in opts and "col" in opts:
        lines = code.split("\n")
        row = min(int(opts["row"]), len(lines) - 1)
        return sum(len(line) + 1 for line in lines[:row]) + min(int(opts["col"]), len(lines[row]))
    return len(code)


def _choose_provisioner(km: AsyncKernelManager, name: str) -> None:
    """Run this kernel's spec (argv, config) with another provisioner: jupyter_client reads the name
    from the spec's metadata when the kernel starts."""
    spec = km.kernel_spec
    if spec is None:
        raise ValueError(f"no kernelspec {km.kernel_name!r}")
    chosen = dict(spec.metadata.get("kernel_provisioner") or {})
    chosen["provisioner_name"] = name
    spec.metadata = {**spec.metadata, "kernel_provisioner": chosen}
