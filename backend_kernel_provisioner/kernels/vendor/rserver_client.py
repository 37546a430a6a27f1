"""Client of an R server's HTTP session API (the runner's "R via remote R Server").

The API this client speaks (JSON bodies; every call but the first carries
``Authorization: Bearer <token>``)::

    POST   /auth/token              {"access_key", "secret_key"} -> 200 {"token", "expires_in"}
                                    (seconds; 401 when the keys are wrong)
    POST   /sessions                {}                  -> 200/201 {"id"}
    POST   /sessions/{id}/execute   {"code"}            -> 200 {"stdout", "stderr", "error"}
                                    ("error" is null or the R error message)
    POST   /sessions/{id}/interrupt {}                  -> 200/204 (optional; 404 is ignored)
    DELETE /sessions/{id}                               -> 200/204 (404: already gone)

Any call may answer 401 when the token expired early (say, the server
restarted): the client then gets a new token and repeats the call once. It
also renews the token shortly before ``expires_in`` runs out. All I/O goes
through tornado's non-blocking client, so the kernel's event loop never blocks.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse


class RServerError(Exception):
    """The R server could not be reached or refused a call; the message says which and why."""


@dataclass(frozen=True)
class ExecuteResult:
    stdout: str
    stderr: str
    error: str | None


class RServerClient:
    """One remote R session: authenticate, create, execute cells, interrupt, delete."""

    def __init__(self, base_url: str, access_key: str, secret_key: str, *,
                 timeout: float = 300.0, refresh_margin: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.access_key = access_key
        self.secret_key = secret_key
        self.timeout = timeout
        self.refresh_margin = refresh_margin
        self.session_id: str | None = None
        self._token = ""
        self._expires_at = 0.0
        self._http = AsyncHTTPClient()

    # -- transport ----------------------------------------------------------------------

    async def _fetch(self, method: str, path: str, body: dict | None, token: str = "") -> HTTPResponse:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = HTTPRequest(
            self.base_url + path, method=method, headers=headers,
            body=None if body is None else json.dumps(body),
            request_timeout=self.timeout, connect_timeout=min(self.timeout, 30.0),
        )
        try:
            return await self._http.fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as exc:
            raise RServerError(f"R server {self.base_url} unreachable ({method} {path}): {exc}") from None

    @staticmethod
    def _json(response: HTTPResponse, what: str) -> dict[str, Any]:
        try:
            data = json.loads(response.body or b"{}")
        except ValueError:
            raise RServerError(f"R server answered {what} with invalid JSON: {response.body[:200]!r}") from None
        if not isinstance(data, dict):
            raise RServerError(f"R server answered {what} with {type(data).__name__}, expected an object")
        return data

    @staticmethod
    def _check(response: HTTPResponse, what: str, ok: tuple[int, ...] = (200, 201, 204)) -> None:
        if response.code not in ok:
            detail = (response.body or b"").decode("utf-8", "replace").strip()[:300] or response.reason
            raise RServerError(f"R server refused {what}: HTTP {response.code} {detail}")

    # -- token --------------------------------------------------------------------------

    async def authenticate(self) -> None:
        """Get a fresh token for the access/secret key pair."""
        response = await self._fetch("POST", "/auth/token",
                                     {"access_key": self.access_key, "secret_key": self.secret_key})
        if response.code == 401:
            raise RServerError(f"R server {self.base_url} rejected the credentials of access key "
                               f"{self.access_key!r}")
        self._check(response, "the token request", ok=(200, 201))
        data = self._json(response, "the token request")
        token = data.get("token")
        if not isinstance(token, str) or not token:
            raise RServerError("R server's token answer has no 'token'")
        self._token = token
        self._expires_at = time.monotonic() + float(data.get("expires_in", 3600))

    async def _call(self, method: str, path: str, body: dict | None = None) -> HTTPResponse:
        """An authenticated call: renew the token before expiry, and once more on 401."""
        if not self._token or time.monotonic() >= self._expires_at - self.refresh_margin:
            await self.authenticate()
        response = await self._fetch(method, path, body, self._token)
        if response.code == 401:
            await self.authenticate()
            response = await self._fetch(method, path, body, self._token)
        return response

    # -- session ------------------------------------------------------------------------

    async def create_session(self) -> str:
        response = await self._call("POST", "/sessions", {})
        self._check(response, "creating a session")
        session_id = self._json(response, "creating a session").get("id")
        if not session_id:
            raise RServerError("R server's session answer has no 'id'")
        self.session_id = str(session_id)
        return self.session_id

    async def execute(self, code: str) -> ExecuteResult:
        if self.session_id is None:
            raise RServerError("no remote R session")
        what = f"running code in session {self.session_id}"
        response = await self._call("POST", f"/sessions/{self.session_id}/execute", {"code": code})
        if response.code == 404:
            self.session_id = None
            raise RServerError("the remote R session is gone (HTTP 404); the next cell starts a new one")
        self._check(response, what, ok=(200,))
        data = self._json(response, what)
        error = data.get("error")
        return ExecuteResult(str(data.get("stdout") or ""), str(data.get("stderr") or ""),
                             None if error in (None, "") else str(error))

    async def interrupt(self) -> None:
        """Ask the server to stop the running code (best effort: the call is optional)."""
        if self.session_id is not None:
            response = await self._call("POST", f"/sessions/{self.session_id}/interrupt", {})
            self._check(response, "interrupting", ok=(200, 202, 204, 404))

    async def delete_session(self) -> None:
        if self.session_id is None:
            return
        session_id, self.session_id = self.session_id, None
        response = await self._call("DELETE", f"/sessions/{session_id}")
        self._check(response, f"deleting session {session_id}", ok=(200, 202, 204, 404))
