"""The runner's drawing media: a command list, msgpack-encoded, then base64.

Frontends written for the runner (the platform's) decode exactly this, so the
encoding is theirs: msgpack with the binary type on (``str`` stays a string,
``bytes`` a bin), every command a msgpack array whose first item is the canvas
id, and the whole as base64 text so that it fits a Jupyter ``display_data``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

import msgpack

#: The media type the runner's frontends draw from.
DRAWING_MIME = "application/x-sorna-drawing"

#: One drawing command: ``(canvas_id, name, *arguments)``.
Command = tuple[Any, ...]


def encode_commands(commands: Iterable[Command]) -> str:
    """The base64 text of the msgpack list of ``commands`` (tuples become arrays)."""
    packed = msgpack.packb(list(commands), use_bin_type=True)
    return base64.b64encode(packed).decode("ascii")


def decode_commands(data: str) -> list[list[Any]]:
    """The command list back from the media's text (what a frontend does; tests and tools use it)."""
    commands = msgpack.unpackb(base64.b64decode(data), raw=False)
    if not isinstance(commands, list):
        raise ValueError(f"{DRAWING_MIME} data is not a command list: {type(commands).__name__}")
    return commands
