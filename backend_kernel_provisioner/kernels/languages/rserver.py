"""``backend-rserver``: R cells run in a session on a remote R server.

The kernel opens a session when it starts, sends each cell to it (so
variables live on between cells, on the server), and deletes the session
when it shuts down. The HTTP API is described in
``backend_kernel_provisioner.kernels.vendor.rserver_client``. Where the
server is and which keys to use are traits, set through the provisioner's
``kernel_options`` (or the ``BACKEND_RSERVER_*`` environment variables).
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
from backend_kernel_provisioner.kernels.vendor.rserver_client import RServerClient, RServerError


class RServerKernel(RLanguage, BackendKernel):
    """R through a remote R server's session API."""

    spec = LANGUAGES["rserver"]

    server_url = Unicode(
        config=True, help="Base URL of the R server's HTTP API (env: BACKEND_RSERVER_URL).",
    )
    access_key = Unicode(config=True, help="Access key for the R server's token (env: BACKEND_RSERVER_ACCESS_KEY).")
    secret_key = Unicode(config=True, help="Secret key for the R server's token (env: BACKEND_RSERVER_SECRET_KEY).")
    request_timeout = Float(
        300.0, config=True, help="Seconds one call to the R server (a whole cell) may take.",
    )
    token_refresh_margin = Float(
        30.0, config=True, help="Renew the token this many seconds before the server says it expires.",
    )

    @default("server_url")
    def _default_url(self) -> str:
        return os.environ.get("BACKEND_RSERVER_URL", "")

    @default("access_key")
    def _default_access_key(self) -> str:
        return os.environ.get("BACKEND_RSERVER_ACCESS_KEY", "")

    @default("secret_key")
    def _default_secret_key(self) -> str:
        return os.environ.get("BACKEND_RSERVER_SECRET_KEY", "")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client: RServerClient | None = None
        self._opening: asyncio.Future | None = None

    def detect_version(self) -> str:
        return f"remote R server {self.server_url}" if self.server_url else ""

    def start(self) -> None:
        super().start()
        if self.server_url:  # open the session now (once the loop runs); the first cell waits for it
            self.io_loop.add_callback(self._begin_opening)

    def _begin_opening(self) -> None:
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._open_session())

    async def _open_session(self) -> None:
        client = RServerClient(self.server_url, self.access_key, self.secret_key,
                               timeout=self.request_timeout, refresh_margin=self.token_refresh_margin)
        await client.create_session()
        self.client = client
        self.log.info("remote R session %s opened on %s", client.session_id, self.server_url)

    async def _session(self) -> RServerClient:
        """The open session. A failed opening is reported to the cell that waits for it and
        retried by the next cell; a session the server lost is opened again."""
        if not self.server_url:
            raise RServerError("no R server configured: set the kernel option 'server_url' "
                               "(or BACKEND_RSERVER_URL)")
        if self.client is not None and self.client.session_id is None:
            self.client, self._opening = None, None  # lost: open a new one
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._open_session())
        try:
            await asyncio.shield(self._opening)  # an interrupted cell must not cancel the opening
        except Exception:
            self._opening = None
            raise
        assert self.client is not None
        return self.client

    async def execute_code(self, code: str) -> CellResult:
        try:
            client = await self._interruptible(self._session())
            if client is None:
                return CellResult.interrupted()
            result = await self._interruptible(client.execute(code))
        except RServerError as exc:
            return CellResult(1, "RServerError", str(exc))
        if result is None:
            with contextlib.suppress(RServerError):
                await client.interrupt()
            return CellResult.interrupted()
        self.stream("stdout", result.stdout)
        self.stream("stderr", result.stderr)
        if result.error is not None:
            return CellResult(1, "RError", result.error)
        return CellResult()

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

    async def do_shutdown(self, restart: bool) -> dict[str, Any]:
        if self._opening is not None and not self._opening.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._opening, self.request_timeout)
        if self.client is not None:
            try:
                await self.client.delete_session()
            except RServerError as exc:
                self.log.warning("could not delete the remote R session: %s", exc)
        return await super().do_shutdown(restart)


kernel_class = RServerKernel
