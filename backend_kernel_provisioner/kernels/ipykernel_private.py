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
* :class:`ReplyWithoutIdleFlush` — before every execute reply ipykernel
  flushes ``sys.stdout`` and ``sys.stderr`` (a round trip to the IOPub thread
  each, even when nothing was written) and sleeps 0.5 ms: about 1 ms of every
  cell and every interrupt. Our kernels publish a cell's output themselves
  (already queued on the IOPub thread, in order), so an empty stream is not
  flushed and there is no sleep.
* :class:`KernelInfoWithoutDebugger` — ipykernel's ``kernel_info`` imports
  debugpy (about 50 ms, on the way to every frontend's first answer) to
  advertise a debugger, which our own kernels do not have.
* :class:`ShutdownWithoutFlushRace` — an exit that does not wait: after a
  control request, ipykernel flushes ``sys.stdout`` and publishes the control
  channel's ``idle`` status from the control thread while the main thread,
  told to stop by ``shutdown_request``, is stopping the IOPub thread. A flush
  that lands on the stopped IOPub loop waits its whole ``flush_timeout``
  (10 s), and a status sent into the event pipe of a closing IOPub thread
  blocks; the kernel manager, which waits half of its 5 s, then sends
  SIGTERM: half of all shutdowns took 2.6 s (issue 22), and after the flush
  was fixed, one in about 40 still did.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

from ipykernel._version import kernel_protocol_version
from ipykernel.iostream import OutStream

#: Requests that only read the kernel's state: answered beside a running cell.
INTROSPECTION = frozenset({"complete_request", "inspect_request", "is_complete_request"})


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


class KernelInfoWithoutDebugger:
    """Mixin for an ipykernel ``Kernel`` without a debugger: see the module's docstring."""

    @property
    def kernel_info(self) -> dict[str, Any]:
        features = ["kernel subshells"] if self._supports_kernel_subshells else []  # type: ignore[attr-defined]
        return {
            "protocol_version": kernel_protocol_version,
            "implementation": self.implementation,  # type: ignore[attr-defined]
            "implementation_version": self.implementation_version,  # type: ignore[attr-defined]
            "language_info": self.language_info,  # type: ignore[attr-defined]
            "banner": self.banner,  # type: ignore[attr-defined]
            "help_links": self.help_links,  # type: ignore[attr-defined]
            "supported_features": features,
        }


def _flush_if_written(stream: Any, flush: Callable[[], None]) -> None:
    """``flush()`` of an ipykernel ``OutStream`` unless nothing was written since its last flush."""
    if stream._flush_pending or any(buffer.tell() for buffer in list(stream._buffers.values())):
        flush()


class ReplyWithoutIdleFlush:
    """Mixin for an ipykernel ``Kernel`` that publishes its cells' output itself: see the module's docstring."""

    def start(self) -> None:
        super().start()  # type: ignore[misc]
        self._execute_sleep = 0.0
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if isinstance(stream, OutStream):
                stream.flush = functools.partial(_flush_if_written, stream, stream.flush)  # type: ignore[method-assign]


class ShutdownWithoutFlushRace:
    """Mixin for an ipykernel ``Kernel``: flush the output streams before the shutdown request, then
    give the control thread the process's own streams, whose flush never waits for the IOPub thread;
    and send nothing on IOPub from the control thread once the shutdown reply went out (the reply and
    its IOPub copy are sent before the main thread starts closing)."""

    _shutting_down = False

    def _publish_status_and_flush(self, status: str, channel: str, stream: Any, parent: Any = None) -> None:
        if self._shutting_down and channel == "control":
            return  # the control channel's "idle" after the shutdown reply: the IOPub thread is closing
        super()._publish_status_and_flush(status, channel, stream, parent)  # type: ignore[misc]

    async def shutdown_request(self, stream: Any, ident: Any, parent: dict[str, Any]) -> None:
        self._shutting_down = True
        for name in ("stdout", "stderr"):
            current = getattr(sys, name)
            if current is not None:
                current.flush()
            # What the main thread's IPKernelApp.close() does first (reset_io), done before the race.
            setattr(sys, name, getattr(sys, f"__{name}__"))
        await super().shutdown_request(stream, ident, parent)  # type: ignore[misc]


def _introspection_request(kernel: Any, raw: list[Any]) -> tuple[list[bytes], dict[str, Any]] | None:
    """The identities and message of ``raw`` when it is an introspection request of the main subshell."""
    if kernel.session is None or not kernel._main_asyncio_lock.locked():
        return None
    try:
        idents, frames = kernel.session.feed_identities(raw, copy=False)
        header = kernel.session.deserialize(frames, content=False, copy=False)["header"]
        if header.get("msg_type") not in INTROSPECTION or header.get("subshell_id") is not None:
            return None
        return idents, kernel.session.deserialize(frames, content=True, copy=False)
    except Exception:  # an invalid message: ipykernel's own path reports it
        return None


class IntrospectBesideCell:
    """Mixin for a ``Kernel`` whose cells await: introspection does not wait for the running cell.

    The request is answered on the main loop without ``set_parent``, so the running cell's output
    keeps its parent, and without busy/idle status (as ipykernel does for comm messages beside a cell).
    """

    async def shell_main(self, subshell_id: str | None, msg: list[Any]) -> None:
        request = _introspection_request(self, msg) if subshell_id is None else None
        if request is None:
            await super().shell_main(subshell_id, msg)  # type: ignore[misc]
            return
        idents, parsed = request
        manager = getattr(self.shell_channel_thread, "manager", None)  # type: ignore[attr-defined]
        stream = (manager.get_subshell_to_shell_channel_socket(None) if manager is not None
                  else self.shell_stream)  # type: ignore[attr-defined]
        await self.shell_handlers[parsed["header"]["msg_type"]](stream, idents, parsed)  # type: ignore[attr-defined]


class IntrospectOnShellThread:
    """Mixin for ipykernel's IPython kernel, whose cells block the main thread: introspection
    requests that would queue behind a running cell are answered on the shell channel thread,
    which owns the shell socket."""

    async def shell_channel_thread_main(self, msg: list[Any]) -> None:
        request = _introspection_request(self, msg)
        if request is None:
            await super().shell_channel_thread_main(msg)  # type: ignore[misc]
            return
        idents, parsed = request
        await self.shell_handlers[parsed["header"]["msg_type"]](  # type: ignore[attr-defined]
            self.shell_stream, idents, parsed)  # type: ignore[attr-defined]
