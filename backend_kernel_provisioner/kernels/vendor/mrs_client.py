"""Client of Microsoft R Server / ML Server's operationalization API (the runner's "R Server" kernel).

Only calls of the server's published core API (ML Server 9.2.1 swagger) are
used. JSON bodies; every call but the two token calls carries
``Authorization: Bearer <access_token>``::

    POST   /login                    {"username", "password"}
                                     -> 200 {"access_token", "refresh_token", "expires_in", ...}; 401 bad login
    POST   /login/refreshToken       {"refreshToken"} -> 200 the same triple; 401 expired or revoked
    POST   /sessions                 {}      -> 201 {"sessionId"}
    POST   /sessions/{id}/execute    {"code"} -> 200 {"success", "errorMessage", "consoleOutput",
                                                    "outputParameters", "changedFiles"}
    POST   /sessions/{id}/cancel              -> 200 (aborts the running execution; the session lives on)
    DELETE /sessions/{id}                     -> 200
    DELETE /login/refreshToken?refreshToken=<token> -> 200 (revokes it)

Errors come as ``{"message", ...}``. Why the token logic looks like this: the
runner refreshed before a call once ``expires_in`` had run out; a server may
still drop a token earlier (a restart), so a 401 also refreshes and repeats the
call once, and a refused refresh token (expired, revoked) falls back to logging
in again with the credentials the kernel holds. All I/O goes through tornado's
non-blocking client, so the kernel's event loop never blocks.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse


class MRSError(Exception):
    """The R Server could not be reached or refused a call; the message names the endpoint and why."""


class SessionLost(MRSError):
    """The server no longer knows the session (HTTP 404): a new one must be opened."""


@dataclass(frozen=True)
class ExecuteResult:
    """One ``execute`` answer: the console text (line ends as ``\\n``) and the error, if any."""

    console_output: str
    success: bool
    error_message: str


def normalize_endpoint(endpoint: str) -> str:
    """``MRS_ENDPOINT`` as a base URL: the runner's default ``localhost`` has no scheme, so http is assumed."""
    endpoint = endpoint.strip().rstrip("/") or "localhost"
    return endpoint if "://" in endpoint else f"http://{endpoint}"


class MRSClient:
    """One user's login and one R session on the server: log in, open, execute, cancel, close."""

    def __init__(self, endpoint: str, username: str, password: str, *,
                 timeout: float = 300.0, refresh_margin: float = 0.0) -> None:
        self.endpoint = normalize_endpoint(endpoint)
        self.username = username
        self._password = password
        self.timeout = timeout
        self.refresh_margin = refresh_margin
        self.session_id: str | None = None
        self.access_token = ""
        self.refresh_token = ""
        self._expires_at = 0.0
        self._http = AsyncHTTPClient(force_instance=True)

    # -- transport ----------------------------------------------------------------------

    async def _fetch(self, method: str, path: str, body: dict | None = None, *, query: dict | None = None,
                     auth: bool = True, timeout: float | None = None) -> HTTPResponse:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if auth and self.access_token:
            headers["Authorization"] = f"Bearer {self.access_token}"
        url = self.endpoint + path + ("?" + urllib.parse.urlencode(query) if query else "")
        timeout = self.timeout if timeout is None else timeout
        payload = json.dumps(body) if body is not None else ("" if method == "POST" else None)  # tornado: POST has one
        request = HTTPRequest(url, method=method, headers=headers, body=payload,
                              request_timeout=timeout, connect_timeout=min(timeout, 30.0))
        try:
            return await self._http.fetch(request, raise_error=False)
        except HTTPClientError as exc:  # 599: timeout or connection closed without an answer
            raise MRSError(f"R Server at {self.endpoint} gave no answer to {method} {path} ({exc})") from None
        except OSError as exc:
            raise MRSError(f"R Server at {self.endpoint} is unreachable ({method} {path}: {exc}); "
                           "check MRS_ENDPOINT (scheme, host and port)") from None

    @staticmethod
    def _detail(response: HTTPResponse) -> str:
        """The server's ``Error.message``, else the start of the body, else the reason phrase."""
        text = (response.body or b"").decode("utf-8", "replace").strip()
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict) and data.get("message"):
            return str(data["message"])
        return text[:300] or str(response.reason or "")

    def _refused(self, response: HTTPResponse, what: str) -> MRSError:
        return MRSError(f"R Server at {self.endpoint} refused {what}: HTTP {response.code} {self._detail(response)}")

    def _json(self, response: HTTPResponse, what: str) -> dict[str, Any]:
        try:
            data = json.loads(response.body or b"{}")
        except ValueError:
            raise MRSError(f"R Server at {self.endpoint} answered {what} with invalid JSON: "
                           f"{(response.body or b'')[:200]!r}") from None
        if not isinstance(data, dict):
            raise MRSError(f"R Server at {self.endpoint} answered {what} with {type(data).__name__}, not an object")
        return data

    # -- tokens -------------------------------------------------------------------------

    def _take_tokens(self, response: HTTPResponse, what: str) -> None:
        data = self._json(response, what)
        access, refresh = data.get("access_token"), data.get("refresh_token")
        if not isinstance(access, str) or not access:
            raise MRSError(f"R Server at {self.endpoint} answered {what} without an access_token")
        self.access_token = access
        self.refresh_token = str(refresh or "")
        try:
            lifetime = float(data.get("expires_in", 3600))
        except (TypeError, ValueError):
            lifetime = 3600.0
        self._expires_at = time.monotonic() + lifetime

    async def login(self) -> None:
        """``POST /login`` with the user's name and password."""
        response = await self._fetch("POST", "/login", {"username": self.username, "password": self._password},
                                     auth=False)
        if response.code in (400, 401, 403):
            raise MRSError(f"R Server at {self.endpoint} rejected the login of user {self.username!r} "
                           f"(HTTP {response.code}: {self._detail(response)}); check MRS_USERNAME and "
                           "MRS_PASSWORD (or the kernel options username and password)")
        if response.code != 200:
            raise self._refused(response, f"the login of user {self.username!r}")
        self._take_tokens(response, "the login")

    async def refresh(self) -> None:
        """``POST /login/refreshToken``; a refused refresh token is replaced by logging in again."""
        if not self.refresh_token:
            await self.login()
            return
        response = await self._fetch("POST", "/login/refreshToken", {"refreshToken": self.refresh_token})
        if response.code == 200:
            self._take_tokens(response, "the token refresh")
            return
        refused = f"HTTP {response.code}: {self._detail(response)}"
        if response.code not in (400, 401, 403):
            raise MRSError(f"R Server at {self.endpoint} refused the token refresh ({refused})")
        try:
            await self.login()
        except MRSError as exc:
            raise MRSError(f"R Server at {self.endpoint} rejected the refresh token (expired or revoked: "
                           f"{refused}), and logging in again failed: {exc}") from None

    def token_expired(self) -> bool:
        return time.monotonic() >= self._expires_at - self.refresh_margin

    async def _call(self, method: str, path: str, body: dict | None = None, *, query: dict | None = None,
                    timeout: float | None = None) -> HTTPResponse:
        """An authenticated call: log in or refresh first when needed, refresh and repeat once on 401."""
        if not self.access_token:
            await self.login()
        elif self.token_expired():
            await self.refresh()
        response = await self._fetch(method, path, body, query=query, timeout=timeout)
        if response.code == 401:
            await self.refresh()
            response = await self._fetch(method, path, body, query=query, timeout=timeout)
        return response

    # -- session ------------------------------------------------------------------------

    async def open_session(self) -> str:
        """Log in (when not yet) and ``POST /sessions``; the new session's id."""
        response = await self._call("POST", "/sessions", {})
        if response.code not in (200, 201):
            raise self._refused(response, "to open an R session")
        session_id = self._json(response, "the new session").get("sessionId")
        if not session_id:
            raise MRSError(f"R Server at {self.endpoint} answered the new session without a sessionId")
        self.session_id = str(session_id)
        return self.session_id

    async def execute(self, code: str) -> ExecuteResult:
        """``POST /sessions/{id}/execute``. Raises SessionLost when the server no longer has the session."""
        if self.session_id is None:
            raise SessionLost(f"no R session open on {self.endpoint}")
        session_id = self.session_id
        response = await self._call("POST", f"/sessions/{session_id}/execute", {"code": code})
        if response.code in (404, 410):
            self.session_id = None
            raise SessionLost(f"R Server at {self.endpoint} no longer has session {session_id} "
                              f"(HTTP {response.code}); the next cell opens a new one (its variables are lost)")
        if response.code != 200:
            raise self._refused(response, f"to run the cell in session {session_id}")
        data = self._json(response, "the cell")
        console = str(data.get("consoleOutput") or "").replace("\r\n", "\n")
        success = data.get("success", True) is not False
        return ExecuteResult(console, success, str(data.get("errorMessage") or ""))

    async def cancel(self, timeout: float) -> None:
        """``POST /sessions/{id}/cancel``: abort the running execution (best effort; 404 is ignored)."""
        if self.session_id is not None:
            response = await self._call("POST", f"/sessions/{self.session_id}/cancel", timeout=timeout)
            if response.code not in (200, 202, 204, 404):
                raise self._refused(response, f"to cancel the cell in session {self.session_id}")

    async def close(self, timeout: float) -> None:
        """``DELETE /sessions/{id}``, then ``DELETE /login/refreshToken`` (the runner's shutdown)."""
        try:
            if self.session_id is not None:
                session_id, self.session_id = self.session_id, None
                response = await self._call("DELETE", f"/sessions/{session_id}", timeout=timeout)
                if response.code not in (200, 202, 204, 404):
                    raise self._refused(response, f"to delete session {session_id}")
            if self.refresh_token:
                await self._revoke_refresh_token(timeout)
        finally:
            self.access_token = self.refresh_token = ""
            self._http.close()

    async def _revoke_refresh_token(self, timeout: float) -> None:
        """The query names the refresh token current at the call: a refresh on the way replaces it."""
        for attempt in range(2):
            if self.token_expired():
                await self.refresh()
            response = await self._fetch("DELETE", "/login/refreshToken", query={"refreshToken": self.refresh_token},
                                         timeout=timeout)
            if response.code != 401 or attempt:
                break
            self._expires_at = 0.0  # the access token was refused: refresh, then revoke the new refresh token
        if response.code not in (200, 204, 404):
            raise self._refused(response, "to revoke the refresh token")
