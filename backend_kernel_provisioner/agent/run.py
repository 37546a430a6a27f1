"""One agent run: the execute requests it sent and what came back for them."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from backend_kernel_provisioner.agent.console import ConsoleBuffer


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
