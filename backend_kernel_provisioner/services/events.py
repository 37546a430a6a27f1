"""A small event bus that keeps the current state per key, so a late subscriber misses nothing.

``subscribe()`` first yields the latest event of every key (service or model),
then every event published afterwards, in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

_END = None


def event_key(event: dict[str, Any]) -> str:
    """``service:<name>`` / ``model:<name>``; an explicit ``key`` wins."""
    if "key" in event:
        return str(event["key"])
    if "model_name" in event:
        return f"model:{event['model_name']}"
    return f"service:{event.get('name', '')}"


class EventBus:
    """Publish/subscribe within one asyncio loop; publishing never blocks."""

    def __init__(self) -> None:
        self.state: dict[str, dict[str, Any]] = {}
        self._subscribers: list[asyncio.Queue] = []

    def publish(self, event: dict[str, Any]) -> None:
        self.state[event_key(event)] = event
        for queue in self._subscribers:
            queue.put_nowait(event)

    def snapshot(self) -> list[dict[str, Any]]:
        return list(self.state.values())

    def close(self) -> None:
        """End every subscription (after it has delivered what was queued)."""
        for queue in self._subscribers:
            queue.put_nowait(_END)

    async def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        queue: asyncio.Queue = asyncio.Queue()
        for event in self.snapshot():
            queue.put_nowait(event)
        self._subscribers.append(queue)
        try:
            while (event := await queue.get()) is not _END:
                yield event
        finally:
            self._subscribers.remove(queue)
