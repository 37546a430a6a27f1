"""Model servers started from the example definitions, probed over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import pytest
import yaml

from backend_kernel_provisioner.sidecar.models.definitions import ModelDefinitionError
from backend_kernel_provisioner.sidecar.models.runner import ModelServiceRunner, ServiceManagerLauncher
from backend_kernel_provisioner.sidecar.services import ManagerContext, ServiceManager

from .test_health import wait_for

DATA = Path(__file__).parent / "data" / "models"

ERROR_SERVER = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(500); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def variant(name: str, tmp_path: Path, **health) -> tuple[Path, int]:
    """The example definition moved to a free port (and ``model_path`` to ``tmp_path``)."""
    document = yaml.safe_load((DATA / name).read_text())
    port = free_port()
    service = document["models"][0]["service"]
    service["start_command"] = [sys.executable if a == "python3" else a for a in service["start_command"]]
    service["start_command"][-1] = str(port)
    service["port"] = port
    if health:
        service["health_check"].update(health)
    document["models"][0]["model_path"] = str(tmp_path)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document))
    return path, port


class Collector:
    """Subscribes to the runner's events in the background."""

    def __init__(self, runner: ModelServiceRunner) -> None:
        self.events: list[dict] = []
        self.task = asyncio.create_task(self._collect(runner))

    async def _collect(self, runner: ModelServiceRunner) -> None:
        async for event in runner.subscribe():
            self.events.append(event)

    def states(self, model: str) -> list[bool]:
        return [e["is_healthy"] for e in self.events if e["model_name"] == model]

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


def make_runner(home: Path, **options) -> ModelServiceRunner:
    manager = ServiceManager(ManagerContext(env=dict(os.environ), home=str(home), stop_grace=2))
    return ModelServiceRunner(ServiceManagerLauncher(manager), manager.bus, probe_host="127.0.0.1", **options)


def server_process(runner: ModelServiceRunner, model: str):
    """The model server's process, as the service manager runs it."""
    return runner.launcher.manager.services[runner.models[model].info.service_name].proc


@pytest.fixture
async def runner(tmp_path):
    model_runner = make_runner(tmp_path)
    yield model_runner
    await model_runner.stop_all()
    await model_runner.launcher.manager.close()


async def test_example_model_healthy_unhealthy_after_retries_then_healthy(runner, tmp_path):
    path, port = variant("model-definition.yaml", tmp_path, interval=0.2)
    collector = Collector(runner)
    try:
        assert await runner.start_definition(str(path)) == {"echo-model": {"status": "started"}}
        await wait_for(lambda: runner.health() == {"echo-model": True})
        running = runner.models["echo-model"]
        assert running.info.service_name == f"echo-model-{port}"
        await wait_for(lambda: collector.states("echo-model") == [True])

        proc = server_process(runner, "echo-model")
        os.killpg(proc.pid, signal.SIGKILL)
        failures_seen: list[int] = []

        def unhealthy() -> bool:
            failures_seen.append(running.checker.counters.consecutive_failures)
            return runner.health()["echo-model"] is False

        await wait_for(unhealthy)
        max_retries = running.info.service.health_check.max_retries
        # Not before max_retries + 1 failed probes, and reported at exactly that one.
        assert max(failures_seen[:-1]) <= max_retries
        assert failures_seen[-1] == max_retries + 1
        await wait_for(lambda: collector.states("echo-model") == [True, False])

        await runner.launcher.start(running.info, runner._variables_for(running.info))  # it comes back
        await wait_for(lambda: collector.states("echo-model") == [True, False, True])
        probes = running.checker.counters.probes
        await wait_for(lambda: running.checker.counters.probes >= probes + 3)
        assert collector.states("echo-model") == [True, False, True]  # one event per transition
        assert all(e["event"] == "model-service-status" and isinstance(e["time"], float) for e in collector.events)
    finally:
        await collector.close()


async def test_server_answering_500_is_unhealthy(runner, tmp_path):
    port = free_port()
    script = tmp_path / "error_server.py"
    script.write_text(ERROR_SERVER)
    info = {
        "name": "erring",
        "model_path": str(tmp_path),
        "service": {
            "start_command": [sys.executable, str(script), str(port)],
            "port": port,
            "health_check": {"path": "/", "max_retries": 2, "max_wait_time": 2, "initial_delay": 0, "interval": 0.1},
        },
    }
    assert await runner.start_model(info) == {"status": "started"}
    await wait_for(lambda: runner.health() == {"erring": False})
    counters = runner.models["erring"].checker.counters
    assert counters.consecutive_failures >= 3 and "status 500" in counters.last_error


async def test_no_health_check_reports_healthy_at_once(runner, tmp_path):
    path, _ = variant("no-health-check.yaml", tmp_path)
    assert await runner.start_definition(str(path)) == {"plain-model": {"status": "started"}}
    assert runner.health() == {"plain-model": True}
    events = runner.subscribe()
    first = await asyncio.wait_for(events.__anext__(), 10)
    await events.aclose()
    assert (first["model_name"], first["is_healthy"]) == ("plain-model", True)


async def test_bad_definition_is_refused_naming_port(runner):
    with pytest.raises(ModelDefinitionError, match="'service.port' is missing"):
        await runner.start_definition(str(DATA / "bad-missing-port.yaml"))
    bad = yaml.safe_load((DATA / "bad-missing-port.yaml").read_text())["models"][0]
    result = await runner.start_model(bad)
    assert result["status"] == "failed" and "port" in result["error"] and "broken" in result["error"]
    assert runner.health() == {}


@pytest.mark.parametrize(
    ("command", "model_path", "reason"),
    [
        (["/nonexistent/model-server"], None, "executable not found: /nonexistent/model-server"),
        ([sys.executable, "-c", "raise SystemExit(3)"], None, "exited with code 3"),
        (["true"], "/nonexistent/models", "model_path '/nonexistent/models' is not a folder"),
    ],
)
async def test_failed_start_gives_a_reason(runner, tmp_path, command, model_path, reason):
    info = {"name": "x", "model_path": model_path or str(tmp_path), "service": {"start_command": command, "port": 1}}
    result = await runner.start_model(info)
    assert result["status"] == "failed" and reason in result["error"]
    assert runner.health() == {}


async def test_restart_policy_restarts_an_unhealthy_server(tmp_path):
    runner = make_runner(tmp_path, restart_after_unhealthy=0.5)
    path, _ = variant("model-definition.yaml", tmp_path, interval=0.1, max_retries=1)
    collector = Collector(runner)
    try:
        await runner.start_definition(str(path))
        await wait_for(lambda: collector.states("echo-model") == [True])
        running = runner.models["echo-model"]
        first = server_process(runner, "echo-model")
        os.killpg(first.pid, signal.SIGKILL)
        await wait_for(lambda: collector.states("echo-model") == [True, False, True], timeout=30)
        assert running.restarts == 1
        assert server_process(runner, "echo-model").pid != first.pid
    finally:
        await collector.close()
        await runner.stop_all()
        await runner.launcher.manager.close()


async def test_stop_all_stops_servers_and_checkers(runner, tmp_path):
    path, port = variant("model-definition.yaml", tmp_path, interval=0.1)
    await runner.start_definition(str(path))
    await wait_for(lambda: runner.health() == {"echo-model": True})
    running = runner.models["echo-model"]
    proc = server_process(runner, "echo-model")
    await runner.stop_all()
    assert proc.returncode is not None
    assert not running.checker.running
    assert runner.health() == {}
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


async def test_prestart_actions_run_in_model_path_with_variables(runner, tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    port = free_port()
    info = {
        "name": "prepared",
        "model_path": str(model_dir),
        "service": {
            "pre_start_actions": [
                {"action": "log", "args": {"message": "starting on {ports[0]}"}},
                {"action": "write_file", "args": {"filename": "{model_path}/port.txt", "body": ["{ports[0]}"]}},
            ],
            "start_command": [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
            "port": port,
        },
    }
    assert await runner.start_model(info) == {"status": "started"}
    assert (model_dir / "port.txt").read_text() == f"{port}\n"
    # Registered under the runner's name, running in model_path.
    status = runner.launcher.manager.status(f"prepared-{port}")
    assert status["status"] == "running"
    assert os.readlink(f"/proc/{status['pid']}/cwd") == str(model_dir)


async def test_unknown_prestart_action_fails_naming_it(runner, tmp_path):
    info = {
        "name": "odd",
        "model_path": str(tmp_path),
        "service": {"pre_start_actions": [{"action": "teleport", "args": {}}], "start_command": ["true"], "port": 1},
    }
    result = await runner.start_model(info)
    assert result["status"] == "failed"
    assert "'odd'" in result["error"] and "teleport" in result["error"]


# -- through a real kernel ------------------------------------------------------------------------


@pytest.mark.kernel
async def test_kernel_with_model_definition_starts_and_checks_across_restart(tmp_path):
    from .helpers import pid_alive, running_kernel

    path, port = variant("model-definition.yaml", tmp_path, interval=0.2)
    async with running_kernel("backend-python", model_definition=str(path)) as (km, kc):
        provisioner = km.provisioner
        await wait_for(lambda: provisioner.model_health() == {"echo-model": True}, timeout=60)
        events = provisioner.subscribe_model_events()
        first = await asyncio.wait_for(events.__anext__(), 10)  # a late subscriber gets the state
        await events.aclose()
        assert {k: first[k] for k in ("event", "model_name", "is_healthy")} == {
            "event": "model-service-status", "model_name": "echo-model", "is_healthy": True,
        }
        server = provisioner.services.status(f"echo-model-{port}")
        assert server["status"] == "running"
        checker = provisioner.models.models["echo-model"].checker

        await km.restart_kernel(now=True)
        assert km.provisioner is provisioner
        await kc.wait_for_ready(timeout=60)
        probes = checker.counters.probes
        await wait_for(lambda: checker.counters.probes >= probes + 2)  # still probing after the restart
        assert provisioner.model_health() == {"echo-model": True}
        assert provisioner.services.status(f"echo-model-{port}")["pid"] == server["pid"]
        assert len(provisioner.models.models) == 1  # not started a second time

        result = await provisioner.start_model_service(
            yaml.safe_load(variant("no-health-check.yaml", tmp_path)[0].read_text())["models"][0]
        )
        assert result == {"status": "started"}
        assert provisioner.model_health() == {"echo-model": True, "plain-model": True}
    assert not checker.running
    assert not pid_alive(server["pid"])
    assert provisioner.model_health() == {}


@pytest.mark.kernel  # start_kernel with the installed backend-python spec; it must refuse before launching
async def test_kernel_refuses_a_bad_model_definition():
    from jupyter_client.manager import AsyncKernelManager

    km = AsyncKernelManager(kernel_name="backend-python")
    with pytest.raises(ModelDefinitionError, match="model 'broken': field 'service.port' is missing"):
        await km.start_kernel(model_definition=str(DATA / "bad-missing-port.yaml"))
    assert not km.has_kernel
