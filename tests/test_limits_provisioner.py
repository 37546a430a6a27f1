"""Per-kernel limits by the provisioner (issue 20): a real cgroup per launch, an out-of-memory death told
where it is seen, nothing left behind.

Real cgroups on this machine (as root). Where none can be made the tests skip with the reason.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from jupyter_client.manager import AsyncKernelManager

from backend_kernel_provisioner.agent.kernel import AgentKernel, _spec_manager
from backend_kernel_provisioner.common import leftovers
from backend_kernel_provisioner.common.cgroups import detect_layout
from backend_kernel_provisioner.common.childproc import proc_stat
from backend_kernel_provisioner.common.kernel_cgroups import ROOT_PREFIX, KernelCgroups
from backend_kernel_provisioner.common.resource_limits import Limits
from backend_kernel_provisioner.server.server_events import SCHEMA, SCHEMA_ID
from tests.helpers import run_cell
from tests.test_agent_services import next_event

pytestmark = pytest.mark.kernel


def _cgroups_or_skip() -> None:
    layout = detect_layout()
    if layout is None:
        pytest.skip("no cgroup hierarchy with a memory controller on this machine")
    try:
        probe = KernelCgroups(layout, f"probe-{os.getpid()}")
        probe.kernel(Limits())
        probe.remove()
    except OSError as exc:
        pytest.skip(f"cannot make a cgroup here ({exc}); run as root")


@pytest.fixture(autouse=True)
def cgroups_available() -> None:
    _cgroups_or_skip()


def our_cgroups(owner: int | None = None) -> set[str]:
    """The kernel trees of ``owner`` (default: this test process), in every hierarchy (what the tests count;
    other processes' kernels may come and go meanwhile)."""
    return our_cgroups_named(leftovers.owner_prefix(owner))


def gone(pid: int) -> bool:
    stat = proc_stat(pid)
    return stat is None or stat[1][0] == "Z"


async def started(kernel_name: str, **options) -> tuple[AsyncKernelManager, object]:
    km = AsyncKernelManager(kernel_name=kernel_name, kernel_spec_manager=_spec_manager())
    await km.start_kernel(**options)
    kc = km.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=60)
    return km, kc


async def test_the_kernel_and_its_programs_run_in_their_own_cgroup_with_the_limits() -> None:
    before = our_cgroups()
    km, kc = await started("backend-shell", memory_limit="256M", cpu_limit=0.5, pids_limit=100)
    try:
        cgroup = km.provisioner.limits.cgroup
        assert cgroup is not None and cgroup.limits() == Limits(256 << 20, 0.5, 100)
        assert km.provisioner.pid in cgroup.members()
        out = await run_cell(kc, "echo $MEM_LIMIT $CPU_LIMIT; sleep 30 & echo $!; grep memory /proc/self/cgroup")
        mem_limit, cpu_limit, sleeper, line = out["stdout"].split()
        assert (mem_limit, cpu_limit) == (str(256 << 20), "0.5")
        assert int(sleeper) in cgroup.members()  # a cell's background program is held too
        assert line.endswith("/kernel") and ROOT_PREFIX in line
        assert len(our_cgroups() - before) == len(set(detect_layout().mounts.values()))  # one tree per hierarchy
    finally:
        kc.stop_channels()
        await km.shutdown_kernel()
    assert our_cgroups() == before
    assert gone(int(sleeper))


async def test_a_restart_gets_a_fresh_cgroup_and_the_old_one_is_gone() -> None:
    before = our_cgroups()
    km, kc = await started("backend-shell", memory_limit="128M")
    try:
        first = km.provisioner.limits.cgroup
        await run_cell(kc, "sleep 60 &")
        left = first.members() - {km.provisioner.pid}
        await km.restart_kernel()
        await kc.wait_for_ready(timeout=60)
        second = km.provisioner.limits.cgroup
        assert second is not None and second.limits().memory == 128 << 20
        assert km.provisioner.pid in second.members() and not (left & second.members())
        assert left and all(gone(pid) for pid in left)  # the restart killed what the old launch left running
    finally:
        kc.stop_channels()
        await km.shutdown_kernel()
    assert our_cgroups() == before


async def test_cpu_limit_holds_a_busy_loop_to_about_half_a_core() -> None:
    km, kc = await started("backend-shell", cpu_limit=0.5)
    try:
        cgroup = km.provisioner.limits.cgroup
        used_before, started_at = cgroup.cpu_seconds(), time.monotonic()
        # two busy loops: without the limit they would take both cores of this machine
        await run_cell(kc, "timeout 4 sh -c 'while :; do :; done' & timeout 4 sh -c 'while :; do :; done'; wait")
        share = (cgroup.cpu_seconds() - used_before) / (time.monotonic() - started_at)
    finally:
        kc.stop_channels()
        await km.shutdown_kernel()
    assert 0.25 < share < 0.75, f"the kernel's cgroup used {share:.2f} cores under cpu_limit=0.5"


async def test_python_kernel_out_of_memory_is_told_by_the_agent_event_and_the_next_first_cell() -> None:
    async with await AgentKernel.start("python", memory_limit="200M") as kernel:
        events = kernel.events()
        pid = kernel.km.provisioner.pid
        assert (await kernel.execute("m1", "query", "kept = 1\nprint(kept)"))["console"] == [["stdout", "1\n"]]
        await kernel.execute("m2", "query", "hog = bytearray(600 << 20)")
        oom = await next_event(events, lambda e: e.get("type") == "oom")
        assert oom["kernel_id"] == str(kernel.km.kernel_id) and oom["memory_limit"] == 200 << 20
        assert "out of memory" in oom["message"] and f"pid {pid}" in oom["message"] and "200 MiB" in oom["message"]
        await kernel.restart()
        first = await kernel.execute("m3", "query", "print('after')")
        text = "".join(item[1] for item in first["console"] if isinstance(item[1], str))
        assert "out of memory" in text and "200 MiB" in text and "after" in text
        again = await kernel.execute("m4", "query", "print('again')")
        assert again["console"] == [["stdout", "again\n"]]  # told once


async def test_kernel_death_goes_to_the_jupyter_server_event_logger() -> None:
    from jupyter_server.services.kernels.kernelmanager import ServerKernelManager

    km = ServerKernelManager(kernel_name="backend-shell", kernel_spec_manager=_spec_manager())
    seen: list[dict] = []

    async def listener(logger, schema_id: str, data: dict) -> None:
        seen.append(data)

    km.event_logger.register_event_schema(SCHEMA)
    km.event_logger.add_listener(schema_id=SCHEMA_ID, listener=listener)
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=60)
        os.kill(km.provisioner.pid, signal.SIGSEGV)  # a death of its own, not out of memory
        for _ in range(100):
            if not await km.is_alive():
                break
            await asyncio.sleep(0.1)
        await km.provisioner._death_told
        for _ in range(50):
            if seen:
                break
            await asyncio.sleep(0.05)
    finally:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)
    assert len(seen) == 1 and seen[0]["kernel_id"] == km.kernel_id and seen[0]["reason"] == "died"
    assert "SIGSEGV" in seen[0]["msg"] and "SIGSEGV" in km.provisioner._previous_death


def test_no_cgroup_is_left_after_the_server_is_killed(tmp_path: Path) -> None:
    """SIGKILL of the process hosting the provisioner: its reaper removes the kernel's cgroups."""
    script = tmp_path / "server.py"
    script.write_text(textwrap.dedent("""
        import asyncio, json, sys
        from jupyter_client.manager import AsyncKernelManager
        from backend_kernel_provisioner.agent.kernel import _spec_manager
        async def main():
            km = AsyncKernelManager(kernel_name="backend-shell", kernel_spec_manager=_spec_manager())
            await km.start_kernel(memory_limit="128M")
            print(json.dumps(km.provisioner.limits.cgroup.unique_dirs), flush=True)
            await asyncio.sleep(600)
        asyncio.run(main())
    """))
    server = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parent.parent)
    try:
        dirs = json.loads(server.stdout.readline())
        assert dirs and all(os.path.isdir(d) for d in dirs)
        owner = leftovers.owner_prefix(server.pid)
        assert len(our_cgroups(server.pid)) == len(dirs)
        server.send_signal(signal.SIGKILL)
        server.wait()
        for _ in range(300):  # the reaper: TERM, a grace period, KILL, then the folders and cgroups
            if not any(os.path.isdir(d) for d in dirs) and not our_cgroups_named(owner):
                break
            time.sleep(0.1)
    finally:
        server.kill()
        server.wait()
    assert not any(os.path.isdir(d) for d in dirs)
    assert not our_cgroups_named(owner)


def our_cgroups_named(owner_prefix: str) -> set[str]:
    """Trees of an owner that is gone (its pid cannot be asked any more): by its marker prefix."""
    layout = detect_layout()
    assert layout is not None
    return {os.path.join(folder, d) for mount in set(layout.mounts.values()) for folder, dirs, _ in os.walk(mount)
            for d in dirs if d.startswith(ROOT_PREFIX + owner_prefix)}


async def test_a_cgroup_that_cannot_be_made_warns_once_and_the_kernel_starts_unlimited(
        caplog: pytest.LogCaptureFixture) -> None:
    km, kc = await started("backend-shell", memory_limit="128M", cgroup_parent="/cgroup.procs/cannot")
    try:
        assert km.provisioner.limits.cgroup is None
        out = await run_cell(kc, "echo ${MEM_LIMIT:-unlimited}")
        assert out["stdout"].strip() == "unlimited"
        warnings = [r.getMessage() for r in caplog.records if "not enforced" in r.getMessage()]
        assert len(warnings) == 1 and "memory 128 MiB" in warnings[0]
    finally:
        kc.stop_channels()
        await km.shutdown_kernel()
