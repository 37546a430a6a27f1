"""One agent run: the execute requests it sent and what came back for them."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from backend_kernel_provisioner.agent.console import ConsoleBuffer

#: Batch options in the order they run, the magic each becomes, and the status reporting its end.
BATCH_STEPS = (("clean", "%clean", "clean-finished"), ("build", "%build", "build-finished"),
               ("exec", "%exec", "finished"))


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
        return step is not None and step.msg_id == msg_id

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
            self.console.add_display(content.get("data", {}))
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
