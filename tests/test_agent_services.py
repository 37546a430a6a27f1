"""The agent client over real kernels: C runs, services, model health, events (issue 8)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import urllib.request
from pathlib import Path

import pytest

from backend_kernel_provisioner.agent import AgentKernel
from tests.helpers import require_programs
from tests.test_model_service import free_port

pytestmark = pytest.mark.kernel  # every test starts a kernel through AgentKernel.start

DATA = Path(__file__).parent / "data"

C_INPUT = (
    '#include <stdio.h>\nint main(void) {\n    char word[32];\n    printf("word? ");\n    fflush(stdout);\n'
    '    if (scanf("%31s", word) != 1) {\n        return 9;\n    }\n    printf("got %s\\n", word);\n    return 0;\n}\n'
)


async def next_event(events, predicate, timeout: float = 60) -> dict:
    async def find() -> dict:
        async for event in events:
            if predicate(event):
                return event
        raise AssertionError("event stream ended")

    return await asyncio.wait_for(find(), timeout)


async def test_c_query_input_and_exit_code(tmp_path: Path) -> None:
    require_programs("gcc")
    async with await AgentKernel.start("c", cwd=str(tmp_path)) as kernel:
        ok = await kernel.execute("r1", "query", '#include <stdio.h>\nint main(void) { puts("hi"); return 0; }')
        assert ok["status"] == "finished" and ok["exitCode"] == 0
        assert ok["console"] == [["stdout", "hi\n"]]

        waiting = await kernel.execute("r2", "query", C_INPUT)
        assert waiting["status"] == "waiting-input"
        assert waiting["console"] == [["stdout", "word? "]]
        done = await kernel.execute("r2", "input", "lemon")
        assert done["status"] == "finished" and done["exitCode"] == 0
        assert done["console"][0] == ["stdout", "got lemon\n"]

        failed = await kernel.execute("r3", "query", "#include <stdlib.h>\nint main(void) { exit(5); }")
        assert failed["status"] == "finished" and failed["exitCode"] == 5


async def test_second_run_waits_for_the_first() -> None:
    async with await AgentKernel.start("python") as kernel:
        first = await kernel.execute("a", "query", "import time; time.sleep(1.5); print('a done')", flush_timeout=0.2)
        assert first["status"] == "continued"
        second = asyncio.create_task(kernel.execute("b", "query", "print('b done')", flush_timeout=10))
        await asyncio.sleep(0.3)
        assert not second.done()
        rest = await kernel.execute("a", "continue", "", flush_timeout=10)
        assert rest["status"] == "finished" and rest["console"] == [["stdout", "a done\n"]]
        result = await second
        assert result["runId"] == "b" and result["console"] == [["stdout", "b done\n"]]


def echo_model(port: int, model_path: Path) -> dict:
    """A model definition entry: an HTTP server on ``port`` whose health check probes ``/``."""
    return {
        "name": "echo-model",
        "model_path": str(model_path),
        "service": {
            "pre_start_actions": [],
            "start_command": [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
            "port": port,
            "health_check": {"path": "/", "max_retries": 1, "max_wait_time": 2, "initial_delay": 0, "interval": 0.3},
        },
    }


async def test_services_and_model_health_with_events(tmp_path: Path) -> None:
    port = free_port()
    model = echo_model(port, tmp_path)
    async with await AgentKernel.start(
        "python", cwd=str(tmp_path), service_defs_dir=str(DATA / "service-defs")
    ) as kernel:
        apps = await kernel.get_service_apps()
        assert apps["status"] == "done"
        assert {"httpd", "jupyter", "vnc-preopen"} <= {app["name"] for app in apps["data"]}

        events = kernel.events()
        started = await kernel.start_service({"name": "httpd", "port": None, "ports": [], "protocol": "http",
                                              "options": {}})
        assert started["status"] == "started", started
        service_port = started["ports"][0]
        page = await asyncio.to_thread(lambda: urllib.request.urlopen(f"http://127.0.0.1:{service_port}/").read())
        assert f"served on {service_port}".encode() in page
        await next_event(events, lambda e: e.get("name") == "httpd" and e.get("status") == "running")

        refused = await kernel.start_service({"name": "httpd2", "protocol": "http", "options": {}})
        assert refused["status"] == "failed"

        result = await kernel.start_model_service(model)
        assert result["status"] == "started", result
        healthy = await next_event(events, lambda e: e.get("event") == "model-service-status")
        assert healthy["model_name"] == "echo-model" and healthy["is_healthy"] is True

        late = kernel.events()  # a late subscriber first gets the current state
        current = await next_event(late, lambda e: e.get("event") == "model-service-status")
        assert current["is_healthy"] is True

        pid = kernel.provisioner.services.status(f"echo-model-{port}")["pid"]
        await kernel.restart()
        await next_event(events, lambda e: e.get("event") == "kernel-restarted")
        assert kernel.provisioner.services.status(f"echo-model-{port}")["pid"] == pid
        again = await kernel.execute("r1", "query", "print('after restart')")
        assert again["console"] == [["stdout", "after restart\n"]]

        os.kill(pid, signal.SIGKILL)
        unhealthy = await next_event(events, lambda e: e.get("event") == "model-service-status" and not e["is_healthy"])
        assert unhealthy["model_name"] == "echo-model"

        await kernel.shutdown_service("httpd")
        await next_event(events, lambda e: e.get("name") == "httpd" and e.get("status") == "stopped")
