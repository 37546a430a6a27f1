"""One final environment (issue 14, acceptance 5): the kernel, its bootstrap script and its services see
the same variables, later wins: the server's < the kernelspec's ``env`` < the environ file < ``extra_env``
and call-time ``env``."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager

from backend_kernel_provisioner.install.kernelspecs import spec_source_dir

from .helpers import require_programs, run_cell

pytestmark = pytest.mark.kernel

NAMES = ("P_SERVER", "P_SPEC", "P_FILE", "P_EXTRA", "P_CALL")
#: Where each variable is set, lowest precedence first; the value seen must be the last setter's.
EXPECTED = {"P_SERVER": "server", "P_SPEC": "spec", "P_FILE": "file", "P_EXTRA": "extra", "P_CALL": "call"}


def _spec_with_env(tmp_path: Path) -> KernelSpecManager:
    """backend-shell, with a kernelspec ``env`` that sets everything but P_SERVER."""
    folder = tmp_path / "kernels" / "backend-shell-envtest"
    shutil.copytree(spec_source_dir() / "backend-shell", folder)
    spec = json.loads((folder / "kernel.json").read_text())
    spec["env"] = {name: "spec" for name in NAMES[1:]}
    (folder / "kernel.json").write_text(json.dumps(spec))
    manager = KernelSpecManager()
    manager.kernel_dirs = [str(tmp_path / "kernels"), *manager.kernel_dirs]
    return manager


def _env_dump(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    return {k: v for k, _, v in (line.partition("=") for line in lines) if k in NAMES}


async def test_kernel_bootstrap_and_service_see_one_environment(tmp_path: Path, monkeypatch) -> None:
    require_programs("bash")
    monkeypatch.setenv("P_SERVER", "server")
    for name in NAMES[1:]:
        monkeypatch.setenv(name, "server")
    environ = tmp_path / "environ.txt"
    environ.write_text("P_FILE=file\nP_EXTRA=file\nP_CALL=file\n")
    bootstrap = tmp_path / "bootstrap.sh"
    bootstrap.write_text(f"env > {tmp_path / 'bootstrap.env'}\n")
    defs = tmp_path / "defs"
    defs.mkdir()
    (defs / "envdump.json").write_text(json.dumps({
        "command": ["/bin/sh", "-c", f"env > {tmp_path / 'service.env'}; exec sleep 60"],
        "readiness": "none",
    }))
    km = AsyncKernelManager(kernel_name="backend-shell-envtest", kernel_spec_manager=_spec_with_env(tmp_path))
    await km.start_kernel(
        cwd=str(tmp_path), env={**os.environ, "P_CALL": "call"},
        environ_file=str(environ), bootstrap_script=str(bootstrap), extra_env={"P_EXTRA": "extra"},
        service_defs_dir=str(defs), autostart_services=["envdump"],
    )
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=60)
        cell = await run_cell(kc, "for n in " + " ".join(NAMES) + "; do echo \"$n=${!n}\"; done")
        kernel = dict(line.partition("=")[::2] for line in cell["stdout"].splitlines())
        assert kernel == EXPECTED, cell
        assert _env_dump(tmp_path / "bootstrap.env") == EXPECTED
        assert km.provisioner.services.status("envdump")["status"] == "running"
        for _ in range(100):
            if (tmp_path / "service.env").exists() and _env_dump(tmp_path / "service.env"):
                break
            await asyncio.sleep(0.05)
        assert _env_dump(tmp_path / "service.env") == EXPECTED
        # the kernel's private control channel never reaches a service
        assert "BACKEND_CONTROL_TOKEN" not in (tmp_path / "service.env").read_text()
    finally:
        kc.stop_channels()
        await km.shutdown_kernel()
