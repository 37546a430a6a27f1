"""Blocking work off the event loop, even while the interpreter is exiting.

Why not plain :func:`asyncio.to_thread`: ``jupyter run`` (and any blocking
``KernelManager`` user) shuts its kernel down from an ``atexit`` hook, after
Python has stopped its thread pools; ``to_thread`` then raises "cannot
schedule new futures after interpreter shutdown" and the kernel's clean-up
would stop half way. At that point nothing else runs on the loop, so doing
the work inline blocks no one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def in_worker(func: Callable[..., T], /, *args: Any) -> T:
    """``func(*args)`` in a worker thread; inline when no worker can start any more (interpreter exit)."""
    try:
        return await asyncio.to_thread(func, *args)
    except RuntimeError as exc:
        if "shutdown" not in str(exc):
            raise
        return func(*args)
