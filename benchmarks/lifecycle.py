"""Shutdown and restart of every one of our kernels against ipykernel's, interleaved round by round.

The slowest run matters here as much as the median (issue 22: one shutdown in two waited 2.5 s for
the manager's SIGTERM), so each row also shows the slowest sample of both sides.
"""

from __future__ import annotations

import os
import shutil
import time

from jupyter_client.manager import AsyncKernelManager
from kernels import round_trip
from measure import Samples
from report import Row

from backend_kernel_provisioner.common.languages import LANGUAGES, LanguageSpec

BASELINE = "python3"


def runnable(spec: LanguageSpec) -> str:
    """'' when the kernel can run its first demo cell here, else why not."""
    if not spec.demo:
        return "no demo cell"
    for need in (*spec.programs, *spec.demo_needs):
        if need.startswith("$") and not os.environ.get(need[1:]):
            return f"{need} is not set"
        if not need.startswith("$") and shutil.which(need) is None:
            return f"{need} is not installed"
    return ""


async def one_life(name: str, cell: str) -> dict[str, float]:
    """Start, run a cell, restart, run it again, shut down: the time of each step in seconds."""
    times: dict[str, float] = {}
    km = AsyncKernelManager(kernel_name=name)
    begin = time.perf_counter()
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=120)
        times["start"] = time.perf_counter() - begin
        await round_trip(kc, cell)
        begin = time.perf_counter()
        await km.restart_kernel()
        await kc.wait_for_ready(timeout=120)
        times["restart"] = time.perf_counter() - begin
        await round_trip(kc, cell)
    finally:
        kc.stop_channels()
        begin = time.perf_counter()
        await km.shutdown_kernel()
        times["shutdown"] = time.perf_counter() - begin
    return times


async def shutdown_restart(s) -> list[Row]:
    ours = {spec.spec_name: spec.demo[0] for spec in LANGUAGES.values() if not runnable(spec)}
    for spec in LANGUAGES.values():
        if runnable(spec):
            print(f"  {spec.spec_name}: not measured ({runnable(spec)})", flush=True)
    cells = {BASELINE: "1", **ours}
    samples = {(name, step): Samples() for name in cells for step in ("start", "restart", "shutdown")}
    for _ in range(s.lifecycle_rounds):  # interleaved: ipykernel, ours, ipykernel's next round, ...
        for name, cell in cells.items():
            for step, value in (await one_life(name, cell)).items():
                samples[name, step].values.append(value)
    rows = []
    for index, name in enumerate(ours):
        first = index == 0  # the notes once, on the first pair of rows
        rows.append(Row(f"shutdown of {name} (shutdown_kernel, after a cell)", name, "ipykernel (python3)",
                        samples[name, "shutdown"], samples[BASELINE, "shutdown"],
                        "target: the slowest ≤ 3× ipykernel's slowest. The kernel answers, its interpreter gets "
                        "end of input and exits; the floor is the manager's 0.1 s polling of the process"
                        if first else ""))
        rows.append(Row(f"restart of {name} (restart_kernel → ready)", name, f"its own start ({name})",
                        samples[name, "restart"], samples[name, "start"],
                        "target: ≤ the start + 3× ipykernel's slowest shutdown. A restart is a shutdown "
                        "plus a start; the floor is the start" if first else ""))
    return rows
