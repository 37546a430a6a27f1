"""``./dev lab`` starts JupyterLab as root too (issue 19: Jupyter refuses root unless told)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.browser_lab import free_port

ROOT = Path(__file__).resolve().parent.parent


def test_dev_lab_serves_as_whoever_runs_it(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "VENV": str(Path(sys.executable).parent.parent), "JUPYTER_RUNTIME_DIR": str(tmp_path),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config")}
    lab = subprocess.Popen([str(ROOT / "dev"), "lab", f"--port={port}", "--IdentityProvider.token=dev-lab-test",
                            f"--ServerApp.root_dir={tmp_path}", "--LabApp.news_url=",
                            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
                           cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            if lab.poll() is not None:
                pytest.fail(f"./dev lab exited with {lab.returncode}: {lab.stdout.read()[-2000:]}")
            try:
                status = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token=dev-lab-test",
                                                timeout=2).read()
                break
            except OSError:
                assert time.monotonic() < deadline, "./dev lab did not answer within 120 s"
                time.sleep(0.3)
        assert b"started" in status
    finally:
        os.killpg(lab.pid, signal.SIGTERM)
        try:
            lab.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(lab.pid, signal.SIGKILL)
            lab.wait()
