"""Services in cgroups of their own: the sibling leaves of the kernel's, their limits, and out-of-memory news.

Why a sibling and not the kernel's cgroup: a runaway TensorBoard must hit its
own memory limit, not the notebook's, and a service must never count against
the kernel's limit. So every service (and model server) gets the leaf
``service-<name>`` of the kernel's tree (:class:`KernelCgroups`) whenever the
provisioner gave the manager one, with the limits of its policy
(``service_policies[NAME].limits``) or none. A missing cgroup is never a failed
start: the service runs without one, and a warning says so once.

Why the OOM counter: a service killed by the OOM killer exits with SIGKILL like
one killed by a person; only its cgroup's ``oom_kill`` count (read at each start
and again at its exit) tells the two apart, so the status event can say
"out of memory" to whoever watches the service.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from backend_kernel_provisioner.common.cgroups import Cgroup
from backend_kernel_provisioner.common.kernel_cgroups import KernelCgroups
from backend_kernel_provisioner.common.offload import in_worker
from backend_kernel_provisioner.common.resource_limits import Limits, format_bytes
from backend_kernel_provisioner.sidecar.services.definitions import ServiceDefinitionError

OOM_REASON = "out of memory"


def policy_limits(policies: Mapping[str, Mapping[str, Any]], name: str) -> Limits:
    """The ``limits`` of ``service_policies``: the service's own entry replaces ``"*"``'s, as ``restart`` does.

    A bad value is a :class:`ServiceDefinitionError` naming the policy entry and the field (the start fails
    with it, like a bad restart policy)."""
    limits = Limits()
    for key in ("*", name):
        conf = policies.get(key) or {}
        if "limits" not in conf:
            continue
        where = f"service_policies[{key!r}].limits"
        raw = conf["limits"]
        if not isinstance(raw, Mapping):
            raise ServiceDefinitionError(f"{where}: must be an object such as {{\"memory\": \"256M\", \"cpu\": 0.5}}")
        try:
            limits = Limits.from_mapping(dict(raw), where=where)
        except ValueError as exc:
            raise ServiceDefinitionError(str(exc)) from None
    return limits


class ServiceCgroups:
    """The leaves this manager made (removed when their service stops for good), and its once-only warnings."""

    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        self.leaves: dict[str, Cgroup] = {}
        self._warned: set[tuple[str, str]] = set()

    def _warn_once(self, topic: str, name: str, message: str) -> None:
        if (topic, name) not in self._warned:
            self._warned.add((topic, name))
            self.log.warning("service %s: %s", name, message)

    async def leaf(self, tree: KernelCgroups | None, name: str, limits: Limits) -> Cgroup | None:
        """The service's leaf with ``limits`` written (made now, or rewritten); None where there is none."""
        if tree is None:
            if limits:
                self._warn_once("unenforced", name, f"limits ({limits.describe()}) are not enforced: "
                                "this kernel has no cgroups (see docs/limits.md)")
            return None
        try:
            cgroup = await in_worker(tree.service, name, limits)
        except (OSError, ValueError) as exc:  # ValueError: a limit this machine's kernel refuses to write
            self._warn_once("no-cgroup", name, f"cannot make its cgroup ({exc}); started without one"
                            + (f", so its limits ({limits.describe()}) are not enforced" if limits else ""))
            return None
        self.leaves[name] = cgroup
        return cgroup

    async def remove(self, name: str) -> None:
        """The service stopped for good: kill what is left in its leaf and remove it."""
        cgroup = self.leaves.pop(name, None)
        if cgroup is not None and not await in_worker(cgroup.remove):
            self.log.warning("service %s: its cgroup %s could not be removed", name, cgroup.unique_dirs[0])

    async def remove_all(self) -> None:
        await asyncio.gather(*(self.remove(name) for name in list(self.leaves)))


async def oom_kills(cgroup: Cgroup | None) -> int:
    """The cgroup's OOM-kill count (0 without a cgroup), read off the event loop."""
    return 0 if cgroup is None else await in_worker(cgroup.oom_kills)


async def oom_report(cgroup: Cgroup | None, before: int) -> dict[str, Any] | None:
    """After an exit: ``{"reason", "message", "memory_limit", "peak"}`` when the OOM killer struck since
    ``before`` (the count at the start); None otherwise."""
    if cgroup is None or await oom_kills(cgroup) <= before:
        return None
    limit, peak = await in_worker(lambda: (cgroup.memory_limit(), cgroup.memory_peak()))
    message = f"killed: {OOM_REASON} (limit {format_bytes(limit)}, peak {format_bytes(peak)})"
    return {"reason": OOM_REASON, "message": message, "memory_limit": limit, "peak": peak}
