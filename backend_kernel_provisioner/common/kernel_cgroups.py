"""One kernel's cgroups: the kernel's own, and a sibling per service, under one directory named after
the kernel and the server process that owns it.

Why siblings: a runaway TensorBoard hits its own memory limit, not the
notebook's; the kernel's limit holds the kernel and every program its cells
start (they inherit its cgroup). Why the owner in the name
(``bkp-<pid>-<start>-<kernel id>``, the prefix of our launch markers): when the
server dies by SIGKILL, its reaper (and the next server's first launch) can tell
which trees have no owner any more and remove them, as it does for processes and
temp folders (:mod:`.leftovers`).
"""

from __future__ import annotations

import os
import re

from backend_kernel_provisioner.common import leftovers
from backend_kernel_provisioner.common.cgroups import Cgroup, Layout, detect_layout
from backend_kernel_provisioner.common.resource_limits import Limits

ROOT_PREFIX = "bkp-"
_OWNED = re.compile(r"bkp-(\d+)-(\d+)-[0-9A-Za-z_.-]+")
#: How deep below a hierarchy's mount the sweep looks for our trees (a configured parent is rarely deeper).
SWEEP_DEPTH = 6


class KernelCgroups:
    """The tree of one kernel: ``<parent>/bkp-<owner>-<kernel id>/{kernel,service-<name>}``."""

    def __init__(self, layout: Layout, kernel_id: str, parent: str = "") -> None:
        self.layout = layout
        name = f"{ROOT_PREFIX}{leftovers.owner_prefix()}{_safe(kernel_id) or 'kernel'}"
        self.parent = Cgroup(layout.version, layout.parent_dirs(parent))
        self.root = self.parent.child(name)

    @classmethod
    def for_kernel(cls, kernel_id: str, parent: str = "") -> KernelCgroups:
        """The kernel's tree on this machine's layout (OSError where the machine has no cgroups)."""
        layout = detect_layout()
        if layout is None:
            raise OSError("no cgroup hierarchy with a memory controller is mounted")
        return cls(layout, kernel_id, parent)

    def leaf(self, name: str, limits: Limits) -> Cgroup:
        """``kernel`` or ``service-<name>``, made (or its limits rewritten) with ``limits``.

        A v2 parent must hand its controllers down: done for our own root; the configured parent (or the
        server's own cgroup) must already have them, else OSError (EBUSY: the server runs in it)."""
        if self.layout.version == 2 and not os.path.isdir(self.root.unique_dirs[0]):
            self.parent.enable_controllers()
            self.root.create(Limits(), controllers_for_children=True)
        else:
            self.root.create(Limits())
        cgroup = self.root.child(_safe(name))
        cgroup.create(limits)
        return cgroup

    def kernel(self, limits: Limits) -> Cgroup:
        return self.leaf("kernel", limits)

    def service(self, service_name: str, limits: Limits) -> Cgroup:
        return self.leaf(f"service-{service_name}", limits)

    def remove(self) -> bool:
        """Kill whatever is left in the tree and remove it; False when a directory stayed."""
        return self.root.remove()


def _safe(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z_.-]", "_", name)[:80]


def stale_trees(layout: Layout | None = None) -> list[Cgroup]:
    """Our kernel trees whose owning server process is gone, in every hierarchy."""
    layout = layout or detect_layout()
    if layout is None:
        return []
    found: dict[str, Cgroup] = {}
    mounts = {mount: controller for controller, mount in layout.mounts.items()}  # v2: one tree, walked once
    for mount, controller in mounts.items():
        for folder in _owned_dirs(mount):
            match = _OWNED.fullmatch(os.path.basename(folder))
            if match and not leftovers.owner_alive(int(match[1]), int(match[2])):
                found.setdefault(folder, Cgroup(layout.version, {controller: folder}))
    return list(found.values())


def _owned_dirs(mount: str) -> list[str]:
    found, todo = [], [(mount, 0)]
    while todo:
        folder, depth = todo.pop()
        try:
            entries = [e for e in os.scandir(folder) if e.is_dir(follow_symlinks=False)]
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith(ROOT_PREFIX):
                found.append(entry.path)
            elif depth < SWEEP_DEPTH:
                todo.append((entry.path, depth + 1))
    return found


def sweep_stale_cgroups() -> list[str]:
    """Kill what is left in trees of dead owners and remove them (blocking; the reaper and the first launch)."""
    removed = []
    for cgroup in stale_trees():
        cgroup.remove()
        removed.extend(cgroup.unique_dirs)
    return removed
