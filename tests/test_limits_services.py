"""Services and model servers in sibling cgroups with their own limits, and "out of memory" on their events.

Real cgroups on this machine (as root); tests that need them skip with the reason where none can be made.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from backend_kernel_provisioner.common.cgroups import Layout, detect_layout
from backend_kernel_provisioner.common.events import Subscription
from backend_kernel_provisioner.common.kernel_cgroups import KernelCgroups
from backend_kernel_provisioner.common.resource_limits import Limits
from backend_kernel_provisioner.sidecar.models.runner import ModelServiceRunner, ServiceManagerLauncher
from backend_kernel_provisioner.sidecar.services import ManagerContext, ServiceManager

from .helpers import run_cell, running_kernel

#: Waits for the next event: a guard against a hang, not a measured bound.
EVENT_WAIT = 60.0

#: Waits for its go file (so that the test can look at it first), then eats memory until it is killed.
HOG = """
import os, sys, time
while not os.path.exists(sys.argv[1]):
    time.sleep(0.02)
print("eating", flush=True)
chunks = []
while True:
    chunks.append(b"x" * (4 << 20))
"""
IDLE = "import time; time.sleep(600)"


def make_tree() -> KernelCgroups:
    """A fresh kernel tree for one test, or skip saying why none can be made here."""
    if detect_layout() is None:
        pytest.skip("no cgroup hierarchy with a memory controller is mounted")
    tree = KernelCgroups.for_kernel(f"svc-test-{uuid.uuid4().hex[:8]}")
    try:
        tree.kernel(Limits())
    except OSError as exc:
        tree.remove()
        pytest.skip(f"cannot make a cgroup here (not root, or no delegation): {exc}")
    return tree


@pytest.fixture
def tree():
    tree = make_tree()
    yield tree
    assert tree.remove(), "the kernel's cgroup tree could not be removed"
    assert not any(os.path.exists(d) for d in tree.root.unique_dirs), "KernelCgroups.remove() left its tree"


def write_definitions(folder: Path, **commands: list[str]) -> str:
    """One definition file per service (no port wait: the services listen on nothing)."""
    folder.mkdir(exist_ok=True)
    for name, command in commands.items():
        (folder / f"{name}.json").write_text(json.dumps({"command": command, "readiness": "none"}))
    return str(folder)


def make_manager(tmp_path: Path, tree: KernelCgroups | None, policies: dict[str, Any]) -> ServiceManager:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "hog.py").write_text(HOG)
    defs = write_definitions(
        tmp_path / "defs",
        hog=["{runtime_path}", "{home}/hog.py", "{home}/go"],
        idle=["{runtime_path}", "-c", IDLE],
    )
    return ServiceManager(ManagerContext(home=str(home), runtime_path=sys.executable, defs_dir=defs,
                                         kernel_id="k-limits", policies=policies, cgroups=tree, stop_grace=2))


async def events_until(sub: Subscription, done) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    while not seen or not done(seen[-1]):
        seen.append(await asyncio.wait_for(sub.__anext__(), EVENT_WAIT))
    return seen


def memory_cgroup_of(pid: int) -> str:
    """The process's memory cgroup path, from ``/proc`` (the v1 ``memory`` line, else the v2 line)."""
    paths = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            paths[name] = path
    return paths.get("memory", paths.get("", ""))


# -- out of memory ----------------------------------------------------------------------------


async def test_service_over_its_memory_limit_is_killed_and_reported(tree, tmp_path, caplog):
    policies = {"hog": {"limits": {"memory": "64M"}}}
    manager = make_manager(tmp_path, tree, policies)
    sub = manager.subscribe()
    try:
        result = await manager.start_service({"name": "hog"})
        assert result["status"] == "started", result
        pid = result["pid"]
        # (b) its own leaf, with its limit; not the kernel's leaf
        leaf = tree.service("hog", Limits.of("64M"))
        assert pid in leaf.members()
        assert pid not in tree.kernel(Limits()).members()
        assert memory_cgroup_of(pid).endswith("/service-hog")
        assert leaf.memory_limit() == 64 << 20
        assert manager.status("hog")["cgroup"] in leaf.unique_dirs

        with caplog.at_level(logging.WARNING):
            (tmp_path / "home" / "go").touch()
            events = await events_until(sub, lambda e: e.get("name") == "hog" and e.get("status") == "exited")
        log_text = manager.read_log("hog")
    finally:
        await sub.aclose()
        await manager.close()

    exited = events[-1]
    assert exited["exit_code"] == -9
    assert exited["reason"] == "out of memory"
    assert exited["message"].startswith("killed: out of memory (limit 64 MiB, peak ")
    assert exited["error"] == exited["message"]
    oom = [e for e in events if e.get("type") == "oom"]
    assert len(oom) == 1, events
    assert oom[0]["event"] == "oom" and oom[0]["key"] == "service:hog:oom" and oom[0]["service"] == "hog"
    assert oom[0]["memory_limit"] == 64 << 20 and oom[0]["peak"] >= 60 << 20
    assert "out of memory (limit 64 MiB" in oom[0]["message"]
    assert any("service hog: killed: out of memory" in r.getMessage() for r in caplog.records)
    assert "eating" in log_text and "killed: out of memory" in log_text
    # (d) the manager removed the service's leaf when it closed
    assert not any(os.path.exists(d) for d in leaf.unique_dirs)


async def test_out_of_memory_restarts_per_policy(tree, tmp_path):
    """The restart policy applies as usual: ``backoff`` carries the reason, and the service comes back."""
    policies = {"hog": {"limits": {"memory": "64M"}, "restart": {"policy": "on-failure", "backoff": 0.05}}}
    manager = make_manager(tmp_path, tree, policies)
    sub = manager.subscribe()
    try:
        (tmp_path / "home" / "go").touch()
        assert (await manager.start_service({"name": "hog"}))["status"] == "started"
        events = await events_until(sub, lambda e: e.get("name") == "hog" and e.get("status") == "backoff")
        assert events[-1]["reason"] == "out of memory"
        await events_until(sub, lambda e: e.get("name") == "hog" and e.get("status") == "running")
        assert manager.services["hog"].restarts >= 1
    finally:
        await sub.aclose()
        await manager.close()


async def test_a_service_killed_otherwise_has_no_memory_reason(tree, tmp_path):
    """SIGKILL by a person is not "out of memory": only the cgroup's OOM counter says that."""
    manager = make_manager(tmp_path, tree, {"idle": {"limits": {"memory": "64M"}}})
    sub = manager.subscribe()
    try:
        result = await manager.start_service({"name": "idle"})
        os.kill(result["pid"], 9)
        events = await events_until(sub, lambda e: e.get("name") == "idle" and e.get("status") == "exited")
    finally:
        await sub.aclose()
        await manager.close()
    assert events[-1]["exit_code"] == -9 and "reason" not in events[-1]
    assert not any(e.get("type") == "oom" for e in events)


# -- own leaves -------------------------------------------------------------------------------


async def test_service_without_limits_runs_in_its_own_leaf(tree, tmp_path):
    """(c) Never in the kernel's cgroup, even without limits: it must not count against the kernel's."""
    manager = make_manager(tmp_path, tree, {})
    try:
        result = await manager.start_service({"name": "idle"})
        pid = result["pid"]
        leaf = manager.service_cgroups.leaves["idle"]
        assert memory_cgroup_of(pid).endswith("/service-idle")
        assert pid in leaf.members() and pid not in tree.kernel(Limits()).members()
        assert leaf.memory_limit() is None
        # stopped for good: its leaf goes at once, not only at close
        assert (await manager.shutdown_service("idle"))["status"] == "stopped"
        assert "idle" not in manager.service_cgroups.leaves
        assert not any(os.path.exists(d) for d in leaf.unique_dirs)
    finally:
        await manager.close()


async def test_model_server_gets_its_own_leaf_and_limits(tree, tmp_path):
    """Model servers are services: their policy name is ``<model>-<port>``; their prestart commands share it."""
    policies = {"tiny-7001": {"limits": {"memory": "96M", "pids": 32}}}
    manager = make_manager(tmp_path, tree, policies)
    runner = ModelServiceRunner(ServiceManagerLauncher(manager), manager.bus, probe_host="127.0.0.1")
    marker = tmp_path / "prestart-cgroup"
    info = {
        "name": "tiny",
        "model_path": str(tmp_path),
        "service": {
            "pre_start_actions": [{"action": "run_command", "args": {
                "command": ["/bin/sh", "-c", f"cat /proc/self/cgroup > {marker}"]}}],
            "start_command": [sys.executable, "-c", IDLE],
            "port": 7001,
        },
    }
    try:
        assert (await runner.start_model(info))["status"] == "started"
        pid = manager.status("tiny-7001")["pid"]
        leaf = manager.service_cgroups.leaves["tiny-7001"]
        assert pid in leaf.members()
        assert leaf.limits() == Limits(96 << 20, None, 32)
        assert "/service-tiny-7001" in marker.read_text()
    finally:
        await runner.stop_all()
        await manager.close()
    assert not any(os.path.exists(d) for d in leaf.unique_dirs)


# -- without cgroups, and bad policies ----------------------------------------------------------


async def test_limits_without_cgroups_warn_once_and_start(tmp_path, caplog):
    manager = make_manager(tmp_path, None, {"idle": {"limits": {"memory": "64M"}}})
    try:
        with caplog.at_level(logging.WARNING):
            for _ in range(2):
                assert (await manager.start_service({"name": "idle"}))["status"] in ("started", "running")
                await manager.shutdown_service("idle")
        warnings = [r.getMessage() for r in caplog.records if "not enforced" in r.getMessage()]
        assert warnings == ["service idle: limits (memory 64 MiB) are not enforced: this kernel has no cgroups "
                            "(see docs/limits.md)"]
        assert manager.status("idle")["cgroup"] is None
    finally:
        await manager.close()


async def test_a_cgroup_that_cannot_be_made_warns_once_and_starts(tmp_path, caplog):
    """No permission (here: a parent that is no folder) is never a failed start."""
    layout = Layout(1, {"memory": "/dev/null"}, {"memory": "/dev/null/cgroups"})
    manager = make_manager(tmp_path, KernelCgroups(layout, "k-nowhere"), {"idle": {"limits": {"memory": "64M"}}})
    try:
        with caplog.at_level(logging.WARNING):
            for _ in range(2):
                result = await manager.start_service({"name": "idle"})
                assert result["status"] == "started", result
                await manager.shutdown_service("idle")
        warnings = [r.getMessage() for r in caplog.records if "cannot make its cgroup" in r.getMessage()]
        assert len(warnings) == 1 and warnings[0].startswith("service idle: cannot make its cgroup (")
        assert "its limits (memory 64 MiB) are not enforced" in warnings[0]
    finally:
        await manager.close()


@pytest.mark.parametrize(
    ("limits", "problem"),
    [
        ({"memory": "lots"}, "service_policies['idle'].limits.memory_limit: 'lots' is not a size"),
        ({"memory": "64M", "disk": "1G"}, "service_policies['idle'].limits: unknown limit disk"),
        ({"cpu": "half"}, "service_policies['idle'].limits.cpu_limit/pids_limit: not a number"),
        ("64M", "service_policies['idle'].limits: must be an object"),
    ],
)
async def test_bad_limits_policy_fails_the_start_naming_service_and_field(tmp_path, limits, problem):
    manager = make_manager(tmp_path, None, {"idle": {"limits": limits}})
    try:
        result = await manager.start_service({"name": "idle"})
        assert result["status"] == "failed" and problem in result["error"], result
        assert manager.status("idle")["status"] == "failed"  # not left "starting" (a retry is not "running")
        assert (await manager.start_service({"name": "idle"}))["status"] == "failed"
    finally:
        await manager.close()



# -- a kernel's services ----------------------------------------------------------------------


@pytest.mark.kernel
async def test_kernel_service_over_its_limit_is_reported_and_the_kernel_is_untouched(tmp_path):
    make_tree().remove()  # skips where no cgroup can be made
    home = tmp_path / "home"
    home.mkdir()
    (home / "hog.py").write_text(HOG)
    defs = write_definitions(tmp_path / "defs", hog=["{runtime_path}", "{home}/hog.py", "{home}/go"])
    async with running_kernel("backend-python", service_defs_dir=defs, autostart_services=["hog"],
                              service_policies={"hog": {"limits": {"memory": "64M"}}}, cwd=str(home)) as (km, kc):
        provisioner = km.provisioner
        tree = provisioner.limits.tree
        assert tree is not None, "the provisioner made no cgroup tree for the kernel"
        assert (await run_cell(kc, "state = 6 * 7"))["reply"]["status"] == "ok"
        hog = provisioner.sidecar.manager.status("hog")
        assert hog["status"] == "running", hog
        assert memory_cgroup_of(hog["pid"]).endswith("/service-hog")
        assert memory_cgroup_of(provisioner.pid).endswith("/kernel")

        sub = provisioner.subscribe_events()
        try:
            (home / "go").touch()
            events = await events_until(sub, lambda e: e.get("name") == "hog" and e.get("status") == "exited")
            oom = [e for e in events if e.get("type") == "oom"]
            oom = oom or [await asyncio.wait_for(sub.__anext__(), EVENT_WAIT)]
        finally:
            await sub.aclose()
        assert events[-1]["reason"] == "out of memory" and "limit 64 MiB" in events[-1]["message"]
        assert oom[-1]["service"] == "hog" and oom[-1]["memory_limit"] == 64 << 20

        # the kernel was not touched: its state is there, its own cgroup saw no OOM kill
        reply = await run_cell(kc, "print(state)")
        assert reply["reply"]["status"] == "ok" and reply["stdout"].strip() == "42"
        assert provisioner.limits.cgroup.oom_kills() == 0
        leaf_dirs = tree.root.child("service-hog").unique_dirs
    assert not any(os.path.exists(d) for d in [*leaf_dirs, *tree.root.unique_dirs])
