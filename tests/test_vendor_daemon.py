"""The vendor-daemon example kernelspec starts its service before the first cell (issue 11, acceptance 3)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager

from tests.helpers import run_cell
from tests.test_model_service import free_port

pytestmark = pytest.mark.kernel  # starts the vendor-daemon example kernel through AsyncKernelManager

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "vendor-daemon" / "backend-python-vendor"


async def test_daemon_is_serving_when_the_first_cell_runs(tmp_path: Path) -> None:
    spec_dir = tmp_path / "kernels" / "backend-python-vendor"
    shutil.copytree(EXAMPLE, spec_dir)
    port = free_port()  # the example's fixed port may be taken on a shared machine
    spec = json.loads((spec_dir / "kernel.json").read_text())
    spec["metadata"]["kernel_provisioner"]["config"]["autostart_services"] = [f"vendor-daemon:{port}"]
    spec["env"]["VENDOR_DAEMON_URL"] = f"http://127.0.0.1:{port}/"
    (spec_dir / "kernel.json").write_text(json.dumps(spec))

    ksm = KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")])
    km = AsyncKernelManager(kernel_name="backend-python-vendor", kernel_spec_manager=ksm)
    work = tmp_path / "work"
    work.mkdir()
    await km.start_kernel(cwd=str(work))
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=60)
        out = await run_cell(
            kc, "import os, urllib.request\nprint(urllib.request.urlopen(os.environ['VENDOR_DAEMON_URL']).read().decode())"
        )
        assert out["stdout"].strip() == f"vendor daemon ready on {port}"
        assert km.provisioner.services.status("vendor-daemon")["ports"] == [port]
    finally:
        kc.stop_channels()
        await km.shutdown_kernel()
