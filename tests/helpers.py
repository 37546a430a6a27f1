"""Helpers for tests: real kernels through jupyter_client, process checks."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator

import pytest


def require_programs(*programs: str) -> None:
    """Skip the calling test, naming what is missing, when a toolchain is absent."""
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        pytest.skip(f"toolchain not installed: missing {', '.join(missing)}")


@contextlib.asynccontextmanager
async def running_kernel(kernel_name: str, **start_kwargs) -> AsyncIterator[tuple]:
    """Start a real kernel through AsyncKernelManager; always shut it down."""
    from jupyter_client.manager import AsyncKernelManager

    km = AsyncKernelManager(kernel_name=kernel_name)
    await km.start_kernel(**start_kwargs)
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=60)
        yield km, kc
    finally:
        kc.stop_channels()
        await km.shutdown_kernel(now=False)


async def run_cell(kc, code: str, *, timeout: float = 60, stdin_answers=None, allow_stdin=None) -> dict:
    """Execute ``code``; collect streams and displays; answer input requests from ``stdin_answers``."""
    answers = list(stdin_answers or [])
    outputs: dict = {"stdout": "", "stderr": "", "displays": [], "errors": [], "prompts": []}

    def on_output(msg: dict) -> None:
        kind = msg["header"]["msg_type"]
        content = msg["content"]
        if kind == "stream":
            outputs[content["name"]] += content["text"]
        elif kind in ("display_data", "execute_result", "update_display_data"):
            outputs["displays"].append(content)
        elif kind == "error":
            outputs["errors"].append(content)

    def on_stdin(msg: dict) -> None:
        if msg["header"]["msg_type"] == "input_request":
            outputs["prompts"].append(msg["content"]["prompt"])
            kc.input(answers.pop(0) if answers else "")

    if allow_stdin is None:
        allow_stdin = bool(stdin_answers)
    reply = await kc.execute_interactive(
        code,
        timeout=timeout,
        output_hook=on_output,
        stdin_hook=on_stdin,
        allow_stdin=allow_stdin,
    )
    outputs["reply"] = reply["content"]
    return outputs


def kernel_process_tree(pid: int) -> set[int]:
    """PIDs of ``pid`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = set(), [pid]
    while todo:
        current = todo.pop()
        if current in tree:
            continue
        tree.add(current)
        todo.extend(children.get(current, []))
    return {p for p in tree if os.path.exists(f"/proc/{p}")}


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def run_cell_messages(kc, code: str, *, timeout: float = 60) -> tuple[dict, list[tuple[str, dict]]]:
    """Execute ``code``; return the reply content and every IOPub output as (msg_type, content).

    Unlike ``run_cell`` this keeps the message type, so ``display_data`` and
    ``update_display_data`` (and their ``transient.display_id``) can be told apart.
    """
    messages: list[tuple[str, dict]] = []

    def on_output(msg: dict) -> None:
        kind = msg["header"]["msg_type"]
        if kind not in ("status", "execute_input"):
            messages.append((kind, msg["content"]))

    reply = await kc.execute_interactive(code, timeout=timeout, output_hook=on_output, allow_stdin=False)
    return reply["content"], messages


#: A stand-in ``ttyd`` program (Debian 12 has none): an HTTP server on ttyd's ``--port`` that answers
#: every request with the arguments it was started with, so a test sees how the manager ran ttyd.
TTYD_STANDIN = """\
import http.server, json, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(sys.argv[1:]).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
port = int(sys.argv[sys.argv.index("--port") + 1])
http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


def write_ttyd_standin(folder) -> None:
    """Put the stand-in ``ttyd`` (run by this Python) into ``folder``."""
    import sys
    from pathlib import Path

    program = Path(folder) / "ttyd"
    program.write_text(f"#!{sys.executable}\n{TTYD_STANDIN}")
    program.chmod(0o755)
