"""The health checker: one asyncio task per model server, probing it over HTTP.

Runner semantics, minus its bugs: UNDETERMINED until the first success (then HEALTHY);
UNHEALTHY once more than ``max_retries`` consecutive counted probes failed; only transitions
are reported.  ``initial_delay`` is a grace period in which failures do not count (ended by
the first success); one probe starts every ``interval`` seconds; each probe is cut at
``max_wait_time`` by the async HTTP client - no thread is left behind per probe.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from backend_kernel_provisioner.sidecar.models.definitions import HealthCheck

log = logging.getLogger(__name__)


class HealthState(enum.Enum):
    UNDETERMINED = "undetermined"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True)
class HealthEvent:
    """A transition, as the runner's ``model-service-status`` message."""

    model_name: str
    is_healthy: bool
    time: float

    def as_message(self) -> dict:
        return {
            "event": "model-service-status",
            "model_name": self.model_name,
            "is_healthy": self.is_healthy,
            "time": self.time,
        }


@dataclass
class ProbeCounters:
    """What the checker has seen; tests and logs read it."""

    probes: int = 0
    failed_probes: int = 0
    consecutive_failures: int = 0  # counted failures (outside the grace period) since the last success
    grace_failures: int = 0
    last_error: str = ""


TransitionCallback = Callable[[HealthEvent], None]


class HealthChecker:
    """Probes ``GET http://<host>:<port><path>`` and reports state transitions."""

    def __init__(
        self,
        model_name: str,
        port: int,
        check: HealthCheck | None,
        on_transition: TransitionCallback,
        *,
        host: str = "localhost",
    ) -> None:
        self.model_name = model_name
        self.port = port
        self.check = check
        self.host = host
        self.state = HealthState.UNDETERMINED
        self.counters = ProbeCounters()
        self._on_transition = on_transition
        self._task: asyncio.Task | None = None
        self._grace_until = 0.0

    @property
    def url(self) -> str:
        path = self.check.path if self.check else "/"
        return f"http://{self.host}:{self.port}{path}"

    @property
    def is_healthy(self) -> bool | None:
        """True/False once determined, None while UNDETERMINED."""
        if self.state is HealthState.UNDETERMINED:
            return None
        return self.state is HealthState.HEALTHY

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Begin checking (idempotent); without an enabled check the model is healthy at once."""
        if self.running:
            return
        if self.check is None or not self.check.enable:
            if self.state is not HealthState.HEALTHY:
                self._transition(HealthState.HEALTHY)
            return
        self.restart_grace()
        self._task = asyncio.create_task(self._run(), name=f"health-check:{self.model_name}")

    def restart_grace(self) -> None:
        """Open a new grace period (used after the model server was restarted)."""
        delay = self.check.initial_delay if self.check else 0.0
        self._grace_until = asyncio.get_running_loop().time() + delay

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass

    # -- the loop ------------------------------------------------------------------------------

    async def _run(self) -> None:
        assert self.check is not None
        loop = asyncio.get_running_loop()
        client = AsyncHTTPClient(force_instance=True)
        try:
            while True:
                started = loop.time()
                ok, detail = await self._probe(client)
                self._record(ok, detail, loop.time())
                await asyncio.sleep(max(0.0, started + self.check.interval - loop.time()))
        finally:
            client.close()

    async def _probe(self, client: AsyncHTTPClient) -> tuple[bool, str]:
        assert self.check is not None
        timeout = self.check.max_wait_time
        try:
            response = await client.fetch(
                self.url, connect_timeout=timeout, request_timeout=timeout, raise_error=False
            )
        except HTTPClientError as exc:  # 599: timed out or connection closed
            return False, str(exc)
        except OSError as exc:
            return False, f"connection failed: {exc.strerror or exc}"
        except Exception as exc:  # a malformed answer is a failed probe, never a dead checker
            return False, f"{type(exc).__name__}: {exc}"
        if response.code != self.check.expected_status_code:
            return False, f"status {response.code}, expected {self.check.expected_status_code}"
        return True, ""

    def _record(self, ok: bool, detail: str, now: float) -> None:
        assert self.check is not None
        counters = self.counters
        counters.probes += 1
        if ok:
            self._grace_until = 0.0  # the first success ends the grace period
            counters.consecutive_failures = 0
            if self.state is not HealthState.HEALTHY:
                self._transition(HealthState.HEALTHY)
            return
        counters.failed_probes += 1
        counters.last_error = detail
        if now < self._grace_until:
            counters.grace_failures += 1
            return
        counters.consecutive_failures += 1
        if counters.consecutive_failures > self.check.max_retries and self.state is not HealthState.UNHEALTHY:
            self._transition(HealthState.UNHEALTHY)

    def _transition(self, state: HealthState) -> None:
        self.state = state
        event = HealthEvent(self.model_name, state is HealthState.HEALTHY, time.time())
        log.info("model %s is now %s", self.model_name, state.value)
        try:
            self._on_transition(event)
        except Exception:  # a subscriber's bug must not stop the probing
            log.exception("model %s: health transition callback failed", self.model_name)
