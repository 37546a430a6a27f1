"""Model servers and bad input (issue 15): commands used as written, names that cannot become paths."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from backend_kernel_provisioner.sidecar.models.definitions import ModelDefinitionError, parse_model_info
from backend_kernel_provisioner.sidecar.models.runner import ModelServiceRunner, ServiceManagerLauncher
from backend_kernel_provisioner.sidecar.services import ManagerContext, ServiceManager
from backend_kernel_provisioner.sidecar.services.definitions import NAME_PATTERN

from .test_model_service import free_port


@pytest.fixture
async def runner(tmp_path):
    (tmp_path / "outer" / "private").mkdir(parents=True)
    manager = ServiceManager(ManagerContext(env=dict(os.environ), home=str(tmp_path), stop_grace=2),
                             work_dir=str(tmp_path / "outer" / "private"))
    model_runner = ModelServiceRunner(ServiceManagerLauncher(manager), manager.bus, probe_host="127.0.0.1")
    yield model_runner, manager
    await model_runner.stop_all()
    await manager.close()


async def log_of(manager: ServiceManager, service: str, needle: str) -> str:
    text = ""
    for _ in range(200):  # the server's first line reaches its log shortly after the start
        text = manager.read_log(service)
        if needle in text:
            break
        await asyncio.sleep(0.05)
    return text


@pytest.mark.parametrize("form", ["argv", "shell"])
async def test_start_command_is_used_as_written(runner, tmp_path, form):
    runner, manager = runner
    """docs/models.md: start_command is not template-expanded, so literal braces reach the program."""
    port = free_port()
    code = 'import time; print({"a": 1}, "{ports[0]}", flush=True); time.sleep(30)'
    command = ([sys.executable, "-c", code] if form == "argv"
               else f"echo '{{x}} {{ports[0]}}'; exec {sys.executable} -c 'import time; time.sleep(30)'")
    info = {"name": f"braces-{form}", "model_path": str(tmp_path), "service": {"start_command": command, "port": port}}
    result = await runner.start_model(info)
    assert result == {"status": "started"}, result
    expected = "{'a': 1} {ports[0]}" if form == "argv" else "{x} {ports[0]}"
    assert expected in await log_of(manager, f"braces-{form}-{port}", expected)


@pytest.mark.parametrize("bad", ["../../escaped", "a/b", "/abs", ".hidden", "sp ace"])
def test_unsafe_model_name_is_refused_naming_the_field(bad):
    with pytest.raises(ModelDefinitionError) as info:
        parse_model_info({"name": bad, "service": {"start_command": ["true"], "port": 8000}}, "models.yaml")
    message = str(info.value)
    assert "models.yaml" in message and "'name'" in message and NAME_PATTERN in message


async def test_unsafe_model_name_starts_nothing_and_creates_nothing(runner, tmp_path):
    runner, manager = runner
    before = set(tmp_path.rglob("*"))
    info = {"name": "../../escaped", "model_path": str(tmp_path),
            "service": {"start_command": [sys.executable, "-c", "import time; time.sleep(30)"], "port": free_port()}}
    result = await runner.start_model(info)
    assert result["status"] == "failed" and NAME_PATTERN in result["error"]
    assert set(tmp_path.rglob("*")) == before and manager.services == {}
