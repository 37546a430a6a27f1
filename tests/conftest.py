"""Shared fixtures: our kernelspecs installed into a private prefix, and real kernels."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"

# Install the kernelspecs once per test session, before any kernel manager looks.
_PREFIX = tempfile.mkdtemp(prefix="bkp-specs-")
subprocess.run(
    [sys.executable, "-m", "backend_kernel_provisioner", "install", "--all", "--prefix", _PREFIX],
    check=True,
    stdout=subprocess.DEVNULL,
)
os.environ["JUPYTER_PATH"] = os.pathsep.join(
    [os.path.join(_PREFIX, "share", "jupyter"), *filter(None, [os.environ.get("JUPYTER_PATH")])]
)
# Keep the tests away from the container paths of the old runner.
os.environ.setdefault("BACKEND_ENVIRON_FILE", "")
os.environ.setdefault("BACKEND_BOOTSTRAP_SCRIPT", "")
os.environ.setdefault("BACKEND_SERVICE_DEFS_DIR", "")


@pytest.fixture(scope="session")
def kernelspec_prefix() -> str:
    return _PREFIX
