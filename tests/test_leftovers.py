"""Nothing a kernel starts outlives it, and nothing a dead owner left stays (issue 15, processes left behind).

Each test names its programs by a unique ``sleep`` argument, so it finds them
in ``/proc`` whether or not they carry a launch marker.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

from backend_kernel_provisioner.agent import AgentKernel
from backend_kernel_provisioner.common import leftovers
from backend_kernel_provisioner.server.process_monitor import descendants_in
from tests.helpers import pid_alive, require_programs, run_cell


def unique_seconds() -> str:
    """A ``sleep`` argument no other test (or helper) uses: its processes are told apart by it."""
    return f"1000.{secrets.randbelow(10**8):08d}"


def sleeping(seconds: str) -> list[int]:
    """Live processes whose command line is ``sleep <seconds>``."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read().split(b"\0")
        except OSError:
            continue
        if cmdline[:2] == [b"sleep", seconds.encode()] and pid_alive(int(entry)):
            found.append(int(entry))
    return found


def owned_by(pid: int) -> list[str]:
    """Our temp folders whose owner record names ``pid``."""
    root = tempfile.gettempdir()
    folders = [os.path.join(root, name) for name in os.listdir(root) if name.startswith(leftovers.FOLDER_PREFIXES)]
    return [f for f in folders if (leftovers.read_owner(f) or {}).get("pid") == pid]


async def wait_for(predicate, what: str, timeout: float = 60) -> None:
    """Poll ``predicate`` (a hang guard, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        await asyncio.sleep(0.05)


def spawn_marked(argv: list[str], marker: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(argv, env={**os.environ, leftovers.LAUNCH_ENV: marker, **env},
                            start_new_session=True)


# -- without a kernel ---------------------------------------------------------------------------------

async def test_terminate_marked_kills_the_marked_tree_and_its_group_only():
    seconds, other = unique_seconds(), unique_seconds()
    marker = leftovers.new_launch_marker()
    # The shell's background sleep drops its environment (no marker): it goes with the group.
    tree = spawn_marked(["sh", "-c", f"env -i sleep {seconds} & sleep {seconds}; wait"], marker)
    bystander = spawn_marked(["sleep", other], leftovers.new_launch_marker())
    try:
        await wait_for(lambda: len(sleeping(seconds)) == 2, "both sleeps")
        found = await asyncio.to_thread(leftovers.terminate_marked, marker.__eq__, 1.0)
        assert tree.pid in found
        assert sleeping(seconds) == []
        assert tree.wait(timeout=10) < 0
        assert sleeping(other) == [bystander.pid]
    finally:
        for proc in (tree, bystander):
            proc.kill()
            proc.wait()


def owner_script(body: str) -> str:
    """A real owner process: runs ``body`` in asyncio, prints one JSON line, then waits to be killed."""
    return textwrap.dedent("""
        import asyncio, json, os, subprocess, sys
        from backend_kernel_provisioner.common import leftovers
        async def main():
        {body}
            print(json.dumps(ready), flush=True)
            await asyncio.sleep(600)
        asyncio.run(main())
    """).format(body=textwrap.indent(textwrap.dedent(body), "    "))


def start_owner(body: str, **env: str) -> tuple[subprocess.Popen, dict]:
    owner = subprocess.Popen([sys.executable, "-c", owner_script(body)], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, **env})
    assert owner.stdout is not None
    line = owner.stdout.readline()
    assert line, f"the owner process exited with {owner.wait()} before it was ready"
    return owner, json.loads(line)


async def test_owner_sigkill_takes_its_marked_processes(tmp_path):
    """The reaper outlives a SIGKILLed owner and kills what carries the owner's launch markers."""
    seconds = unique_seconds()
    owner, ready = start_owner(f"""
        from backend_kernel_provisioner.sidecar.services.reaper import REAPER
        REAPER.watch_launches(leftovers.owner_prefix())
        env = {{**os.environ, leftovers.LAUNCH_ENV: leftovers.new_launch_marker()}}
        child = subprocess.Popen(["sh", "-c", "sleep {seconds} & exec sleep {seconds}"], env=env,
                                 start_new_session=True)
        ready = {{"pid": child.pid}}
    """)
    try:
        await wait_for(lambda: len(sleeping(seconds)) == 2, "both sleeps")
        owner.kill()
        owner.wait()
        await wait_for(lambda: not sleeping(seconds), "the marked sleeps to go after the owner's SIGKILL")
    finally:
        for pid in sleeping(seconds):
            os.kill(pid, signal.SIGKILL)


async def test_sweep_removes_only_folders_of_dead_owners(tmp_path):
    root = tmp_path / "tmp"
    root.mkdir()
    connection_file = tmp_path / "kernel-dead.json"
    connection_file.write_text("{}")
    owner, ready = start_owner(f"""
        ctl = leftovers.make_private_dir("bkp-ctl-")
        leftovers.note(ctl, connection_file={str(connection_file)!r})
        ready = {{"ctl": ctl, "services": leftovers.make_private_dir("bkp-services-")}}
    """, TMPDIR=str(root))
    owner.kill()
    owner.wait()
    mine = (root / "bkp-ctl-alive")
    mine.mkdir()
    leftovers.write_owner(str(mine))  # this process: alive
    reused = root / "bkp-services-reused"
    reused.mkdir()
    (reused / leftovers.OWNER_FILE).write_text(json.dumps({"pid": os.getpid(), "start": 1}))  # a reused pid
    foreign = root / "bkp-ctl-no-record"
    foreign.mkdir()
    other_name = root / "elsewhere"
    other_name.mkdir()
    (other_name / leftovers.OWNER_FILE).write_text(json.dumps({"pid": 999999999, "start": 1}))

    found = await asyncio.to_thread(leftovers.sweep, str(root))

    assert sorted(found["folders"]) == sorted([ready["ctl"], ready["services"], str(reused)])
    assert sorted(p.name for p in root.iterdir()) == ["bkp-ctl-alive", "bkp-ctl-no-record", "elsewhere"]
    assert not connection_file.exists()


# -- with real kernels ---------------------------------------------------------------------------------

async def start_shell_kernel(tmp_path):
    from jupyter_client.manager import AsyncKernelManager

    km = AsyncKernelManager(kernel_name="backend-shell")
    await km.start_kernel(cwd=str(tmp_path))
    kc = km.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=60)
    return km, kc


async def background_and_foreground(kc, seconds: str) -> None:
    """A background sleep, then a foreground one (the cell stays busy)."""
    started = await run_cell(kc, f"sleep {seconds} &")
    assert started["reply"]["status"] == "ok", started
    kc.execute(f"sleep {seconds}")
    await wait_for(lambda: len(sleeping(seconds)) == 2, "the background and the foreground sleep")


@pytest.mark.kernel
async def test_sigkilled_kernel_then_shutdown_now_leaves_no_process(tmp_path):
    seconds = unique_seconds()
    km, kc = await start_shell_kernel(tmp_path)
    try:
        await background_and_foreground(kc, seconds)
        marker = km.provisioner.launch_marker
        assert {leftovers.launch_marker_of(p) for p in sleeping(seconds)} == {marker}
        kernel_folders = owned_by(km.provisioner.pid)
        assert kernel_folders, "the kernel's work folder, with its owner record"
        os.kill(km.provisioner.pid, signal.SIGKILL)
        await km.shutdown_kernel(now=True)
        assert sleeping(seconds) == []
        assert [p for p in kernel_folders if os.path.exists(p)] == []
    finally:
        kc.stop_channels()
        if km.has_kernel:
            await km.shutdown_kernel(now=True)
        for pid in sleeping(seconds):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.kernel
async def test_restart_leaves_no_process_of_the_old_launch(tmp_path):
    first, second = unique_seconds(), unique_seconds()
    km, kc = await start_shell_kernel(tmp_path)
    try:
        await background_and_foreground(kc, first)
        old_marker = km.provisioner.launch_marker
        os.kill(km.provisioner.pid, signal.SIGKILL)
        await km.restart_kernel(now=True)
        assert sleeping(first) == []
        assert km.provisioner.launch_marker != old_marker
        kc.stop_channels()
        kc = km.client()
        kc.start_channels()
        await kc.wait_for_ready(timeout=60)
        # The new launch works, and a graceful shutdown takes its background program too.
        started = await run_cell(kc, f"sleep {second} & echo started")
        assert started["stdout"] == "started\n"
        await wait_for(lambda: len(sleeping(second)) == 1, "the new launch's sleep")
        await km.shutdown_kernel(now=False)
        assert sleeping(second) == []
    finally:
        kc.stop_channels()
        if km.has_kernel:
            await km.shutdown_kernel(now=True)
        for pid in sleeping(first) + sleeping(second):
            os.kill(pid, signal.SIGKILL)


OWNER_WITH_SHELL_KERNEL = """
    from jupyter_client.manager import AsyncKernelManager
    km = AsyncKernelManager(kernel_name="backend-shell")
    await km.start_kernel(cwd={cwd!r})
    kc = km.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=60)
    await kc.execute_interactive("nohup sleep {seconds} >/dev/null 2>&1 &", timeout=60)
    p = km.provisioner
    ready = {{"kernel": p.pid, "ctl": p.sidecar.control.folder, "services": p.services.work_dir,
             "connection_file": km.connection_file,
             "reaper": __import__("backend_kernel_provisioner.sidecar.services.reaper").sidecar.services
                       .reaper.REAPER._proc.pid}}
"""


async def owner_with_a_kernel(tmp_path, seconds: str) -> tuple[subprocess.Popen, dict, list[str], object]:
    """A real server process (TMPDIR private to the test) with a shell kernel and a background sleep."""
    temp = tmp_path / "tmp"  # the server's and the kernel's temp folder: our folders are made there
    temp.mkdir()
    owner, ready = start_owner(OWNER_WITH_SHELL_KERNEL.format(cwd=str(tmp_path), seconds=seconds), TMPDIR=str(temp))
    paths = [ready["ctl"], ready["services"], ready["connection_file"]]
    assert all(os.path.exists(p) for p in paths)
    assert any(p.name.startswith("backend-") for p in temp.iterdir())  # the kernel's work folder
    await wait_for(lambda: len(sleeping(seconds)) == 1, "the background sleep")
    return owner, ready, paths, temp


@pytest.mark.kernel
async def test_owner_sigkill_leaves_no_process_and_no_folder(tmp_path):
    """The reaper outlives its SIGKILLed owner: the kernel, its background sleep and our folders go at once."""
    seconds = unique_seconds()
    owner, ready, paths, temp = await owner_with_a_kernel(tmp_path, seconds)
    try:
        owner.kill()
        owner.wait()
        await wait_for(lambda: not sleeping(seconds) and not pid_alive(ready["kernel"]),
                       "the kernel and its background sleep to go after the owner's SIGKILL")
        await wait_for(lambda: not list(temp.iterdir()) and not any(os.path.exists(p) for p in paths),
                       "the reaper to remove the dead owner's folders and connection file")
    finally:
        if owner.poll() is None:
            owner.kill()
        for pid in sleeping(seconds):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.kernel
async def test_when_the_reaper_died_too_the_next_start_sweeps(tmp_path):
    """Owner and reaper both SIGKILLed: the next start in another server kills the orphaned marked
    process and removes the dead owner's folders and connection file."""
    seconds = unique_seconds()
    owner, ready, paths, temp = await owner_with_a_kernel(tmp_path, seconds)
    try:
        os.kill(ready["reaper"], signal.SIGKILL)
        owner.kill()
        owner.wait()
        await wait_for(lambda: not pid_alive(ready["kernel"]), "the kernel to notice its parent is gone")
        assert len(sleeping(seconds)) == 1, "without the reaper, the background sleep is orphaned"
        assert all(os.path.exists(p) for p in paths)
        nxt, _ = start_owner("""
            from jupyter_client.manager import AsyncKernelManager
            km = AsyncKernelManager(kernel_name="backend-shell")
            await km.start_kernel()
            kc = km.client()
            kc.start_channels()
            await kc.wait_for_ready(timeout=60)
            await km.shutdown_kernel(now=False)  # gracefully: the kernel removes its own work folder
            ready = {}
        """, TMPDIR=str(temp))
        nxt.kill()
        nxt.wait()
        assert sleeping(seconds) == []
        assert [p for p in paths if os.path.exists(p)] == []
        await wait_for(lambda: not list(temp.iterdir()), "the second owner's reaper to finish")
    finally:
        if owner.poll() is None:
            owner.kill()
        for pid in sleeping(seconds):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.kernel
async def test_unmarked_program_the_monitor_saw_goes_too(tmp_path):
    """A program that dropped its environment carries no marker: the process monitor remembers whose it was."""
    seconds = unique_seconds()
    from jupyter_client.manager import AsyncKernelManager

    km = AsyncKernelManager(kernel_name="backend-shell")
    await km.start_kernel(cwd=str(tmp_path), process_monitor_interval=0.1)
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=60)
        started = await run_cell(kc, f"env -i sleep {seconds} &")
        assert started["reply"]["status"] == "ok", started
        await wait_for(lambda: len(sleeping(seconds)) == 1, "the sleep")
        (pid,) = sleeping(seconds)
        assert leftovers.launch_marker_of(pid) is None
        monitor = km.provisioner.process_monitor
        await wait_for(lambda: any(pid in table for table in list(monitor.snapshots)), "a snapshot with the sleep")
        kernel = km.provisioner.pid
        os.kill(kernel, signal.SIGKILL)
        # However late the stop comes: every snapshot the monitor still keeps shows the sleep orphaned.
        await wait_for(lambda: all(pid not in descendants_in(t, kernel, None) for t in list(monitor.snapshots)),
                       "the snapshots from before the kernel's death to rotate out")
        await km.shutdown_kernel(now=True)
        assert sleeping(seconds) == []
    finally:
        kc.stop_channels()
        if km.has_kernel:
            await km.shutdown_kernel(now=True)
        for pid in sleeping(seconds):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.kernel
async def test_an_interpreters_temp_folder_goes_with_its_kernel() -> None:
    """R's session temp folder (``Rtmp*``) is the kernel's, not /tmp's: a session stopped by a signal never
    removes its own, and each R kernel used to leave one in /tmp."""
    require_programs("Rscript")
    async with await AgentKernel.start("r") as kernel:
        ran = await kernel.execute("t1", "query", "cat(tempdir(), file.exists(tempdir()), '\\n')")
        folder, exists = ran["console"][0][1].split()
        assert exists == "TRUE"
        assert os.path.dirname(folder) != tempfile.gettempdir(), folder  # not /tmp/RtmpXXXX
    assert not os.path.exists(folder)
