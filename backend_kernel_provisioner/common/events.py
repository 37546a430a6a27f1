"""The one event bus: services, models and the kernel publish here; any number of consumers subscribe.

The bus keeps the latest event per key (``service:<name>``, ``model:<name>``,
``kernel``), so a late subscriber first gets the current state and then every
change, in order. A subscription is a plain object whose ``__anext__`` only
awaits a queue: a consumer that writes ``await asyncio.wait_for(anext(sub), 3)``
and times out keeps its subscription (an async generator would be closed by
that cancellation and every later event lost).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

Event = dict[str, Any]
EventFilter = Callable[[Event], bool]

_END: Any = object()


def event_key(event: Event) -> str:
    """``service:<name>`` / ``model:<name>``; an explicit ``key`` wins."""
    if "key" in event:
        return str(event["key"])
    if "model_name" in event:
        return f"model:{event['model_name']}"
    return f"service:{event.get('name', '')}"


class EventBus:
    """Publish/subscribe within one asyncio loop; publishing never blocks."""

    def __init__(self) -> None:
        self.state: dict[str, Event] = {}
        self._subscriptions: list[Subscription] = []
        self.closed = False

    def publish(self, event: Event) -> None:
        self.state[event_key(event)] = event
        for subscription in list(self._subscriptions):
            subscription.offer(event)

    def snapshot(self) -> list[Event]:
        """The latest event of every key."""
        return list(self.state.values())

    def close(self) -> None:
        """End every subscription (after it has delivered what was queued)."""
        self.closed = True
        for subscription in list(self._subscriptions):
            subscription.end()

    def subscribe(self, accept: EventFilter | None = None) -> Subscription:
        """Registered at once (not on first iteration), so nothing published after this call is missed.

        ``accept`` keeps only the events it returns True for (the current state included).
        """
        subscription = Subscription(self, accept)
        for event in self.snapshot():
            subscription.offer(event)
        if self.closed:
            subscription.end()
        else:
            self._subscriptions.append(subscription)
        return subscription

    def _forget(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)


class Subscription:
    """One consumer's queue, as an async iterator; ``aclose()`` unsubscribes.

    Cancelling a pending ``__anext__`` (a timeout) loses nothing: ``Queue.get``
    only removes an event when it returns it.
    """

    def __init__(self, bus: EventBus, accept: EventFilter | None = None) -> None:
        self._bus = bus
        self._accept = accept
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._done = False

    def offer(self, event: Event) -> None:
        if self._accept is None or self._accept(event):
            self._queue.put_nowait(event)

    def end(self) -> None:
        self._queue.put_nowait(_END)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        if self._done:
            raise StopAsyncIteration
        event = await self._queue.get()
        if event is _END:
            await self.aclose()
            raise StopAsyncIteration
        return event

    async def aclose(self) -> None:
        self._done = True
        self._bus._forget(self)
