"""The process monitor names processes that vanished (the runner's OOM report)."""

from __future__ import annotations

import subprocess
import time

from backend_kernel_provisioner.server.process_monitor import ProcessMonitor


def test_vanished_process_is_reported_with_its_parent_chain() -> None:
    parent = subprocess.Popen(["bash", "-c", "sleep 300 & wait"])
    monitor = ProcessMonitor()
    try:
        for _ in range(200):  # the child is seen between fork and exec too (still "bash ..."): wait for the exec
            monitor.snapshot()
            children = [p for p in monitor.snapshots[-1].values() if p.ppid == parent.pid]
            if children and children[0].cmdline == "sleep 300":
                break
            time.sleep(0.02)
        (sleeper,) = children
        assert sleeper.cmdline == "sleep 300"
        subprocess.run(["kill", "-9", str(sleeper.pid)], check=True)
        parent.wait(timeout=10)
        report = monitor.report_vanished()
        entry = next(e for e in report if e["pid"] == sleeper.pid)
        assert entry["cmdline"] == "sleep 300"
        assert entry["rss_bytes"] > 0 and entry["elapsed"] >= 0
        assert entry["parents"][0]["pid"] == parent.pid
        assert not any(e["pid"] == monitor.snapshots[-1][parent.pid].ppid for e in report)
    finally:
        parent.kill()
        parent.wait()


async def test_kernels_share_one_monitor_per_interval() -> None:
    first = ProcessMonitor.acquire(0.5)
    second = ProcessMonitor.acquire(0.5)
    assert first is second and first._task is not None
    await first.release()
    assert not first._task.done()  # the other user still needs it
    await second.release()
    assert first._task is None
    third = ProcessMonitor.acquire(0.5)
    assert third is not first
    await third.release()


def test_descendants_are_the_live_ones_of_that_very_process() -> None:
    parent = subprocess.Popen(["sh", "-c", "sleep 301 & sleep 302 & wait"])
    monitor = ProcessMonitor()
    try:
        for _ in range(200):
            monitor.snapshot()
            if sum(p.ppid == parent.pid for p in monitor.snapshots[-1].values()) == 2:
                break
            time.sleep(0.02)  # a loaded machine may take a while to fork both
        start = monitor.snapshots[-1][parent.pid].start_time
        kids = sorted(p.pid for p in monitor.snapshots[-1].values() if p.ppid == parent.pid)
        assert sorted(monitor.descendants(parent.pid, start)) == kids
        assert monitor.descendants(parent.pid, start + 1) == []  # another process that had this pid
        subprocess.run(["kill", "-9", str(kids[0])], check=True)
        for _ in range(100):
            if kids[0] not in monitor.descendants(parent.pid, start):
                break
            time.sleep(0.05)
        assert monitor.descendants(parent.pid, start) == kids[1:]
    finally:
        parent.kill()
        parent.wait()
        for pid in monitor.descendants(parent.pid):
            subprocess.run(["kill", "-9", str(pid)], check=False)
