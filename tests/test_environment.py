"""The kernel's environment: environ file, PATH promotion, bootstrap (issue 2, acceptance 4)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backend_kernel_provisioner.server.environment import build_child_environment, read_environ_file
from tests.helpers import run_cell, running_kernel


def test_environ_file_parsing(tmp_path: Path) -> None:
    path = tmp_path / "environ.txt"
    path.write_text("# comment\nA=1\nexport B='two words'\n\nnot a pair\nC=x=y\n")
    assert read_environ_file(path) == {"A": "1", "B": "two words", "C": "x=y"}


def test_defaults_and_path_promotion(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".local" / "bin").mkdir(parents=True)
    extra = tmp_path / "tool" / "bin"
    extra.mkdir(parents=True)
    env = build_child_environment(
        {"HOME": str(home), "PATH": f"/usr/bin:{extra}:/bin"},
        extra_path=[str(extra), str(tmp_path / "missing")],
    )
    parts = env["PATH"].split(":")
    assert parts[:2] == [str(home / ".local" / "bin"), str(extra)]
    assert parts.count(str(extra)) == 1
    assert str(tmp_path / "missing") not in parts
    assert env["LANG"] == "C.UTF-8" and env["TERM"] == "xterm"


@pytest.mark.kernel
async def test_kernel_sees_environ_file_and_bootstrap_runs(tmp_path: Path) -> None:
    environ = tmp_path / "environ.txt"
    environ.write_text("GREETING=from-environ-file\nLANG=C.UTF-8\n")
    marker = tmp_path / "bootstrap-ran"
    script = tmp_path / "bootstrap.sh"
    script.write_text(f'echo "$GREETING" >> {marker}\nexit 3\n')
    async with running_kernel(
        "backend-python",
        environ_file=str(environ),
        bootstrap_script=str(script),
        cwd=str(tmp_path),
    ) as (km, kc):
        out = await run_cell(kc, "import os; print(os.environ['GREETING'], os.getcwd())")
        assert out["stdout"].split() == ["from-environ-file", str(tmp_path)]
        assert marker.read_text() == "from-environ-file\n"
        assert km.provisioner.bootstrap_exit_code == 3
        await km.restart_kernel()
        await kc.wait_for_ready(timeout=60)
        assert marker.read_text().count("from-environ-file") == 2, "bootstrap runs once per launch"


@pytest.mark.kernel
async def test_provisioners_do_not_share_connection_info() -> None:
    async with running_kernel("backend-python") as (km1, _), running_kernel("backend-python") as (km2, _):
        assert km1.provisioner.connection_info is not km2.provisioner.connection_info
        assert km1.provisioner.connection_info["shell_port"] != km2.provisioner.connection_info["shell_port"]
        assert isinstance(km1.provisioner.connection_info["key"], bytes)
    assert os.environ.get("BACKEND_ENVIRON_FILE") == ""


@pytest.mark.kernel
async def test_traits_from_kernelspec_config_file_and_call(tmp_path: Path) -> None:
    from jupyter_client.manager import AsyncKernelManager
    from traitlets.config import Config

    config = Config({"BackendKernelProvisioner": {"extra_env": {"FROM_CONFIG": "yes"}}})
    km = AsyncKernelManager(kernel_name="backend-python", config=config)
    await km.start_kernel(extra_path=[str(tmp_path)])
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=60)
        assert km.provisioner.language == "python"  # from the kernelspec's provisioner config
        out = await run_cell(kc, "import os; print(os.environ['FROM_CONFIG'], os.environ['PATH'].split(':')[1])")
        assert out["stdout"].split() == ["yes", str(tmp_path)]
    finally:
        kc.stop_channels()
        await km.shutdown_kernel()
