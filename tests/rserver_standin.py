"""A small local R server for tests: the session API of vendor/rserver_client.py on loopback.

It keeps R-like state per session with a tiny evaluator (assignments,
print/cat/message/stop, arithmetic, Sys.sleep) - enough to prove that cells
share one remote session - and records every call, so tests can check
session deletion and token refresh.
"""

from __future__ import annotations

import ast
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class RError(Exception):
    pass


@dataclass
class Session:
    variables: dict[str, Any] = field(default_factory=dict)
    interrupt: threading.Event = field(default_factory=threading.Event)
    running: bool = False


def r_format(value: Any, quote: bool = True) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        return json.dumps(value) if quote else value
    return str(value)


def evaluate(expr: str, variables: dict[str, Any]) -> Any:
    """Constants, names and arithmetic, R spellings for TRUE/FALSE."""
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError:
        raise RError(f"Error: unexpected input in \"{expr.strip()}\"") from None

    def walk(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)):
            return float(node.value) if isinstance(node.value, int) else node.value
        if isinstance(node, ast.Name):
            if node.id in ("TRUE", "FALSE"):
                return node.id == "TRUE"
            if node.id not in variables:
                raise RError(f"Error: object '{node.id}' not found")
            return variables[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in OPS:
            return OPS[type(node.op)](walk(node.left), walk(node.right))
        raise RError(f"Error: the stand-in cannot evaluate {ast.unparse(node)!r}")

    return walk(tree.body)


OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
       ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b}
CALL = re.compile(r"^([A-Za-z.]+)\((.*)\)$", re.S)
ASSIGN = re.compile(r"^([A-Za-z.][\w.]*)\s*(?:<-|=(?!=))\s*(.+)$", re.S)


def run_r(code: str, session: Session) -> dict[str, Any]:
    out: list[str] = []
    err: list[str] = []
    try:
        for line in code.splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            assign, call = ASSIGN.match(line), CALL.match(line)
            if assign:
                session.variables[assign.group(1)] = evaluate(assign.group(2), session.variables)
            elif call and call.group(1) == "print":
                out.append(f"[1] {r_format(evaluate(call.group(2), session.variables))}\n")
            elif call and call.group(1) == "cat":
                args = [a for a in call.group(2).split(",") if a.strip()]
                out.append(" ".join(r_format(evaluate(a, session.variables), quote=False) for a in args))
            elif call and call.group(1) == "message":
                err.append(f"{r_format(evaluate(call.group(2), session.variables), quote=False)}\n")
            elif call and call.group(1) == "stop":
                raise RError(f"Error: {r_format(evaluate(call.group(2), session.variables), quote=False)}")
            elif call and call.group(1) == "Sys.sleep":
                if session.interrupt.wait(evaluate(call.group(2), session.variables)):
                    raise RError("Error: interrupted")
            else:
                out.append(f"[1] {r_format(evaluate(line, session.variables))}\n")
    except RError as exc:
        return {"stdout": "".join(out), "stderr": "".join(err), "error": str(exc)}
    return {"stdout": "".join(out), "stderr": "".join(err), "error": None}


class StandinRServer:
    """Start with ``start()``; ``url``; inspect ``calls``, ``sessions``, ``deleted``, ``tokens_issued``."""

    def __init__(self, access_key: str = "ak", secret_key: str = "sk", token_ttl: float = 3600) -> None:
        self.access_key, self.secret_key, self.token_ttl = access_key, secret_key, token_ttl
        self.tokens: dict[str, float] = {}
        self.tokens_issued = 0
        self.sessions: dict[str, Session] = {}
        self.created: list[str] = []
        self.deleted: list[str] = []
        self.interrupted: list[str] = []
        self.calls: list[tuple[str, str, int]] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> StandinRServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        for session in self.sessions.values():
            session.interrupt.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def expire_tokens(self) -> None:
        """Invalidate every token the server issued (as if it restarted its auth service)."""
        with self.lock:
            self.tokens.clear()

    def statuses(self, method: str, prefix: str) -> list[int]:
        return [code for m, p, code in self.calls if m == method and p.startswith(prefix)]

    # -- HTTP -----------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: Any, body: dict) -> tuple[int, dict | None]:
        if method == "POST" and path == "/auth/token":
            if body.get("access_key") != self.access_key or body.get("secret_key") != self.secret_key:
                return 401, {"message": "bad credentials"}
            token = secrets.token_hex(8)
            with self.lock:
                self.tokens[token] = time.monotonic() + self.token_ttl
                self.tokens_issued += 1
            return 200, {"token": token, "expires_in": self.token_ttl}
        token = headers.get("Authorization", "").removeprefix("Bearer ")
        with self.lock:
            if self.tokens.get(token, 0) < time.monotonic():
                return 401, {"message": "token expired or unknown"}
        parts = path.strip("/").split("/")
        if method == "POST" and parts == ["sessions"]:
            session_id = secrets.token_hex(4)
            with self.lock:
                self.sessions[session_id] = Session()
                self.created.append(session_id)
            return 201, {"id": session_id}
        if len(parts) < 2 or parts[0] != "sessions" or parts[1] not in self.sessions:
            return 404, {"message": "no such session"}
        session = self.sessions[parts[1]]
        if method == "DELETE" and len(parts) == 2:
            session.interrupt.set()
            with self.lock:
                del self.sessions[parts[1]]
                self.deleted.append(parts[1])
            return 204, None
        if method == "POST" and parts[2:] == ["execute"]:
            session.interrupt.clear()
            session.running = True
            try:
                return 200, run_r(str(body.get("code", "")), session)
            finally:
                session.running = False
        if method == "POST" and parts[2:] == ["interrupt"]:
            session.interrupt.set()
            self.interrupted.append(parts[1])
            return 204, None
        return 404, {"message": f"no route {method} {path}"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else {}
                code, answer = server.handle(self.command, self.path, self.headers, body)
                with server.lock:
                    server.calls.append((self.command, self.path, code))
                payload = b"" if answer is None else json.dumps(answer).encode()
                self.send_response(code)
                if payload:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_POST = do_DELETE = _serve

        return Handler
