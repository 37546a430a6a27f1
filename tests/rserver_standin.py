"""A stand-in Microsoft R Server / ML Server for tests: its operationalization API on a loopback port.

It implements the calls the ``backend-rserver`` kernel uses, as ML Server's
published API (9.2.1 swagger) describes them: ``POST /login``,
``POST/DELETE /login/refreshToken``, ``POST /sessions``,
``POST /sessions/{id}/execute`` (``success``, ``errorMessage``,
``consoleOutput`` with ``\\r\\n`` line ends, ``outputParameters``,
``changedFiles``), ``POST /sessions/{id}/cancel`` and
``DELETE /sessions/{id}``. It is honest where the kernel could cheat: every
call but the two token calls needs a live bearer token, access tokens expire
after ``token_ttl`` seconds (or at once with :meth:`expire_access_tokens`),
a refresh rotates the refresh token, and a revoked one is refused. Each
session is one real R process (``Rscript`` running a small read-eval-print
loop), so variables live on between cells and a cancel is R's own interrupt.
Every call is recorded (:attr:`calls`, :meth:`sequence`) for the tests.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

#: The session's R loop: one line "code<TAB>output<TAB>error" per cell, answered "started" (from then on a
#: SIGINT is a cancel), then console output (and messages, warnings) go to the output file, R's error (as
#: the console words it) to the error file, and "done".
DRIVER = r"""
options(warn = 1)
input <- file("stdin", "r")
describe <- function(e) {
  call <- conditionCall(e)
  if (is.null(call) || identical(call[[1]], quote(eval)) || identical(call[[1]], quote(parse)))
    paste0("Error: ", conditionMessage(e))
  else paste0("Error in ", deparse(call)[1], " : ", conditionMessage(e))
}
serve <- function(paths) {
  out <- file(paths[2], open = "wt")
  sink(out); sink(out, type = "message")
  on.exit({ sink(type = "message"); sink(); close(out) })
  tryCatch({
    for (e in parse(file = paths[1], keep.source = FALSE, encoding = "UTF-8")) {
      r <- withVisible(eval(e, globalenv()))
      if (r$visible) print(r$value)
    }
    ""
  }, error = describe, interrupt = function(e) "Execution was cancelled")
}
repeat {
  line <- tryCatch(readLines(input, n = 1), interrupt = function(e) NULL)
  if (is.null(line)) next
  if (length(line) == 0) break
  paths <- strsplit(line, "\t", fixed = TRUE)[[1]]
  cat("started\n"); flush(stdout())
  err <- tryCatch(serve(paths), interrupt = function(e) "Execution was cancelled")
  writeLines(err, paths[3], useBytes = TRUE)
  cat("done\n"); flush(stdout())
}
"""


class RSession:
    """One session's R process and folder; one cell at a time."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        (folder / "driver.R").write_text(DRIVER)
        env = {**os.environ, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TMPDIR": str(folder)}
        self.process = subprocess.Popen(
            ["Rscript", "--vanilla", str(folder / "driver.R")], cwd=folder, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        self.cell_lock = threading.Lock()
        self.state_lock = threading.Lock()
        self.executing = False
        self.cancelled = 0

    def execute(self, code: str) -> tuple[str, str | None]:
        """(console output, R's error message or None)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        with self.cell_lock:
            paths = [self.folder / name for name in ("cell.R", "out.txt", "err.txt")]
            paths[0].write_text(code, encoding="utf-8")
            try:
                self.process.stdin.write("\t".join(map(str, paths)) + "\n")
                self.process.stdin.flush()
                with self.state_lock:
                    self.executing = self.process.stdout.readline() == "started\n"
                finished = self.executing and self.process.stdout.readline() == "done\n"
            except OSError:
                finished = False
            finally:
                with self.state_lock:
                    self.executing = False
            if not finished:
                return "", "Error: the session's R process ended"
            error = paths[2].read_text(encoding="utf-8").strip()
            return paths[1].read_text(encoding="utf-8"), error or None

    def cancel(self) -> None:
        with self.state_lock:
            if self.executing:
                self.process.send_signal(signal.SIGINT)
                self.cancelled += 1

    def close(self) -> None:
        try:
            if self.process.stdin is not None:
                self.process.stdin.close()
            self.process.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class Call:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, str]
    body: dict
    status: int
    bearer: str = ""
    answer: Any = field(default=None, repr=False)


class StandinMRS:
    """``start()``; ``url``; the accepted ``username``/``password``; inspect ``calls`` and ``sessions``."""

    def __init__(self, username: str = "analyst", password: str = "s3cret", *, token_ttl: float = 3600.0) -> None:
        self.username, self.password, self.token_ttl = username, password, token_ttl
        self.access_tokens: dict[str, float] = {}  # token -> monotonic expiry
        self.refresh_tokens: set[str] = set()
        self.revoked: list[str] = []
        self.sessions: dict[str, RSession] = {}
        self.created: list[RSession] = []
        self.deleted: list[str] = []
        self.calls: list[Call] = []
        self.lock = threading.Lock()
        self.folder = Path(tempfile.mkdtemp(prefix="standin-mrs-"))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> StandinMRS:
        if shutil.which("Rscript") is None:
            raise RuntimeError("the stand-in R Server runs cells with Rscript, which is not installed")
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        for session in list(self.sessions.values()):
            session.cancel()
            session.close()
        self.sessions.clear()
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- what tests change and read ------------------------------------------------------

    def expire_access_tokens(self) -> None:
        """Every access token issued so far stops working now (as after a restart of the server's auth)."""
        with self.lock:
            self.access_tokens = dict.fromkeys(self.access_tokens, 0.0)

    def revoke_refresh_tokens(self) -> None:
        """Every refresh token issued so far is refused from now on (as when they expire)."""
        with self.lock:
            self.revoked += sorted(self.refresh_tokens)
            self.refresh_tokens.clear()

    def sequence(self) -> list[str]:
        """The calls as ``"METHOD /path status"`` with session ids as ``{id}`` (queries left out)."""
        out = []
        for call in self.calls:
            parts = ["{id}" if p in self.deleted or p in self.sessions else p for p in call.path.split("/")]
            out.append(f"{call.method} {'/'.join(parts)} {call.status}")
        return out

    def executing(self) -> bool:
        return any(s.executing for s in list(self.sessions.values()))

    # -- the API ---------------------------------------------------------------------------

    def _issue(self) -> dict[str, Any]:
        access, refresh = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        with self.lock:
            self.access_tokens[access] = time.monotonic() + self.token_ttl
            self.refresh_tokens.add(refresh)
        return {"token_type": "Bearer", "access_token": access, "expires_in": self.token_ttl,
                "expires_on": int(time.time() + self.token_ttl), "refresh_token": refresh}

    def _bearer_ok(self, bearer: str) -> bool:
        with self.lock:
            return self.access_tokens.get(bearer, 0.0) > time.monotonic()

    def handle(self, method: str, path: str, query: dict[str, str], bearer: str, body: dict) -> tuple[int, Any]:
        if (method, path) == ("POST", "/login"):
            if body.get("username") != self.username or body.get("password") != self.password:
                return 401, {"message": "Invalid username or password."}
            return 200, self._issue()
        if (method, path) == ("POST", "/login/refreshToken"):
            with self.lock:
                known = body.get("refreshToken") in self.refresh_tokens
                if known:  # rotation: a refresh token works once
                    self.refresh_tokens.discard(body["refreshToken"])
            return (200, self._issue()) if known else (401, {"message": "Invalid or expired refresh token."})
        if not self._bearer_ok(bearer):
            return 401, {"message": "Unauthorized: the access token is missing, invalid or expired."}
        if (method, path) == ("DELETE", "/login/refreshToken"):
            with self.lock:
                token = query.get("refreshToken", "")
                if token not in self.refresh_tokens:
                    return 401, {"message": "Invalid or expired refresh token."}
                self.refresh_tokens.discard(token)
                self.revoked.append(token)
            return 200, {}
        parts = path.strip("/").split("/")
        if (method, parts) == ("POST", ["sessions"]):
            session_id = str(uuid.uuid4())
            folder = self.folder / session_id
            folder.mkdir()
            self.sessions[session_id] = RSession(folder)
            self.created.append(self.sessions[session_id])
            return 201, {"sessionId": session_id}
        if len(parts) < 2 or parts[0] != "sessions" or parts[1] not in self.sessions:
            return 404, {"message": "Session not found."}
        session = self.sessions[parts[1]]
        if method == "DELETE" and len(parts) == 2:
            del self.sessions[parts[1]]
            self.deleted.append(parts[1])
            session.cancel()
            session.close()
            return 200, "Session closed"
        if (method, parts[2:]) == ("POST", ["execute"]):
            console, error = session.execute(str(body.get("code", "")))
            return 200, {"success": error is None, "errorMessage": error or "", "outputParameters": [],
                         "consoleOutput": console.replace("\n", "\r\n"), "changedFiles": []}
        if (method, parts[2:]) == ("POST", ["cancel"]):
            session.cancel()
            return 200, "Cancelled"
        return 404, {"message": f"No route {method} {path}."}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw.strip() else {}
                except ValueError:
                    body = None
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                bearer = self.headers.get("Authorization", "").removeprefix("Bearer ")
                if isinstance(body, dict):
                    code, answer = server.handle(self.command, url.path, query, bearer, body)
                else:
                    code, answer = 400, {"message": "The body is not a JSON object."}
                with server.lock:
                    server.calls.append(Call(self.command, url.path, query, body or {}, code, bearer, answer))
                payload = json.dumps(answer).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_POST = do_DELETE = do_GET = _serve

        return Handler
