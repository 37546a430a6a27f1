"""One agent run: the execute requests it sent and what came back for them."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from backend_kernel_provisioner.agent.console import ConsoleBuffer

log = logging.getLogger(__name__)

#: Batch options in the order they run, the magic each becomes, and the status reporting its end.
BATCH_STEPS = (("clean", "%clean", "clean-finished"), ("build", "%build", "build-finished"),
               ("exec", "%exec", "finished"))

#: The runner's exit code for a run it could not carry out itself (bad request, lost kernel, failed send).
RUN_FAILED_EXIT_CODE = -1


class BadRequest(ValueError):
    """A query or batch request whose text or options have the wrong type; answered as a failed run."""


@dataclass
class Step:
    """One execute request of a run, and the status that reports its end."""

    code: str
    finished_status: str
    msg_id: str = ""
    reply: dict[str, Any] | None = None
    idle: bool = False

    @property
    def done(self) -> bool:
        return self.reply is not None and self.idle

    @property
    def exit_code(self) -> int:
        reply = self.reply or {}
        code = reply.get("exit_code")
        if isinstance(code, int):
            return code
        return 0 if reply.get("status") == "ok" else 1


@dataclass
class Run:
    """A run id's steps (one for a query; clean/build/exec for batch)."""

    run_id: str
    steps: list[Step]
    console: ConsoleBuffer
    started: float = field(default_factory=time.monotonic)
    index: int = 0
    #: Woken whenever something arrives for the run.
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    pending_input: dict[str, Any] | None = None
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def current(self) -> Step | None:
        return self.steps[self.index] if self.index < len(self.steps) else None

    def owns(self, msg_id: str) -> bool:
        step = self.current
        return step is not None and bool(step.msg_id) and step.msg_id == msg_id

    def send_current(self, kc: Any) -> None:
        """Send the current step on ``kc``; a step that cannot be sent ends the run (never wedges it)."""
        step = self.current
        if step is None:
            return
        if not step.code:
            step.reply, step.idle = {"status": "ok", "exit_code": 0}, True
            self.changed.set()
            return
        try:
            step.msg_id = kc.execute(step.code, allow_stdin=True, stop_on_error=False)
        except Exception as exc:  # encoding, a closed channel, ...: the kernel never got it
            log.warning("agent: run %s: could not send its code: %r", self.run_id, exc)
            self.fail_current(f"could not send the run's code to the kernel: {type(exc).__name__}: {exc}")

    def send_input(self, kc: Any, text: object) -> None:
        """Answer the pending input request; if that fails the run keeps waiting, the reason on stderr."""
        try:
            if not isinstance(text, str):
                raise TypeError(f"the input must be a string, got {type(text).__name__}")
            kc.input(text)
        except Exception as exc:
            log.warning("agent: run %s: could not send its input: %r", self.run_id, exc)
            self.console.add_stream("stderr", f"could not send the input to the kernel: {type(exc).__name__}: {exc}\n")
            return
        self.pending_input = None

    def fail_current(self, message: str) -> None:
        """End the run at its current step with ``message`` on stderr and exit code -1.

        Used when a step cannot even be sent (its code does not encode, the channel is
        closed): the kernel never saw it, so no reply will come and the run must not
        stay active, or every later run would wait for it forever.
        """
        step = self.current
        if step is None:
            return
        self.console.add_stream("stderr", message.rstrip("\n") + "\n")
        step.reply, step.idle = {"status": "error", "exit_code": RUN_FAILED_EXIT_CODE}, True
        step.finished_status = "finished"  # the last status of this run: nothing follows
        del self.steps[self.index + 1:]
        self.changed.set()

    def record(self, msg: dict[str, Any]) -> bool:
        """Keep what a kernel message says about the current step; False when it is not ours."""
        parent = msg.get("parent_header", {}).get("msg_id", "")
        step = self.current
        if step is None or not self.owns(parent):
            return False
        kind = msg["header"]["msg_type"]
        content = msg["content"]
        if kind == "stream":
            self.console.add_stream(content.get("name", "stdout"), content.get("text", ""))
        elif kind in ("display_data", "execute_result", "update_display_data"):
            display_id = (content.get("transient") or {}).get("display_id")
            self.console.add_display(content.get("data", {}), display_id, update=kind == "update_display_data")
        elif kind == "error":
            self.console.add_error(content)
        elif kind == "status" and content.get("execution_state") == "idle":
            step.idle = True
        elif kind == "execute_reply":
            step.reply = content
        elif kind == "input_request":
            self.pending_input = content
        else:
            return False
        return True


def check_request(mode: str, text: object, opts: object) -> dict[str, Any]:
    """The request's options as a dict, after checking the types a query or batch run needs.

    Raises :class:`BadRequest` naming the field, the expected type and what came instead,
    so that a wrongly typed request ends as a failed run instead of an exception deep
    inside the send path.
    """
    if opts is None:
        opts = {}
    if not isinstance(opts, dict):
        raise BadRequest(f"opts must be a dict (a JSON object), got {type(opts).__name__} {opts!r:.80}")
    if mode == "query" and not isinstance(text, str):
        raise BadRequest(f"the code of a query must be a string, got {type(text).__name__} {text!r:.80}")
    if mode == "batch":
        for key, _, _ in BATCH_STEPS:
            value = opts.get(key)
            if value is not None and not isinstance(value, str):
                raise BadRequest(f"batch option {key!r} must be a string (a shell command or '*'), "
                                 f"got {type(value).__name__} {value!r:.80}")
    return opts


def run_result(run_id: str, status: str, exit_code: int | None, console: list, options: dict | None = None,
               ) -> dict[str, Any]:
    """The runner's result shape: ``{runId, status, exitCode, options, console}``."""
    return {"runId": run_id, "status": status, "exitCode": exit_code, "options": options, "console": console}


def failed_result(run_id: str, message: str) -> dict[str, Any]:
    """The runner's result for a run that could not start: ``finished``, -1, the reason on stderr."""
    return run_result(run_id, "finished", RUN_FAILED_EXIT_CODE, [["stderr", message.rstrip("\n") + "\n"]])


def steps_for(mode: str, text: str, opts: dict[str, Any]) -> list[Step]:
    """A query is one step; a batch run is its non-empty clean, build and exec options, in order."""
    if mode == "query":
        return [Step(text, "finished")]
    steps = [
        Step(f"{magic} {opts[key]}".rstrip(), status)
        for key, magic, status in BATCH_STEPS
        if (opts.get(key) or "").strip()
    ]
    return steps or [Step("", "finished")]
