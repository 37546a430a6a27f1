"""Our kernel pod, as the plain dict the Kubernetes API takes (no template file to find or to render).

A pod per kernel, its one container ``kernel`` running our launcher (the kernel,
services and model servers are the launcher's children). What it asks for and
why:

* labels ``app``, ``component`` and ``kernel_id``: gateway_provisioners' and our
  lookups (and an operator's ``kubectl get pods -l app=backend-kernel``);
* ``restartPolicy: Never``: a kernel that died must be reported, not quietly
  restarted by the kubelet with its state lost;
* resources from the provisioner's traits; Docker-style memory sizes (``512m``,
  ``2g``) are translated, since Kubernetes reads ``512m`` as half a *byte*;
* a non-root user (``KERNEL_UID``/``KERNEL_GID``) without privilege escalation or
  capabilities, and the runtime's default seccomp profile: the "restricted" Pod
  Security Standard, so the pod is admitted in namespaces that enforce it;
* the kernel's environment only (the server's ``PATH`` and secrets never leave
  the server) and no service-account token unless asked for: user code runs here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from kubernetes.utils import parse_quantity

from backend_kernel_provisioner.remote.container import parse_mount
from backend_kernel_provisioner.remote.provisioner import RemoteKernelError

#: The name of the kernel's container in the pod.
KERNEL_CONTAINER = "kernel"
#: Docker's memory sizes: binary units, any case, an optional ``b``.
_DOCKER_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)i?b?$", re.IGNORECASE)


@dataclass
class PodRequest:
    """Everything the pod template is made from (the provisioner fills it from its traits and the kernel's env)."""

    name: str
    namespace: str
    labels: dict[str, str]
    image: str
    command: list[str]
    env: dict[str, str]
    uid: int
    gid: int
    working_dir: str = ""
    requests: dict[str, str] = field(default_factory=dict)
    limits: dict[str, str] = field(default_factory=dict)
    service_account_name: str = ""
    mount_service_account_token: bool = False
    image_pull_policy: str = ""
    image_pull_secrets: list[str] = field(default_factory=list)
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    volume_mounts: list[dict[str, Any]] = field(default_factory=list)
    termination_grace_seconds: int = 10


def pod_manifest(request: PodRequest) -> dict[str, Any]:
    """The pod (``v1``, ``Pod``); empty settings are left out, as the API server would drop them."""
    security = {
        "runAsUser": request.uid, "runAsGroup": request.gid, "runAsNonRoot": True,
        "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
    }
    container: dict[str, Any] = {
        "name": KERNEL_CONTAINER,
        "image": request.image,
        "command": list(request.command),
        "env": [{"name": name, "value": value} for name, value in sorted(request.env.items())],
        "securityContext": security,
    }
    if request.image_pull_policy:
        container["imagePullPolicy"] = request.image_pull_policy
    if request.working_dir:
        container["workingDir"] = request.working_dir
    resources = {key: dict(value) for key, value in (("requests", request.requests), ("limits", request.limits))
                 if value}
    if resources:
        container["resources"] = resources
    if request.volume_mounts:
        container["volumeMounts"] = list(request.volume_mounts)
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [container],
        "securityContext": {
            "runAsUser": request.uid, "runAsGroup": request.gid, "fsGroup": request.gid, "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "automountServiceAccountToken": request.mount_service_account_token,
        "terminationGracePeriodSeconds": request.termination_grace_seconds,
    }
    optional = {
        "serviceAccountName": request.service_account_name,
        "imagePullSecrets": [{"name": name} for name in request.image_pull_secrets],
        "nodeSelector": dict(request.node_selector),
        "tolerations": list(request.tolerations),
        "volumes": list(request.volumes),
    }
    spec.update({key: value for key, value in optional.items() if value})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": request.name, "namespace": request.namespace, "labels": dict(request.labels)},
        "spec": spec,
    }


def memory_quantity(value: str, trait: str) -> str:
    """A memory size as Kubernetes reads it: its own quantities as they are (``512Mi``, ``1G``), Docker's
    binary sizes translated (``512m`` → ``512Mi``: Kubernetes' ``m`` is a thousandth)."""
    text = value.strip()
    docker = _DOCKER_SIZE.match(text)
    if docker and not _is_kubernetes_memory(text):
        number, unit = docker.groups()
        return f"{number}{unit.upper()}i" if unit else number
    if _is_kubernetes_memory(text):
        return text
    raise RemoteKernelError(
        f"{trait}: {value!r} is not a memory size (Kubernetes' 512Mi, 2Gi, 500M, or Docker's 512m, 2g)")


def _is_kubernetes_memory(text: str) -> bool:
    if text.endswith("m"):  # a valid quantity, but milli-bytes: surely Docker's megabytes
        return False
    try:
        parse_quantity(text)
    except ValueError:
        return False
    return True


def cpu_quantity(cpus: float) -> str:
    """CPUs in Kubernetes' canonical form, as the API server gives them back: ``2``, ``1500m``."""
    millis = round(cpus * 1000)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def check_request_within_limit(kind: str, requested: str, limit: str) -> None:
    """A request above its limit is refused by the API server with a terse 422; say it in the traits' words."""
    if requested and limit and parse_quantity(requested) > parse_quantity(limit):
        raise RemoteKernelError(f"{kind} request {requested} is above its limit {limit}: lower the request")


def host_path_mounts(mounts: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``SOURCE:TARGET[:ro]`` (the ``mounts`` trait shared with Docker) as ``hostPath`` volumes: folders of the
    *node*, which fits single-node clusters; elsewhere use ``volumes`` and ``volume_mounts`` (a ConfigMap,
    a PersistentVolumeClaim). Namespaces enforcing the "baseline" or "restricted" standard refuse hostPath."""
    volumes: list[dict[str, Any]] = []
    volume_mounts: list[dict[str, Any]] = []
    for index, spec in enumerate(mounts):
        source, target, read_only = parse_mount(spec)
        name = f"mount-{index}"
        volumes.append({"name": name, "hostPath": {"path": source, "type": "Directory"}})
        volume_mounts.append({"name": name, "mountPath": target, "readOnly": read_only})
    return volumes, volume_mounts
