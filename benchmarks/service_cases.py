"""Service readiness and health transitions, against their floors measured in the same run."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from measure import Samples
from report import Row

from backend_kernel_provisioner.sidecar.models.runner import ModelServiceRunner, ServiceManagerLauncher
from backend_kernel_provisioner.sidecar.services import ManagerContext, ServiceManager

HTTPD_DEF = (
    json.dumps({"command": [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "{ports[0]}"]})
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PortProber(threading.Thread):
    """Connects as fast as it can from ``start`` on; remembers when the port first accepted."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.start_time = time.perf_counter()
        self.first_accept: float | None = None
        self.stop_flag = False

    def run(self) -> None:
        while not self.stop_flag and self.first_accept is None:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.05):
                    self.first_accept = time.perf_counter()
            except OSError:
                time.sleep(0.0005)


async def service_readiness(s) -> list[Row]:
    ours, floor = Samples(), Samples()
    with tempfile.TemporaryDirectory() as home:
        defs = Path(home) / "defs"
        defs.mkdir()
        (defs / "httpd.json").write_text(HTTPD_DEF)
        manager = ServiceManager(ManagerContext(home=home, runtime_path=sys.executable, defs_dir=str(defs)))
        try:
            for _ in range(s.repeats):
                port = free_port()
                prober = PortProber(port)
                prober.start()
                start = time.perf_counter()
                result = await manager.start_service({"name": "httpd", "port": port, "ports": [port]})
                ours.values.append(time.perf_counter() - start)
                if result["status"] != "started":
                    raise RuntimeError(f"httpd did not start: {result}")
                await asyncio.to_thread(prober.join, 10)
                floor.values.append(prober.first_accept - start)
                await manager.shutdown_service("httpd")
        finally:
            await manager.close()
    return [Row("service readiness (start() → started)", "ServiceManager.start_service",
                "port first accepts (independent prober)", ours, floor,
                "readiness polls the port with a backoff from 5 ms; a service that reports readiness "
                "itself (sd_notify-style) would remove the last poll interval")]


async def health_transition(s) -> list[Row]:
    interval, max_retries = 0.2, 2
    ours = Samples()
    with tempfile.TemporaryDirectory() as home:
        manager = ServiceManager(ManagerContext(env=dict(os.environ), home=home, stop_grace=2))
        runner = ModelServiceRunner(ServiceManagerLauncher(manager), manager.bus, probe_host="127.0.0.1")
        try:
            for index in range(s.repeats):
                port = free_port()
                name = f"bench-{index}"
                model = {
                    "name": name, "model_path": home,
                    "service": {"start_command": [sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                                                  str(port)],
                                "port": port,
                                "health_check": {"path": "/", "max_retries": max_retries, "max_wait_time": 1,
                                                 "initial_delay": 0, "interval": interval}},
                }
                events = runner.subscribe()
                result = await runner.start_model(model)
                if result["status"] != "started":
                    raise RuntimeError(f"model did not start: {result}")
                await _next(events, name, True)
                proc = manager.services[f"{name}-{port}"].proc
                killed = time.perf_counter()
                os.killpg(proc.pid, signal.SIGKILL)
                await _next(events, name, False)
                ours.values.append(time.perf_counter() - killed)
                await events.aclose()
        finally:
            await runner.stop_all()
            await manager.close()
    floor = Samples([(max_retries + 1) * interval] * len(ours.values))
    return [Row("health transition (server killed → unhealthy event)", "HealthChecker",
                f"(max_retries+1) × interval = {(max_retries + 1) * interval:.1f} s (configured floor)", ours, floor,
                "the first failed probe can come up to one interval after the kill; probing right after a "
                "connection error (not waiting the interval) would reach the floor")]


async def _next(events, name: str, healthy: bool, timeout: float = 60) -> dict:
    async def find() -> dict:
        async for event in events:
            if event.get("model_name") == name and event.get("is_healthy") is healthy:
                return event
        raise RuntimeError("event stream ended")

    return await asyncio.wait_for(find(), timeout)
