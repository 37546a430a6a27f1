"""Rich output a loader sends while a cell runs: the ``{"display": ...}`` line of the loader protocol.

Why a line on the status channel: a session interpreter's stdout and stderr are plain text streams the
kernel relays as they come; rich output (HTML, images, Markdown, JSON) needs a MIME bundle, and the status
FIFO already carries JSON lines from the loader. The loader flushes its stdout and stderr before it writes
the line, and the kernel lets its pumps take what the interpreter wrote before (``InterpreterSession.drain``)
and flushes the cell's relay before it publishes: text printed before the display comes before it.

A display line is ``{"display": {"data": {mime: value}, "metadata": {...}, "files": {mime: path},
"display_id": "...", "update": true}}``; all but ``data`` or ``files`` may be left out:

* ``data``: text values as Jupyter wants them (base64 text for binary images; a JSON value, or JSON text
  the kernel parses, for ``application/json`` and ``*+json``);
* ``files``: for payloads a language cannot encode easily (R has no base64 without packages): the kernel
  reads the file (base64 for binary types) and removes it when it lies in the session folder and its name
  starts with ``display-`` (a loader's staging file); a user's own file is only read;
* ``display_id`` gives the output an id (``transient.display_id``); with ``update`` the message is an
  ``update_display_data`` of that id (an R figure drawn further by a later expression of the cell).

A bundle without ``text/plain`` gets one (a console shows it), so each display has a text form.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
from pathlib import Path
from typing import Any

#: Types whose payload is binary: base64 in the message.
BINARY_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "application/pdf"})
#: Shown as they are in a console when the bundle has no text/plain of its own.
READABLE_TYPES = ("text/markdown", "text/latex", "application/json")
LABELS = {"text/html": "HTML", "image/svg+xml": "SVG image", "image/png": "PNG image", "image/jpeg": "JPEG image",
          "image/gif": "GIF image", "application/javascript": "JavaScript"}
STAGING_PREFIX = "display-"
ACK_FIFO = "display-ack"
MAX_FILE_BYTES = 64 * 1024 * 1024


class DisplayError(ValueError):
    """A display line the kernel cannot publish (told on the cell's stderr, the cell goes on)."""


def is_json_type(mime: str) -> bool:
    return mime == "application/json" or mime.endswith("+json")


def _read_file(mime: str, path: str, folder: Path) -> Any:
    file = Path(path)
    try:
        if file.stat().st_size > MAX_FILE_BYTES:
            raise DisplayError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
        raw = file.read_bytes()
    except OSError as exc:
        raise DisplayError(f"cannot read {path}: {exc.strerror or exc}") from None
    finally:
        if file.name.startswith(STAGING_PREFIX) and file.parent.resolve() == folder.resolve():
            with contextlib.suppress(OSError):
                file.unlink()
    if mime in BINARY_TYPES:
        return base64.b64encode(raw).decode("ascii")
    return raw.decode("utf-8", errors="replace")


def _value(mime: str, value: Any) -> Any:
    if is_json_type(mime):
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise DisplayError(f"{mime}: not JSON text: {value[:80]!r}") from None
        return value
    if not isinstance(value, str):
        raise DisplayError(f"{mime}: the value must be text, not {type(value).__name__}")
    if mime in BINARY_TYPES:
        try:
            base64.b64decode(value, validate=True)
        except ValueError:
            raise DisplayError(f"{mime}: the value is not base64 text") from None
    return value


def plain_text(data: dict[str, Any]) -> str:
    """The text/plain of a bundle that has none: readable sources as they are, others a short label."""
    for mime in READABLE_TYPES:
        if mime in data:
            value = data[mime]
            return value if isinstance(value, str) else json.dumps(value, indent=1, ensure_ascii=False)
    mime = next(iter(data), "")
    return f"<{LABELS.get(mime, mime or 'empty')} output>"


def message(line: dict[str, Any], folder: Path) -> tuple[str, dict[str, Any]]:
    """The IOPub message type and content for the ``display`` object of a loader line."""
    if line is None:
        raise DisplayError("the display line is not valid JSON")
    if not isinstance(line, dict):
        raise DisplayError("the display is not a JSON object")
    given = line.get("data") or {}
    files = line.get("files") or {}
    metadata = line.get("metadata") or {}
    if not isinstance(given, dict) or not isinstance(files, dict) or not isinstance(metadata, dict):
        raise DisplayError("data, files and metadata must be JSON objects")
    data = {str(mime): _value(str(mime), value) for mime, value in given.items()}
    for mime, path in files.items():
        data[str(mime)] = _value(str(mime), _read_file(str(mime), str(path), folder))
    if not data:
        raise DisplayError("nothing to display (no data and no files)")
    if "text/plain" not in data:
        data["text/plain"] = plain_text(data)
    content: dict[str, Any] = {"data": data, "metadata": metadata}
    display_id = line.get("display_id")
    kind = "display_data"
    if isinstance(display_id, str) and display_id:
        content["transient"] = {"display_id": display_id}
        if line.get("update"):
            kind = "update_display_data"
    return kind, content


def result_data(answer: dict[str, Any]) -> dict[str, Any]:
    """Rich types of a cell's value beside its text (the answer's ``data``: an R data frame's HTML table)."""
    given = answer.get("data")
    if not isinstance(given, dict):
        return {}
    data = {}
    for mime, value in given.items():
        with contextlib.suppress(DisplayError):
            data[str(mime)] = _value(str(mime), value)
    return data


def publish(kernel: Any, line: Any, folder: Path) -> None:
    """Publish one display line in a session kernel, after the text the cell printed before it."""
    kernel.relay.flush()
    try:
        kind, content = message(line, folder)  # also when silent: it removes the staging files
    except DisplayError as exc:
        kernel.stream("stderr", f"[display: {exc}]\n")
        return
    if not kernel._silent:
        kernel.send_response(kernel.iopub_socket, kind, content)


class Acks:
    """The FIFO ``display-ack`` in the session folder: one line per display line, once it is published.

    Why: the kernel reads the interpreter's stdout, stderr and status channel on separate pipes, so text the
    loader prints right after a display line could be taken before it. A loader waits for the line (it opens
    the FIFO, reads a line, closes it), so nothing it prints after a display exists before the display is out.
    The kernel keeps the FIFO open for reading and writing: a loader's open never waits for a writer, and a
    line written before the loader opens it stays in the pipe.
    """

    def __init__(self, folder: Path) -> None:
        path = folder / ACK_FIFO
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        os.mkfifo(path, 0o600)
        self._fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)

    def send(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.write(self._fd, b"ok\n")

    def close(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
