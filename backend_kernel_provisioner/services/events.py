"""A small event bus that keeps the current state per key, so a late subscriber misses nothing.

``subscribe()`` first yields the latest event of every key (service or model),
then every event published afterwards, in order.
"""

from __future__ import annotations

import asyncio
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

    def subscribe(self) -> "Subscription":
        """Registered at once (not on first iteration), so nothing published after this call is missed."""
        queue: asyncio.Queue = asyncio.Queue()
        for event in self.snapshot():
            queue.put_nowait(event)
        self._subscribers.append(queue)
        return Subscription(self, queue)


class Subscription:
    """An async iterator over one subscriber's queue; ``aclose()`` unsubscribes."""

    def __init__(self, bus: EventBus, queue: asyncio.Queue) -> None:
        self._bus = bus
        self._queue = queue
        self._done = False

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> dict[str, Any]:
        if self._done:
            raise StopAsyncIteration
        event = await self._queue.get()
        if event is _END:
            await self.aclose()
            raise StopAsyncIteration
        return event

    async def aclose(self) -> None:
        self._done = True
        if self._queue in self._bus._subscribers:
            self._bus._subscribers.remove(self._queue)
