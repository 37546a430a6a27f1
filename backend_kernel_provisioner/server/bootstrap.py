"""The bootstrap script: a user's shell script run once per kernel launch (runner start-up step 3).

Its exit code is logged, never fatal: a broken script must not keep a user
from their kernel. It runs with the kernel's final environment, as a child of
the common recipe (own group, killed with its group when it overruns).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from backend_kernel_provisioner.common.childproc import DEVNULL, signal_group, spawn


async def run_bootstrap_script(
    script: str, *, cwd: str | None, env: dict[str, str], timeout: float, log: logging.Logger
) -> int | None:
    """Run ``script`` with ``/bin/sh``; its exit code, or None when there is no script to run."""
    if not script or not os.path.isfile(script):
        return None
    try:
        proc = await spawn(["/bin/sh", script], cwd=cwd, env=env, stdout=None, stderr=None, stdin=DEVNULL)
    except OSError as exc:
        log.warning("bootstrap script %s could not start: %s", script, exc)
        return None
    try:
        code = await asyncio.wait_for(proc.wait(), timeout)
    except asyncio.TimeoutError:
        signal_group(proc.pid, signal.SIGKILL)
        code = await proc.wait()
        log.warning("bootstrap script %s timed out after %ss", script, timeout)
    log.info("bootstrap script %s exited with code %s", script, code)
    return code
