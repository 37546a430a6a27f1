"""Shared fixtures: our kernelspecs installed into a private prefix, and the test environment.

Nothing happens at import time: the environment is set by a session fixture and
undone at the end, and the kernelspecs are only installed when a selected test
starts a kernel (marked ``kernel``) or asks for ``kernelspec_prefix``, so that
``pytest -m "not kernel"`` stays fast.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"

#: Keep the tests away from the container paths of the old runner (unless the caller set them).
EMPTY_BY_DEFAULT = ("BACKEND_ENVIRON_FILE", "BACKEND_BOOTSTRAP_SCRIPT", "BACKEND_SERVICE_DEFS_DIR")


def needs_kernelspecs(item: pytest.Item) -> bool:
    """Whether ``item`` looks kernels up by name: it starts a kernel or asks for the prefix."""
    return item.get_closest_marker("kernel") is not None or "kernelspec_prefix" in getattr(item, "fixturenames", ())


@pytest.fixture(scope="session")
def kernelspec_prefix() -> Iterator[str]:
    """Our kernelspecs installed once into a private prefix, found through ``JUPYTER_PATH``."""
    prefix = tempfile.mkdtemp(prefix="bkp-specs-")
    try:
        subprocess.run(
            [sys.executable, "-m", "backend_kernel_provisioner", "install", "--all", "--prefix", prefix],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("JUPYTER_PATH", os.path.join(prefix, "share", "jupyter"), prepend=os.pathsep)
            yield prefix
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _test_environment(request: pytest.FixtureRequest) -> Iterator[None]:
    """The environment every test runs in, set before the first test and undone after the last.

    Session-scoped and autouse, so it is set up before any other fixture or test
    creates a KernelSpecManager (which reads ``JUPYTER_PATH`` when it is made).
    """
    with pytest.MonkeyPatch.context() as mp:
        for name in EMPTY_BY_DEFAULT:
            if name not in os.environ:
                mp.setenv(name, "")
        if any(needs_kernelspecs(item) for item in request.session.items):
            request.getfixturevalue("kernelspec_prefix")
        yield
