"""The one event bus (issue 14): latest state per key, fan-out, and subscriptions that survive timeouts."""

from __future__ import annotations

import asyncio

import pytest

from backend_kernel_provisioner.common.events import EventBus


async def test_timed_out_anext_keeps_the_subscription() -> None:
    """``wait_for(anext(sub), t)`` timing out must not end the subscription (an async generator would)."""
    bus = EventBus()
    events = bus.subscribe()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(anext(events), 0.05)
    bus.publish({"event": "service-status", "name": "httpd", "status": "running"})
    event = await asyncio.wait_for(anext(events), 1)
    assert event["name"] == "httpd" and event["status"] == "running"
    for _ in range(3):  # again and again
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(anext(events), 0.01)
    bus.publish({"event": "model-service-status", "model_name": "m", "is_healthy": True})
    assert (await asyncio.wait_for(anext(events), 1))["model_name"] == "m"


async def test_late_subscriber_gets_the_latest_state_per_key_then_changes() -> None:
    bus = EventBus()
    bus.publish({"event": "service-status", "name": "a", "status": "starting"})
    bus.publish({"event": "service-status", "name": "a", "status": "running"})
    bus.publish({"event": "model-service-status", "model_name": "m", "is_healthy": False})
    bus.publish({"event": "kernel-restarted", "key": "kernel"})
    events = bus.subscribe()
    first = [await anext(events) for _ in range(3)]
    assert [(e.get("name"), e.get("status")) for e in first if "name" in e] == [("a", "running")]
    assert {e["event"] for e in first} == {"service-status", "model-service-status", "kernel-restarted"}
    bus.publish({"event": "service-status", "name": "a", "status": "stopped"})
    assert (await asyncio.wait_for(anext(events), 1))["status"] == "stopped"


async def test_fan_out_filter_and_close() -> None:
    bus = EventBus()
    everything, models = bus.subscribe(), bus.subscribe(lambda e: e.get("event") == "model-service-status")
    bus.publish({"event": "service-status", "name": "a", "status": "running"})
    bus.publish({"event": "model-service-status", "model_name": "m", "is_healthy": True})
    bus.close()
    assert [e["event"] async for e in everything] == ["service-status", "model-service-status"]
    assert [e["model_name"] async for e in models] == ["m"]
    late = bus.subscribe()  # after close: the current state, then the end
    assert len([e async for e in late]) == 2


async def test_aclose_unsubscribes() -> None:
    bus = EventBus()
    events = bus.subscribe()
    await events.aclose()
    bus.publish({"event": "service-status", "name": "a", "status": "running"})
    with pytest.raises(StopAsyncIteration):
        await anext(events)
