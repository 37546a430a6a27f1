"""The health checker against real HTTP servers on loopback (no mocked client)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from backend_kernel_provisioner.sidecar.models.definitions import HealthCheck
from backend_kernel_provisioner.sidecar.models.health import HealthChecker, HealthEvent, HealthState

from .probe_server import ProbeServer


async def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll until ``predicate`` holds; a generous bound, never a timing assertion."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


class Recorder:
    """Collects transitions with a snapshot of the probe counters at that moment."""

    def __init__(self, server: ProbeServer | None = None) -> None:
        self.events: list[HealthEvent] = []
        self.snapshots: list[dict] = []
        self.server = server
        self.checker: HealthChecker | None = None

    def __call__(self, event: HealthEvent) -> None:
        self.events.append(event)
        counters = self.checker.counters if self.checker else None
        self.snapshots.append(
            {
                "consecutive_failures": counters.consecutive_failures if counters else None,
                "server_500": self.server.requests[500] if self.server else None,
                "probes": counters.probes if counters else None,
            }
        )

    @property
    def states(self) -> list[bool]:
        return [e.is_healthy for e in self.events]


@pytest.fixture
async def server():
    srv = await ProbeServer().start()
    yield srv
    await srv.stop()


def make_checker(port: int, recorder: Recorder, **check) -> HealthChecker:
    settings = {"path": "/health", "max_retries": 3, "max_wait_time": 2, "initial_delay": 0, "interval": 0.05}
    settings.update(check)
    checker = HealthChecker("m", port, HealthCheck(**settings), recorder, host="127.0.0.1")
    recorder.checker = checker
    return checker


async def test_healthy_then_unhealthy_after_max_retries_plus_one_then_healthy(server):
    recorder = Recorder(server)
    checker = make_checker(server.port, recorder, max_retries=3)
    checker.start()
    try:
        await wait_for(lambda: recorder.states == [True])
        assert checker.state is HealthState.HEALTHY and checker.is_healthy is True
        assert server.paths[0] == "/health"

        server.status = 500
        await wait_for(lambda: len(recorder.events) == 2)
        assert recorder.states == [True, False]
        # Reported exactly at the (max_retries + 1)-th failed probe, not before.
        assert recorder.snapshots[1]["server_500"] == 4
        assert recorder.snapshots[1]["consecutive_failures"] == 4

        probes = checker.counters.probes
        await wait_for(lambda: checker.counters.probes >= probes + 3)
        assert recorder.states == [True, False]  # still failing, no repeated report

        server.status = 200
        await wait_for(lambda: len(recorder.events) == 3)
        assert checker.counters.consecutive_failures == 0
        probes = checker.counters.probes
        await wait_for(lambda: checker.counters.probes >= probes + 3)
        assert recorder.states == [True, False, True]  # exactly one event per transition
    finally:
        await checker.stop()


async def test_server_going_away_and_coming_back(server):
    recorder = Recorder(server)
    checker = make_checker(server.port, recorder, max_retries=2)
    checker.start()
    try:
        await wait_for(lambda: recorder.states == [True])
        await server.stop()
        await wait_for(lambda: len(recorder.events) == 2)
        assert recorder.states == [True, False]
        assert recorder.snapshots[1]["consecutive_failures"] == 3
        assert "connect" in checker.counters.last_error.lower() or "refused" in checker.counters.last_error.lower()
        await server.start()
        await wait_for(lambda: len(recorder.events) == 3)
        assert recorder.states == [True, False, True]
    finally:
        await checker.stop()


async def test_hanging_probe_is_cut_at_max_wait_time(server):
    server.status = None  # accept, read the request, never answer
    recorder = Recorder(server)
    checker = make_checker(server.port, recorder, max_retries=1, max_wait_time=0.3, interval=0.05)
    checker.start()
    try:
        await wait_for(lambda: recorder.states == [False])
        # Each hanging request was given up on, so the checker went on probing.
        assert server.requests[None] >= 2
        assert checker.counters.failed_probes == checker.counters.probes >= 2
        assert "timeout" in checker.counters.last_error.lower()
        server.status = 200
        await wait_for(lambda: recorder.states == [False, True])
    finally:
        await checker.stop()


@pytest.mark.parametrize("status", [500, 204, 404])
async def test_status_other_than_expected_fails(server, status):
    server.status = status
    recorder = Recorder(server)
    checker = make_checker(server.port, recorder, max_retries=0, expected_status_code=200)
    checker.start()
    try:
        await wait_for(lambda: recorder.states == [False])
        assert f"status {status}" in checker.counters.last_error
        assert server.requests[status] == 1
    finally:
        await checker.stop()


async def test_expected_status_code_is_compared_exactly(server):
    server.status = 204
    recorder = Recorder(server)
    checker = make_checker(server.port, recorder, expected_status_code=204)
    checker.start()
    try:
        await wait_for(lambda: recorder.states == [True])
    finally:
        await checker.stop()


@pytest.mark.parametrize("check", [None, HealthCheck(enable=False)])
async def test_no_health_check_is_healthy_at_once(check):
    recorder = Recorder()
    checker = HealthChecker("plain", 1, check, recorder)
    checker.start()
    assert recorder.states == [True]
    assert checker.is_healthy is True
    assert not checker.running and checker.counters.probes == 0
    checker.start()  # starting again reports nothing new
    assert recorder.states == [True]
    await checker.stop()


async def test_initial_delay_failures_do_not_count(server):
    server.status = 500
    recorder = Recorder(server)
    checker = make_checker(server.port, recorder, max_retries=0, initial_delay=0.6, interval=0.05)
    checker.start()
    try:
        await wait_for(lambda: len(recorder.events) == 1)
        assert recorder.states == [False]
        # Probing started at once; the failures inside the grace period were not counted.
        assert checker.counters.grace_failures >= 1
        assert recorder.snapshots[0]["consecutive_failures"] == 1
        assert recorder.snapshots[0]["server_500"] == checker.counters.grace_failures + 1
    finally:
        await checker.stop()


async def test_first_success_ends_the_grace_period(server):
    recorder = Recorder(server)
    checker = make_checker(server.port, recorder, max_retries=1, initial_delay=3600)
    checker.start()
    try:
        await wait_for(lambda: recorder.states == [True])
        server.status = 500
        # Far inside the hour of grace, yet the failures count: the success ended it.
        await wait_for(lambda: recorder.states == [True, False])
        assert recorder.snapshots[1]["server_500"] == 2
        assert checker.counters.grace_failures == 0
    finally:
        await checker.stop()


async def test_scattered_failures_do_not_add_up(server):
    recorder = Recorder(server)
    checker = make_checker(server.port, recorder, max_retries=1, interval=0.2)
    checker.start()
    try:
        await wait_for(lambda: recorder.states == [True])
        for _ in range(3):  # one failure at a time, each followed by a success
            seen = server.total
            server.status = 500
            await wait_for(lambda: server.requests[500] > 0 and checker.counters.consecutive_failures == 1)
            server.status = 200
            await wait_for(lambda seen=seen: server.total > seen + 2 and checker.counters.consecutive_failures == 0)
            server.requests[500] = 0
        assert recorder.states == [True]
    finally:
        await checker.stop()


async def test_stop_ends_probing(server):
    recorder = Recorder(server)
    checker = make_checker(server.port, recorder)
    checker.start()
    await wait_for(lambda: recorder.states == [True])
    await checker.stop()
    assert not checker.running
    seen = server.total
    await asyncio.sleep(0.3)  # several intervals: nothing more arrives
    assert server.total == seen
