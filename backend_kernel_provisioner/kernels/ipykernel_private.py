"""The one place that touches ipykernel's private internals (ipykernel ≥ 7, as pyproject.toml requires).

Why here: private names change between ipykernel releases; keeping them in
one module, tested through real kernels, means an upgrade breaks one file.

* :func:`shell_ident` — the ZeroMQ identity of the shell request being
  handled (ipykernel 7 keeps it in a context variable), needed to address
  an ``input_request`` to the right frontend.
* :class:`AbortQueuedBeforeReply` — ``stop_on_error`` without its race:
  ipykernel aborts queued execute requests only *after* it sent the error
  reply, so a frontend that answers the reply with the next cell at once
  can see that cell ``aborted`` (ipykernel marks the end of the queue with a
  message posted from another thread). Marking the end of the queue before
  the reply leaves later requests alone; requests already queued behind the
  failed cell are still aborted, as the protocol says.
* :class:`ShutdownWithoutFlushRace` — an exit that does not wait 10 s: after a
  control request, ipykernel flushes ``sys.stdout`` from the control thread
  while the main thread, told to stop by ``shutdown_request``, is stopping
  the IOPub thread; a flush that lands on the stopped IOPub loop waits its
  whole ``flush_timeout`` (10 s), and the kernel manager, which waits half of
  its 5 s, sends SIGTERM: half of all shutdowns took 2.6 s (issue 22).
"""

from __future__ import annotations

import sys
from typing import Any


def shell_ident(kernel: Any) -> Any:
    """The identity of the shell request ``kernel`` is handling."""
    return kernel._get_shell_context_var(kernel._shell_parent_ident)


class AbortQueuedBeforeReply:
    """Mixin for an ipykernel ``Kernel``: call :meth:`abort_queued_if_error` before returning a reply."""

    _abort_done_for_reply = False

    def abort_queued_if_error(self, reply: dict[str, Any], silent: bool) -> None:
        """Abort the requests queued behind a failed cell now, if the request asked to stop on error."""
        parent: dict[str, Any] = self.get_parent("shell")  # type: ignore[attr-defined]
        stop_on_error = (parent.get("content") or {}).get("stop_on_error", True)
        if reply.get("status") == "error" and stop_on_error and not silent:
            super()._abort_queues((parent.get("header") or {}).get("subshell_id"))  # type: ignore[misc]
            self._abort_done_for_reply = True

    def _abort_queues(self, subshell_id: str | None = None) -> None:
        """ipykernel's own call after the reply: already done before it, so skip it once."""
        if self._abort_done_for_reply:
            self._abort_done_for_reply = False
            return
        super()._abort_queues(subshell_id)  # type: ignore[misc]


class ShutdownWithoutFlushRace:
    """Mixin for an ipykernel ``Kernel``: flush the output streams before the shutdown request, then
    give the control thread the process's own streams, whose flush never waits for the IOPub thread."""

    async def shutdown_request(self, stream: Any, ident: Any, parent: dict[str, Any]) -> None:
        for name in ("stdout", "stderr"):
            current = getattr(sys, name)
            if current is not None:
                current.flush()
            # What the main thread's IPKernelApp.close() does first (reset_io), done before the race.
            setattr(sys, name, getattr(sys, f"__{name}__"))
        await super().shutdown_request(stream, ident, parent)  # type: ignore[misc]
