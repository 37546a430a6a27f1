"""``backend-kubernetes-provisioner``: kernels in Kubernetes pods, on gateway_provisioners' ``KubernetesProvisioner``.

One pod per kernel from our pod template (:mod:`backend_kernel_provisioner.remote.pod_manifest`):
the launcher is its container's command, the kernel, services and model servers
its children. What changes from the stock provisioner:

* the module imports anywhere; the cluster's configuration is loaded at the first
  launch, from traits (:mod:`backend_kernel_provisioner.remote.kube_cluster`), and every API
  call runs in a worker thread;
* a pod stuck ``Pending`` for a reason that will not pass by itself (unschedulable,
  an image that cannot be pulled, a bad configuration) fails the start at once
  with that reason, instead of after the launch timeout (enterprise_gateway#1357);
* why a pod ended (``OOMKilled``, ``Evicted`` and its message, an exit code) is
  read **before** the pod is deleted and reported (log, ``kernel-terminated`` and
  ``oom`` events); when the launcher went silent while the pod still looks
  running, the kubelet is given ``termination_read_timeout`` seconds to say why;
* a restart keeps the pod (only the kernel child restarts) unless the pod died.

Namespaces follow gateway_provisioners: the kernel's ``KERNEL_NAMESPACE`` (it
must exist), else the shared ``pod_namespace``, else (``shared_namespace``
false) a namespace per kernel, made at its first launch and deleted with it.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from traitlets import Bool, Dict, Enum, Float, Int, List, Unicode, default

from backend_kernel_provisioner.remote import kube_cluster
from backend_kernel_provisioner.remote.container import BackendContainerMixin, ContainerState
from backend_kernel_provisioner.remote.pod_manifest import (
    PodRequest,
    check_request_within_limit,
    cpu_quantity,
    host_path_mounts,
    memory_quantity,
    pod_manifest,
)
from backend_kernel_provisioner.remote.pod_status import FAIL_FAST_REASONS, pod_state
from backend_kernel_provisioner.remote.provisioner import RemoteKernelError

with kube_cluster.config_loaders_idle():
    from gateway_provisioners.k8s import KubernetesProvisioner

def _env_json(name: str, fallback: Any) -> Any:
    text = os.environ.get(name, "").strip()
    if not text:
        return fallback
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{name} is not JSON: {exc}") from None


class BackendKubernetesProvisioner(BackendContainerMixin, KubernetesProvisioner):
    """A kernel in its own pod; services and model servers next to it in the same container."""

    cluster_config = Enum(
        list(kube_cluster.CONFIG_SOURCES), "auto", config=True,
        help="Where the cluster's address and credentials come from: 'in-cluster' (the server's pod's service "
        "account), 'kubeconfig' (the file kubeconfig, context kube_context) or 'auto' (in-cluster, then kubeconfig) "
        "(env: BACKEND_KUBE_CONFIG_SOURCE; GP_USE_INCLUSTER_CONFIG=true/false is honoured; default auto).")
    kubeconfig = Unicode(
        config=True, help="Kubeconfig file(s), ':'-separated as for kubectl (env: BACKEND_KUBECONFIG, then "
        "KUBECONFIG; default ~/.kube/config).")
    kube_context = Unicode(
        config=True, help="Context of the kubeconfig to use (env: BACKEND_KUBE_CONTEXT; default: its current one).")
    pod_namespace = Unicode(
        "default", config=True, help="Namespace of the kernel pods when the kernel's env has no KERNEL_NAMESPACE and "
        "namespaces are shared (env: GP_NAMESPACE; default 'default').")
    shared_namespace = Bool(
        True, config=True, help="Put the pods in pod_namespace; false: a namespace per kernel, named as its pod, "
        "made at the first launch and deleted at shutdown (env: GP_SHARED_NAMESPACE; default true).")
    kernel_cluster_role = Unicode(
        config=True, help="With a namespace per kernel: a ClusterRole bound to the kernel's service account there "
        "(env: BACKEND_KERNEL_CLUSTER_ROLE; default: none — gateway_provisioners binds cluster-admin).")
    service_account_name = Unicode(
        "default", config=True, help="Service account of the kernel pods; the kernel's KERNEL_SERVICE_ACCOUNT_NAME "
        "wins (env: GP_DEFAULT_KERNEL_SERVICE_ACCOUNT_NAME; default 'default').")
    mount_service_account_token = Bool(
        config=True, help="Mount the service account's API token into the pod; kernels run users' code and do not "
        "need it (env: BACKEND_MOUNT_SERVICE_ACCOUNT_TOKEN; default false).")
    memory_request = Unicode(
        config=True, help="Memory the scheduler reserves for the pod, e.g. 1Gi (env: BACKEND_MEMORY_REQUEST; default: "
        "as memory_limit, Kubernetes' rule). Docker-style sizes (512m, 2g) are read as Mi, Gi.")
    cpu_request = Float(
        config=True, help="CPUs the scheduler reserves for the pod (env: BACKEND_CPU_REQUEST; 0: as cpu_limit).")
    gpu_limit = Int(
        config=True, help="GPUs of the pod, as the extended resource gpu_resource (env: BACKEND_GPU_LIMIT; 0: none).")
    gpu_resource = Unicode(
        "nvidia.com/gpu", config=True, help="Resource name of a GPU (env: BACKEND_GPU_RESOURCE; default "
        "nvidia.com/gpu; amd.com/gpu, gpu.intel.com/i915, ...).")
    image_pull_policy = Enum(
        ["IfNotPresent", "Always", "Never", ""], "IfNotPresent", config=True,
        help="When the node pulls the kernel image (env: BACKEND_IMAGE_PULL_POLICY; default IfNotPresent: an image "
        "tagged ':latest' would otherwise be pulled every time, and a locally loaded one never found).")
    image_pull_secrets = List(
        Unicode(), config=True, help="Secrets with registry credentials (env: BACKEND_IMAGE_PULL_SECRETS, "
        "comma-separated).")
    node_selector = Dict(
        value_trait=Unicode(), config=True, help="Node labels the pod requires (env: BACKEND_NODE_SELECTOR, JSON).")
    tolerations = List(
        Dict(), config=True, help="Tolerations of the pod, as in its spec (env: BACKEND_TOLERATIONS, JSON list).")
    volumes = List(
        Dict(), config=True, help="Volumes of the pod as in its spec (a ConfigMap of service definitions, a "
        "PersistentVolumeClaim; env: BACKEND_POD_VOLUMES, JSON); 'mounts' adds hostPath volumes.")
    volume_mounts = List(
        Dict(), config=True, help="Mounts of those volumes into the kernel's container "
        "(env: BACKEND_POD_VOLUME_MOUNTS, JSON).")
    fail_fast_reasons = List(
        Unicode(), list(FAIL_FAST_REASONS), config=True, help="Reasons of a Pending pod that fail the start at once "
        "(env: BACKEND_POD_FAIL_FAST_REASONS, comma-separated); drop Unschedulable where an autoscaler adds nodes.")
    termination_read_timeout = Float(
        5.0, config=True, help="Seconds to wait for the kubelet to say why a pod's launcher went silent, before the "
        "pod is deleted (env: BACKEND_TERMINATION_READ_TIMEOUT; default 5).")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._init_container_state()
        self._api_client: client.ApiClient | None = None
        self._service_account = ""
        self._namespace_to_create = False
        self._launcher_lost = False
        self._launched = False
        self.manifest: dict[str, Any] | None = None

    # -- defaults from the environment ---------------------------------------------------------

    @default("cluster_config")
    def _default_cluster_config(self) -> str:
        return kube_cluster.default_config_source()

    @default("kubeconfig")
    def _default_kubeconfig(self) -> str:
        return kube_cluster.default_kubeconfig()

    @default("kube_context")
    def _default_kube_context(self) -> str:
        return os.environ.get("BACKEND_KUBE_CONTEXT", "")

    @default("pod_namespace")
    def _default_pod_namespace(self) -> str:
        return os.environ.get("GP_NAMESPACE", "default")

    @default("shared_namespace")
    def _default_shared_namespace(self) -> bool:
        return os.environ.get("GP_SHARED_NAMESPACE", "true").lower() == "true"

    @default("kernel_cluster_role")
    def _default_kernel_cluster_role(self) -> str:
        return os.environ.get("BACKEND_KERNEL_CLUSTER_ROLE", "")

    @default("service_account_name")
    def _default_service_account_name(self) -> str:
        return os.environ.get("GP_DEFAULT_KERNEL_SERVICE_ACCOUNT_NAME", "default")

    @default("mount_service_account_token")
    def _default_mount_service_account_token(self) -> bool:
        return os.environ.get("BACKEND_MOUNT_SERVICE_ACCOUNT_TOKEN", "false").lower() == "true"

    @default("memory_request")
    def _default_memory_request(self) -> str:
        return os.environ.get("BACKEND_MEMORY_REQUEST", "")

    @default("cpu_request")
    def _default_cpu_request(self) -> float:
        return float(os.environ.get("BACKEND_CPU_REQUEST") or 0)

    @default("gpu_limit")
    def _default_gpu_limit(self) -> int:
        return int(os.environ.get("BACKEND_GPU_LIMIT") or 0)

    @default("gpu_resource")
    def _default_gpu_resource(self) -> str:
        return os.environ.get("BACKEND_GPU_RESOURCE", "nvidia.com/gpu")

    @default("image_pull_policy")
    def _default_image_pull_policy(self) -> str:
        return os.environ.get("BACKEND_IMAGE_PULL_POLICY", "IfNotPresent")

    @default("image_pull_secrets")
    def _default_image_pull_secrets(self) -> list[str]:
        return [s.strip() for s in os.environ.get("BACKEND_IMAGE_PULL_SECRETS", "").split(",") if s.strip()]

    @default("node_selector")
    def _default_node_selector(self) -> dict[str, str]:
        return dict(_env_json("BACKEND_NODE_SELECTOR", {}))

    @default("tolerations")
    def _default_tolerations(self) -> list[dict[str, Any]]:
        return list(_env_json("BACKEND_TOLERATIONS", []))

    @default("volumes")
    def _default_volumes(self) -> list[dict[str, Any]]:
        return list(_env_json("BACKEND_POD_VOLUMES", []))

    @default("volume_mounts")
    def _default_volume_mounts(self) -> list[dict[str, Any]]:
        return list(_env_json("BACKEND_POD_VOLUME_MOUNTS", []))

    @default("fail_fast_reasons")
    def _default_fail_fast_reasons(self) -> list[str]:
        chosen = os.environ.get("BACKEND_POD_FAIL_FAST_REASONS")
        return [r.strip() for r in chosen.split(",") if r.strip()] if chosen is not None else list(FAIL_FAST_REASONS)

    @default("termination_read_timeout")
    def _default_termination_read_timeout(self) -> float:
        return float(os.environ.get("BACKEND_TERMINATION_READ_TIMEOUT") or 5)

    # -- the cluster ---------------------------------------------------------------------------

    def _client(self) -> client.ApiClient:
        """This provisioner's cluster (its configuration loaded on first use; blocking)."""
        if self._api_client is None:
            self._api_client = kube_cluster.make_api_client(self.cluster_config, self.kubeconfig, self.kube_context)
        return self._api_client

    def _core(self) -> Any:
        return client.CoreV1Api(self._client())

    def _determine_kernel_namespace(self, **kwargs: Any) -> str:
        """gateway_provisioners' rules, from traits; a namespace of the kernel's own is made later, with its pod
        (the stock code makes it here, on the event loop)."""
        env = kwargs["env"]
        self._service_account = env.get("KERNEL_SERVICE_ACCOUNT_NAME") or self.service_account_name
        env["KERNEL_SERVICE_ACCOUNT_NAME"] = self._service_account
        namespace = env.get("KERNEL_NAMESPACE")
        if not namespace:
            namespace = self.pod_namespace if self.shared_namespace else str(self.kernel_pod_name)
            self._namespace_to_create = not self.shared_namespace and not self.delete_kernel_namespace
            env["KERNEL_NAMESPACE"] = namespace
        return str(namespace)

    # -- the pod -------------------------------------------------------------------------------

    def pod_request(self, cmd: list[str], env: dict[str, str]) -> PodRequest:
        """What the pod is made of, from the traits and the kernel's environment."""
        uid, gid = self.container_user(env)
        try:
            user, group = int(uid), int(gid)
        except ValueError:
            raise RemoteKernelError(f"KERNEL_UID/KERNEL_GID must be numbers in a pod, not {uid!r}/{gid!r}") from None
        limits: dict[str, str] = {}
        requests: dict[str, str] = {}
        if self.memory_limit:
            limits["memory"] = memory_quantity(self.memory_limit, "memory_limit")
        if self.memory_request:
            requests["memory"] = memory_quantity(self.memory_request, "memory_request")
        if self.cpu_limit:
            limits["cpu"] = cpu_quantity(self.cpu_limit)
        if self.cpu_request:
            requests["cpu"] = cpu_quantity(self.cpu_request)
        if self.gpu_limit:
            limits[self.gpu_resource] = str(self.gpu_limit)  # extended resources: the request follows the limit
        for kind in ("memory", "cpu"):
            check_request_within_limit(kind, requests.get(kind, ""), limits.get(kind, ""))
        if self.pids_limit:
            self.log.warning("kernel %s: pids_limit has no per-pod setting in Kubernetes (the kubelet's "
                             "podPidsLimit applies); ignored", self.kernel_id)
        host_volumes, host_mounts = host_path_mounts(self.mounts)
        return PodRequest(
            name=str(self.kernel_pod_name), namespace=str(self.kernel_namespace), labels=self.container_labels(),
            image=self.image_name, command=list(cmd), env=self.container_environment(env), uid=user, gid=group,
            working_dir=self.container_working_dir, requests=requests, limits=limits,
            service_account_name=self._service_account or self.service_account_name,
            mount_service_account_token=self.mount_service_account_token,
            image_pull_policy=self.image_pull_policy, image_pull_secrets=list(self.image_pull_secrets),
            node_selector=dict(self.node_selector), tolerations=list(self.tolerations),
            volumes=[*host_volumes, *self.volumes], volume_mounts=[*host_mounts, *self.volume_mounts],
            termination_grace_seconds=max(int(self.container_stop_timeout), 0),
        )

    def _create_container(self, cmd: list[str], env: dict[str, str]) -> None:
        request = self.pod_request(cmd, env)
        core = self._core()
        if self._namespace_to_create:
            kube_cluster.create_namespace(self._client(), request.namespace, request.labels,
                                          request.service_account_name,
                                          self.kernel_cluster_role)
            self._namespace_to_create, self.delete_kernel_namespace = False, True
            self.log.info("kernel %s: created its namespace %s", self.kernel_id, request.namespace)
        self.manifest = pod_manifest(request)
        self.container_name = request.name
        try:
            core.create_namespaced_pod(namespace=request.namespace, body=self.manifest)
        except ApiException as exc:
            if exc.status != 409:
                raise
            self._remove_leftover_pod(core)  # the pod of a previous launch, still being deleted
            core.create_namespaced_pod(namespace=request.namespace, body=self.manifest)

    def _remove_leftover_pod(self, core: Any) -> None:
        """A pod of this name exists: if it is this kernel's (a previous launch's, deleted but not yet gone),
        wait until it is gone; anything else is an error, not something to delete."""
        pod = core.read_namespaced_pod(name=self.container_name, namespace=self.kernel_namespace)
        labels = (pod.metadata.labels or {}) if pod.metadata else {}
        if labels.get("kernel_id") != str(self.kernel_id):
            raise RemoteKernelError(f"a pod named {self.container_name} already exists in namespace "
                                    f"{self.kernel_namespace} and is not this kernel's (set KERNEL_POD_NAME)")
        self.log.info("kernel %s: waiting for its previous pod %s to go", self.kernel_id, self.container_name)
        self._delete_container()
        deadline = time.monotonic() + self.launch_timeout
        while self._container_state().phase != "gone":
            if time.monotonic() > deadline:
                raise RemoteKernelError(f"the previous pod {self.container_name} of kernel {self.kernel_id} was "
                                        f"not gone within {self.launch_timeout} s")
            time.sleep(0.2)

    def _container_state(self) -> ContainerState:
        if self.container_name is None:
            return ContainerState("gone", reason="deleted")
        try:
            pod = self._core().read_namespaced_pod(name=self.container_name, namespace=self.kernel_namespace)
        except ApiException as exc:
            if exc.status == 404:
                return ContainerState("gone", reason="deleted")
            return ContainerState("pending", message=f"API: {exc.status} {exc.reason}")
        return pod_state(pod, set(self.fail_fast_reasons))

    def _stop_container(self, timeout: float) -> None:
        """The kubelet sends SIGTERM, then SIGKILL after ``timeout`` s; the pod is deleted once it stopped."""
        self._delete_pod(max(int(timeout), 0))

    def _delete_container(self) -> None:
        self._delete_pod(0)

    def _delete_pod(self, grace: int) -> None:
        if self.container_name is None:
            return
        body = client.V1DeleteOptions(grace_period_seconds=grace, propagation_policy="Background")
        try:
            self._core().delete_namespaced_pod(name=self.container_name, namespace=self.kernel_namespace, body=body)
        except ApiException as exc:
            if exc.status != 404:
                raise

    # -- a launcher that went silent; the end --------------------------------------------------

    async def _stop_launcher(self) -> None:
        self._launcher_lost = self.channel is not None and not self.channel.alive
        await super()._stop_launcher()

    async def _kill_launcher(self) -> None:
        """The launcher went silent but the pod looks alive: the kubelet may not have said why yet (its status
        lags the container's end); wait for its verdict a little, as deleting the pod loses it."""
        if self._launcher_lost and self.termination is None and self.container_name is not None:
            deadline = time.monotonic() + self.termination_read_timeout
            while (await asyncio.to_thread(self._container_state)).phase == "running":
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
        await super()._kill_launcher()

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> dict[str, Any]:
        info = await super().launch_kernel(cmd, **kwargs)
        self._launched = True
        return info

    async def _abort_launch(self, exc: BaseException) -> None:
        await super()._abort_launch(exc)
        if self.delete_kernel_namespace and (self._abandoned or not self._launched):
            await self._delete_namespace()  # the kernel never started, or is being shut down: its namespace goes too

    async def cleanup(self, restart: bool = False) -> None:
        launching = self._launching
        await super().cleanup(restart=restart)
        if not restart and not launching and self.delete_kernel_namespace:
            await self._delete_namespace()

    async def _delete_namespace(self) -> None:
        namespace, self.delete_kernel_namespace = str(self.kernel_namespace), False
        try:
            await asyncio.to_thread(kube_cluster.delete_namespace, self._client(), namespace)
            self.log.info("kernel %s: deleted its namespace %s", self.kernel_id, namespace)
        except ApiException as exc:
            if exc.status != 404:
                self.log.warning("kernel %s: could not delete its namespace %s: %s", self.kernel_id, namespace, exc)
