"""The language kernel as the launcher's child: started, signalled, stopped and restarted alone.

The launcher outlives its kernel across restarts (services stay up), so the
kernel is a child it can replace: same connection file, same ports, a fresh
process. The child gets the common recipe of :func:`~backend_kernel_provisioner.common.childproc.spawn`
(own process group, default SIGINT, SIGKILL when the launcher dies), so an
interrupt or a stop reaches the kernel and everything it started.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable

from backend_kernel_provisioner.common.cgroups import Cgroup
from backend_kernel_provisioner.common.childproc import DEVNULL, describe_exit, signal_group, spawn, stop_group

#: argv[0] names that mean "the Python running the launcher" (as jupyter_client does for kernelspecs).
PYTHON_NAMES = ("python", "python3", f"python{sys.version_info[0]}.{sys.version_info[1]}")


def kernel_argv(template: list[str], connection_file: str) -> list[str]:
    """The kernelspec argv with ``{connection_file}`` filled in and ``python`` made this launcher's Python."""
    if not template:
        raise ValueError("no kernel command given (after --)")
    argv = [arg.replace("{connection_file}", connection_file) for arg in template]
    if argv[0] in PYTHON_NAMES:
        argv[0] = sys.executable
    return argv


class KernelChild:
    """One kernel process at a time; ``on_exit(code)`` is called whenever it ends."""

    def __init__(self, argv: list[str], log: logging.Logger, on_exit: Callable[[int], None]) -> None:
        self.argv = argv
        self.log = log
        self.on_exit = on_exit
        self.proc: asyncio.subprocess.Process | None = None
        self.exit_code: int | None = None
        self._watch: asyncio.Task | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self, env: dict[str, str], cwd: str | None, cgroup: Cgroup | None = None) -> int:
        """Start the kernel (stopping a previous one first), inside ``cgroup`` when given; its pid."""
        if self.running:
            await self.stop(grace=5.0)
        self.exit_code = None
        self.proc = await spawn(self.argv, cwd=cwd if cwd and os.path.isdir(cwd) else None, env=env,
                                stdin=DEVNULL, stdout=None, stderr=None, cgroup=cgroup)
        self._watch = asyncio.create_task(self._wait(self.proc))
        self.log.info("kernel started: pid %d, %s", self.proc.pid, " ".join(self.argv))
        return self.proc.pid

    async def _wait(self, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        if proc is self.proc:
            self.exit_code = code
            self.log.info("kernel pid %d %s", proc.pid, describe_exit(code))
            self.on_exit(code)

    def signal(self, signum: int) -> bool:
        """Signal the kernel's process group (an interrupt reaches the program a cell runs)."""
        return self.running and self.proc is not None and signal_group(self.proc.pid, signum)

    async def stop(self, grace: float) -> int | None:
        """SIGTERM the kernel's group, SIGKILL after ``grace``; its exit code (None when none ran)."""
        proc = self.proc
        if proc is None:
            return None
        code = await stop_group(proc, grace) if proc.returncode is None else proc.returncode
        if self._watch is not None:
            await asyncio.gather(self._watch, return_exceptions=True)
        return code
