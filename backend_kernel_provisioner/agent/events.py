"""An event hub where a late subscriber first gets the current state, then every change.

Each event carries a ``key`` (``model:<name>``, ``service:<name>``, ``kernel``);
the hub keeps the latest event per key as "the current state".
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

_CLOSED = object()


class EventHub:
    """Fan-out of events to any number of async iterators."""

    def __init__(self) -> None:
        self._latest: dict[str, dict[str, Any]] = {}
        self._queues: set[asyncio.Queue] = set()
        self._closed = False

    def publish(self, event: dict[str, Any]) -> None:
        key = event.get("key") or _key_of(event)
        if key:
            self._latest[key] = event
        for queue in self._queues:
            queue.put_nowait(event)

    def current(self) -> list[dict[str, Any]]:
        return list(self._latest.values())

    def close(self) -> None:
        self._closed = True
        for queue in self._queues:
            queue.put_nowait(_CLOSED)

    def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        """Registered at once: nothing published after this call is missed."""
        queue: asyncio.Queue = asyncio.Queue()
        snapshot = self.current()
        self._queues.add(queue)
        return self._iterate(queue, snapshot)

    async def _iterate(self, queue: asyncio.Queue, snapshot: list[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
        try:
            for event in snapshot:
                yield event
            while not self._closed or not queue.empty():
                event = await queue.get()
                if event is _CLOSED:
                    return
                yield event
        finally:
            self._queues.discard(queue)


def _key_of(event: dict[str, Any]) -> str | None:
    if "model_name" in event:
        return f"model:{event['model_name']}"
    if "name" in event:
        return f"service:{event['name']}"
    return None
