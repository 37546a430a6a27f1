"""The web terminal served with terminado: the intrinsic ``ttyd`` service where ttyd is not installed.

Debian 12 has no ttyd package, so the ``ttyd`` recipe falls back to this
module, run as the service's own process (the manager supervises it like any
other) on the same port and URL shape: ``/`` is the terminal page (xterm.js,
shipped in ``webterm_static/``), ``/ws`` its WebSocket (terminado's JSON
protocol: ``["stdin", text]``, ``["set_size", rows, cols]`` in;
``["stdout", text]``, ``["setup", {}]``, ``["disconnect", 1]`` out).

As with ttyd, each WebSocket gets its own process on a pseudo-terminal: the
best shell, or a tmux client attached to the shared session ``main`` when tmux
exists. That tmux server is this process's child on a private socket (so two
kernels of one user never share a session, and one kernel's stop never ends
another's), and it dies with this process even when this process is killed.

Every request needs the kernel's HTTP basic-auth credential, read from
``BACKEND_WEBTERM_CREDENTIAL`` (``user:password``), never the command line
which any local user may read in ``/proc``; the variable is removed before a
shell starts. The server listens on the given address only.

Nothing outlives the service: on SIGTERM (the manager's stop) the terminals,
the tmux server and every process still carrying this server's session marker
(``BACKEND_WEBTERM_SESSION``: background jobs, ``nohup`` programs) are ended.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import hmac
import logging
import os
import secrets
import signal
from collections.abc import MutableMapping
from pathlib import Path

import tornado.web
from terminado import TermSocket, UniqueTermManager

from backend_kernel_provisioner.common.childproc import spawn
from backend_kernel_provisioner.common.leftovers import terminate_marked
from backend_kernel_provisioner.common.offload import in_worker
from backend_kernel_provisioner.sidecar.services.intrinsic import WEBTERM_CREDENTIAL_ENV, tmux_client

#: A token in the environment of every process of this terminal, so that the stop finds them all.
SESSION_ENV = "BACKEND_WEBTERM_SESSION"
STATIC = Path(__file__).with_name("webterm_static")
#: Seconds the tmux server may take to create its socket.
TMUX_START_TIMEOUT = 10.0

log = logging.getLogger("webterm")


def authorized(header: str | None, expected: tuple[str, str]) -> bool:
    """Whether an ``Authorization`` header carries ``expected`` (compared in constant time)."""
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(given, f"{expected[0]}:{expected[1]}".encode())


def refuse_without_login(handler: tornado.web.RequestHandler) -> None:
    """In ``prepare()``: answer 401 (and so skip the handler) unless the request carries the credential."""
    if not authorized(handler.request.headers.get("Authorization"), handler.settings["credential"]):
        handler.set_status(401)
        handler.set_header("WWW-Authenticate", 'Basic realm="terminal", charset="UTF-8"')
        handler.finish("login required\n")


class PageHandler(tornado.web.RequestHandler):
    def prepare(self) -> None:
        refuse_without_login(self)

    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish((STATIC / "index.html").read_bytes())


class StaticHandler(tornado.web.StaticFileHandler):
    def prepare(self) -> None:
        refuse_without_login(self)


class TerminalSocket(TermSocket):
    """terminado's handler behind the login; cross-origin upgrades stay refused (tornado's default)."""

    def prepare(self) -> None:
        refuse_without_login(self)


class Terminals(UniqueTermManager):
    """One process per WebSocket, as ttyd does; hung up when its WebSocket closes (terminado's default)."""


def make_app(manager: Terminals, credential: tuple[str, str]) -> tornado.web.Application:
    return tornado.web.Application(
        [
            (r"/", PageHandler),
            (r"/ws", TerminalSocket, {"term_manager": manager}),
            (r"/static/(.*)", StaticHandler, {"path": str(STATIC)}),
        ],
        credential=credential,
        websocket_ping_interval=30,
    )


def read_credential(environ: MutableMapping[str, str]) -> tuple[str, str]:
    """The credential from the environment (and out of it, so no shell inherits it)."""
    value = environ.pop(WEBTERM_CREDENTIAL_ENV, "")
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise SystemExit(f"webterm: {WEBTERM_CREDENTIAL_ENV} must be set to USER:PASSWORD")
    return user, password


class TmuxServer:
    """A tmux server on a private socket, in the foreground (``-D``) as our child.

    ``-D`` keeps the server from daemonizing away from us; its parent-death signal
    (the common child recipe) ends it, and so its panes, when this process dies.
    """

    def __init__(self, tmux: str, socket_path: str) -> None:
        self.tmux, self.socket_path = tmux, socket_path
        self.proc: asyncio.subprocess.Process | None = None

    def client_argv(self, shell: str) -> list[str]:
        return tmux_client(self.tmux, self.socket_path, shell)

    async def start(self) -> None:
        if os.path.exists(self.socket_path):  # left by a server that was killed: a new one needs the name
            os.unlink(self.socket_path)
        self.proc = await spawn([self.tmux, "-D", "-S", self.socket_path], stdout=None, stderr=None,
                                death_signal=signal.SIGTERM)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TMUX_START_TIMEOUT
        while not os.path.exists(self.socket_path):
            if self.proc.returncode is not None or loop.time() > deadline:
                raise SystemExit(f"webterm: tmux did not start its server on {self.socket_path}")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        """End the server (it hangs up on its panes' shells)."""
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.terminate()
        try:
            await asyncio.wait_for(self.proc.wait(), 3.0)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="webterm", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True, help="TCP port to listen on")
    parser.add_argument("--bind", default="127.0.0.1", help="IP address to listen on (only there)")
    parser.add_argument("--shell", default="/bin/sh", help="the shell each terminal runs")
    parser.add_argument("--tmux", default="", help="tmux program: terminals attach to one shared session")
    parser.add_argument("--tmux-socket", default="", help="the private tmux server's socket (with --tmux)")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace, credential: tuple[str, str]) -> None:
    """Run until SIGTERM, SIGINT or SIGHUP; then end every process of the terminal."""
    marker = secrets.token_hex(12)
    os.environ[SESSION_ENV] = marker  # inherited by the tmux server and every terminal (terminado copies environ)
    for name in ("TMUX", "TMUX_PANE"):  # a Jupyter server started inside tmux: our terminals are not in that one
        os.environ.pop(name, None)
    tmux = TmuxServer(args.tmux, args.tmux_socket) if args.tmux and args.tmux_socket else None
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(signum, stopping.set)
    server = None
    manager = Terminals(shell_command=tmux.client_argv(args.shell) if tmux else [args.shell])
    try:
        if tmux is not None:
            await tmux.start()
        server = make_app(manager, credential).listen(args.port, address=args.bind)
        log.info("web terminal on %s port %d (%s)", args.bind, args.port,
                 "shared tmux session" if tmux else args.shell)
        await stopping.wait()
    finally:
        if server is not None:
            server.stop()
        await manager.shutdown()
        if tmux is not None:
            await tmux.stop()
        await in_worker(terminate_marked, marker.__eq__, 1.0, (), SESSION_ENV)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s webterm %(levelname)s %(message)s")
    logging.getLogger("tornado.access").setLevel(logging.WARNING)
    args = parse_args(argv)
    credential = read_credential(os.environ)
    asyncio.run(serve(args, credential))


if __name__ == "__main__":
    main()

