"""``backend-rserver``: R cells run in one session of a Microsoft R Server / ML Server.

The kernel logs in and opens a session when it starts, sends each cell to the
server's ``execute`` call (variables live on between cells, on the server),
and at shutdown deletes the session and revokes its refresh token, as the
runner did. Configuration is the runner's: ``MRS_ENDPOINT`` (default
``localhost``), ``MRS_USERNAME`` (default ``anonymous``) and ``MRS_PASSWORD``,
which are the defaults of the traits below (also set through the provisioner's
``kernel_options``). The API itself: ``kernels/vendor/mrs_client.py``.

Better than the runner where the API allows it: an interrupt asks the server to
cancel the execution (``POST /sessions/{id}/cancel``); R errors (the answer's
``success``/``errorMessage``) are error replies; a session the server lost is
reopened by the next cell.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

from traitlets import Float, Unicode, default

from backend_kernel_provisioner.common.languages import LANGUAGES
from backend_kernel_provisioner.kernels.base import BackendKernel, CellResult
from backend_kernel_provisioner.kernels.languages.r import RLanguage
from backend_kernel_provisioner.kernels.vendor.mrs_client import ExecuteResult, MRSClient, MRSError, normalize_endpoint


class RServerKernel(RLanguage, BackendKernel):
    """R through Microsoft R Server / ML Server's session API."""

    spec = LANGUAGES["rserver"]

    server_url = Unicode(
        config=True,
        help="Base URL of the R Server's operationalization API, e.g. http://host:12800 (env: MRS_ENDPOINT, "
             "else BACKEND_RSERVER_URL; default localhost; without a scheme http:// is assumed).",
    )
    username = Unicode(config=True, help="User name for POST /login (env: MRS_USERNAME; default anonymous).")
    password = Unicode(config=True, help="Password for POST /login (env: MRS_PASSWORD).")
    request_timeout = Float(
        300.0, config=True, help="Seconds one call to the R Server (a whole cell) may take.",
    )
    token_refresh_margin = Float(
        0.0, config=True,
        help="Refresh the access token this many seconds before its expires_in runs out (0: once it has, "
             "as the runner did; a token refused early is refreshed anyway).",
    )
    cancel_grace = Float(
        5.0, config=True,
        help="Seconds an interrupted cell waits, after POST /sessions/{id}/cancel, for the server's answer "
             "(its console output is shown) before it ends without it.",
    )
    close_timeout = Float(
        1.5, config=True,
        help="Seconds the shutdown may spend on the R Server (DELETE the session, then the refresh token) "
             "before the kernel exits anyway; keep it below half the kernel manager's shutdown_wait_time "
             "(2.5 s), after which the manager signals the kernel.",
    )

    @default("server_url")
    def _default_url(self) -> str:
        return os.environ.get("MRS_ENDPOINT") or os.environ.get("BACKEND_RSERVER_URL") or "localhost"

    @default("username")
    def _default_username(self) -> str:
        return os.environ.get("MRS_USERNAME") or "anonymous"

    @default("password")
    def _default_password(self) -> str:
        return os.environ.get("MRS_PASSWORD", "")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client: MRSClient | None = None
        self._opening: asyncio.Future | None = None

    def detect_version(self) -> str:
        return f"Microsoft R Server at {normalize_endpoint(self.server_url)}"

    # -- the session ------------------------------------------------------------------------

    def start(self) -> None:
        super().start()
        self.io_loop.add_callback(self._begin_opening)  # log in now; the first cell waits for it

    def _begin_opening(self) -> None:
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._open_session())
            self._opening.add_done_callback(self._report_opening)

    def _report_opening(self, opening: asyncio.Future) -> None:
        if not opening.cancelled() and opening.exception() is not None:
            self.log.warning("could not open the R Server session: %s", opening.exception())

    async def _open_session(self) -> None:
        client = self.client
        if client is None:  # one client (one login) for the kernel's life: a lost session reopens with it
            client = MRSClient(self.server_url, self.username, self.password,
                               timeout=self.request_timeout, refresh_margin=self.token_refresh_margin)
            self.client = client
        await client.open_session()
        self.log.info("R Server session %s opened on %s as %s", client.session_id, client.endpoint, client.username)

    async def _session(self) -> MRSClient:
        """The client with an open session. A failed opening is the waiting cell's error and is retried by
        the next cell."""
        if self.client is not None and self.client.session_id is None and self._opening is not None \
                and self._opening.done():
            self._opening = None  # the server lost the session: open a new one
        if self._opening is None:
            self._begin_opening()
        assert self._opening is not None
        try:
            await asyncio.shield(self._opening)  # an interrupted cell must not cancel the opening
        except Exception:
            self._opening = None
            raise
        assert self.client is not None
        return self.client

    # -- cells ------------------------------------------------------------------------------

    async def execute_code(self, code: str) -> CellResult:
        try:
            client = await self._interruptible(self._session())
            if client is None:
                return CellResult.interrupted()
            execution = asyncio.ensure_future(client.execute(code))
            result = await self._interruptible(asyncio.shield(execution))
            if result is None:
                await self._cancel(client, execution)
                return CellResult.interrupted()
        except MRSError as exc:
            return CellResult(1, "RServerError", str(exc))
        self._console(result.console_output)
        if not result.success:
            return CellResult(1, "RError", result.error_message or "the R Server reported a failed execution")
        self.stream("stderr", result.error_message)  # a message next to success: shown, not an error
        return CellResult()

    async def _cancel(self, client: MRSClient, execution: asyncio.Future) -> None:
        """Interrupted: ask the server to cancel, and show what the execution printed if it answers in time."""
        try:
            await client.cancel(self.cancel_grace)
        except MRSError as exc:
            self.log.warning("cancelling the R Server execution failed: %s", exc)
        try:
            await asyncio.wait_for(asyncio.shield(execution), self.cancel_grace)
        except (asyncio.TimeoutError, MRSError):
            execution.add_done_callback(lambda done: done.cancelled() or done.exception())  # retrieved later
            return
        result: ExecuteResult = execution.result()
        self._console(result.console_output)

    def _console(self, text: str) -> None:
        """The execution's ``consoleOutput`` as stdout, cut at ``output_limit`` bytes like a local program's."""
        data = text.encode("utf-8", "replace")
        if self.output_limit and len(data) > self.output_limit:
            self.stream("stdout", data[:self.output_limit].decode("utf-8", "ignore"))
            self.stream("stderr", f"\n[output truncated: more than {self.output_limit} bytes; "
                                  "the rest of this cell's output is discarded]\n")
        else:
            self.stream("stdout", text)

    async def _interruptible(self, awaitable: Any) -> Any:
        """The awaitable's result, or None when the cell is interrupted first."""
        assert self._interrupt_event is not None, "only called while a cell runs"
        task = asyncio.ensure_future(awaitable)
        stop = asyncio.ensure_future(self._interrupt_event.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if task.done():
            return task.result()
        task.cancel()
        return None

    # -- shutdown ---------------------------------------------------------------------------

    @property
    def stop_budget(self) -> float:
        return super().stop_budget + self.close_timeout

    async def stop_children(self) -> None:
        """DELETE the session and the refresh token (``stop_children`` runs on the main loop, which
        owns the HTTP client), bounded by ``close_timeout``."""
        try:
            await asyncio.wait_for(self._close_remote(), self.close_timeout)
        except Exception as exc:
            self.log.warning("closing the R Server session failed: %s", exc or type(exc).__name__)
        await super().stop_children()

    async def _close_remote(self) -> None:
        if self._opening is not None and not self._opening.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._opening), self.close_timeout)
        client, self.client = self.client, None
        if client is not None and client.access_token:
            await client.close(self.close_timeout)
            self.log.info("R Server session closed and refresh token revoked on %s", client.endpoint)


kernel_class = RServerKernel
