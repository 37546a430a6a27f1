"""Limits as values, and the two cgroup layouts (issue 20), without a kernel.

This machine has cgroup v1 (hybrid); v2 is read here from files shaped as the kernel writes them (a fake
``/proc/self`` and a fake cgroup directory), so that the v2 writer and the layout detection are checked
on every machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from traitlets import TraitError

from backend_kernel_provisioner.common.cgroups import Cgroup, detect_layout
from backend_kernel_provisioner.common.resource_limits import Limits, format_bytes, parse_memory
from backend_kernel_provisioner.remote.container import CONTAINER_ENFORCED
from backend_kernel_provisioner.server.traits import BackendProvisionerTraits


@pytest.mark.parametrize(("text", "expected"), [
    ("128M", 128 << 20), ("128Mi", 128 << 20), ("512m", 512 << 20), ("2g", 2 << 30), ("1.5G", 3 << 29),
    ("2GiB", 2 << 30), (str(64 << 20), 64 << 20), ("", None), ("0", None), (0, None),
])
def test_sizes_read_the_way_docker_and_kubernetes_write_them(text, expected) -> None:
    assert parse_memory(text) == expected


@pytest.mark.parametrize("text", ["lots", "12 apples", "-5M", "1M"])
def test_a_bad_size_is_refused_naming_the_setting(text) -> None:
    with pytest.raises(ValueError, match="memory_limit"):
        parse_memory(text)


def test_limits_describe_themselves_in_binary_units() -> None:
    assert Limits.of("128M", 0.5, 64).describe() == "memory 128 MiB, cpu 0.5, pids 64"
    assert Limits.of("1.5G").describe() == "memory 1.5 GiB"
    assert not Limits.of("", 0, 0) and Limits().describe() == "no limits"
    assert format_bytes(900 << 10) == "900 KiB" and format_bytes(None) == "unknown"
    with pytest.raises(ValueError, match=r"service_policies\['x'\]\.limits: unknown limit swap"):
        Limits.from_mapping({"memory": "64M", "swap": "1G"}, "service_policies['x'].limits")


def test_the_trait_refuses_a_bad_size_and_takes_the_environment_default(monkeypatch) -> None:
    with pytest.raises(TraitError, match="memory_limit: 'lots'"):
        BackendProvisionerTraits(memory_limit="lots")
    monkeypatch.setenv("BACKEND_MEMORY_LIMIT", "256M")
    monkeypatch.setenv("BACKEND_CPU_LIMIT", "1.5")
    monkeypatch.setenv("BACKEND_PIDS_LIMIT", "100")
    assert BackendProvisionerTraits().resource_limits() == Limits(256 << 20, 1.5, 100)


def test_container_kernels_leave_the_limits_to_the_engine() -> None:
    """The launcher inside a container is not told the limits: the container has them already."""
    assert {"memory_limit", "cpu_limit", "pids_limit"} <= CONTAINER_ENFORCED


def _fake_proc(root: Path, mountinfo: str, cgroup: str) -> str:
    proc = root / "proc"
    proc.mkdir()
    (proc / "mountinfo").write_text(mountinfo)
    (proc / "cgroup").write_text(cgroup)
    return str(proc)


def test_a_v2_machine_is_read_as_v2(tmp_path: Path) -> None:
    unified = tmp_path / "cg"
    (unified / "user.slice").mkdir(parents=True)
    (unified / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    proc = _fake_proc(tmp_path, f"30 23 0:26 / {unified} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
                      "0::/user.slice\n")
    layout = detect_layout(proc)
    assert layout is not None and layout.version == 2
    assert layout.own["memory"] == layout.own["pids"] == str(unified / "user.slice")
    assert layout.parent_dirs("/jupyter")["cpu"] == str(unified / "jupyter")


def test_a_hybrid_machine_uses_v1_where_v2_has_no_memory_controller(tmp_path: Path) -> None:
    (tmp_path / "unified").mkdir()
    (tmp_path / "unified" / "cgroup.controllers").write_text("hugetlb\n")
    mountinfo = "".join([
        f"40 30 0:30 / {tmp_path}/unified rw - cgroup2 cgroup2 rw\n",
        f"41 30 0:31 / {tmp_path}/memory rw - cgroup cgroup rw,memory\n",
        f"42 30 0:32 / {tmp_path}/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n",
        f"43 30 0:33 / {tmp_path}/pids rw - cgroup cgroup rw,pids\n",
    ])
    proc = _fake_proc(tmp_path, mountinfo, "4:memory:/jobs/7\n3:cpu,cpuacct:/\n2:pids:/\n0::/\n")
    layout = detect_layout(proc)
    assert layout is not None and layout.version == 1
    assert layout.own == {"memory": f"{tmp_path}/memory/jobs/7", "cpu": f"{tmp_path}/cpu,cpuacct",
                          "cpuacct": f"{tmp_path}/cpu,cpuacct", "pids": f"{tmp_path}/pids"}


def test_a_machine_without_a_memory_controller_has_no_layout(tmp_path: Path) -> None:
    proc = _fake_proc(tmp_path, "25 1 0:22 / /sys rw - sysfs sysfs rw\n", "0::/\n")
    assert detect_layout(proc) is None


def test_v2_limits_are_written_and_read_back_in_v2_files(tmp_path: Path) -> None:
    folder = tmp_path / "kernel"
    folder.mkdir()
    for name in ("memory.max", "memory.swap.max", "cpu.max", "pids.max"):
        (folder / name).write_text("max\n")
    (folder / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    (folder / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\n")
    cgroup = Cgroup(2, dict.fromkeys(("memory", "cpu", "cpuacct", "pids"), str(folder)))
    cgroup.apply(Limits.of("128M", 0.5, 64))
    assert (folder / "memory.max").read_text() == str(128 << 20)
    assert (folder / "memory.swap.max").read_text() == "0"
    assert (folder / "cpu.max").read_text() == "50000 100000"
    assert (folder / "pids.max").read_text() == "64"
    assert cgroup.limits() == Limits(128 << 20, 0.5, 64)
    assert cgroup.oom_kills() == 1 and cgroup.cpu_seconds() == 2.5
    cgroup.apply(Limits())
    assert cgroup.limits() == Limits() and (folder / "cpu.max").read_text() == "max 100000"


def test_v1_limits_on_this_machine_can_be_raised_and_lifted() -> None:
    """memory.memsw must never be below memory: raising a limit lifts memsw first (real cgroups, as root)."""
    from backend_kernel_provisioner.common.kernel_cgroups import KernelCgroups

    if detect_layout() is None:
        pytest.skip("no cgroup hierarchy with a memory controller on this machine")
    try:
        tree = KernelCgroups.for_kernel("raise-test")
        leaf = tree.kernel(Limits.of("64M", 0.25, 10))
    except OSError as exc:
        pytest.skip(f"cannot make a cgroup here ({exc}); run as root")
    try:
        assert leaf.limits() == Limits(64 << 20, 0.25, 10)
        assert tree.kernel(Limits.of("256M")).limits() == Limits(256 << 20)
        assert tree.kernel(Limits()).limits() == Limits()
    finally:
        assert tree.remove()
