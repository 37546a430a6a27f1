"""What a kernel's pod says about itself, in the words of the container provisioners (:class:`ContainerState`).

Read from ``status``: the pod's phase, its ``PodScheduled`` condition, and the
``kernel`` container's state. The reason a pod ended is taken where Kubernetes
puts it: the container's ``terminated.reason`` for ``OOMKilled`` (the kernel's
memory limit), the pod's own ``reason``/``message`` for ``Evicted`` (the node ran
short) or ``DeadlineExceeded``, else the container's reason and exit code. A
pending pod names what it waits for; some of those reasons never pass by
themselves and fail the start at once (enterprise_gateway#1357).
"""

from __future__ import annotations

from typing import Any

from backend_kernel_provisioner.remote.container import ContainerState
from backend_kernel_provisioner.remote.pod_manifest import KERNEL_CONTAINER

#: Pending reasons that fail a start at once (a pod's ``PodScheduled`` condition or its container's waiting reason).
FAIL_FAST_REASONS = ("Unschedulable", "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
                     "CreateContainerConfigError", "CreateContainerError")

def pod_state(pod: Any, fail_fast_reasons: set[str]) -> ContainerState:
    """A pod's status in the provisioner's words: why it ended, or why it is still pending."""
    status = pod.status
    phase = (status.phase if status else None) or "Pending"
    kernel = _kernel_status(status)
    terminated = kernel.state.terminated if kernel is not None and kernel.state else None
    if terminated is None and phase in ("Failed", "Succeeded") and kernel is not None and kernel.last_state:
        terminated = kernel.last_state.terminated
    details = {"phase": phase, "pod_reason": status.reason if status else None}
    if phase in ("Failed", "Succeeded") or terminated is not None:
        exit_code = terminated.exit_code if terminated is not None else None
        container_reason = terminated.reason if terminated is not None else ""
        if container_reason == "OOMKilled":
            reason, message = "OOMKilled", (terminated.message or "") if terminated is not None else ""
        elif status.reason:  # Evicted, DeadlineExceeded, NodeLost, ...
            reason, message = status.reason, status.message or ""
        else:
            reason = container_reason or ("Completed" if phase == "Succeeded" or exit_code == 0 else "Error")
            message = (terminated.message or "") if terminated is not None else (status.message or "")
        return ContainerState("terminated", reason=reason, message=message, exit_code=exit_code, details=details)
    if phase == "Running" and status.pod_ip:
        return ContainerState("running", ip=status.pod_ip, node_ip=status.host_ip, details=details)
    waiting = kernel.state.waiting if kernel is not None and kernel.state else None
    if waiting is not None and waiting.reason and waiting.reason != "ContainerCreating":
        reason, message = waiting.reason, waiting.message or ""
    else:
        unscheduled = next((c for c in status.conditions or [] if c.type == "PodScheduled" and c.status == "False"),
                           None) if status else None
        reason = (unscheduled.reason or "") if unscheduled is not None else phase.lower()
        message = (unscheduled.message or "") if unscheduled is not None else ""
    return ContainerState("pending", reason=reason, message=message, fail_fast=reason in fail_fast_reasons,
                          details=details)


def _kernel_status(status: Any) -> Any:
    statuses = (status.container_statuses if status else None) or []
    return next((s for s in statuses if s.name == KERNEL_CONTAINER), statuses[0] if statuses else None)
