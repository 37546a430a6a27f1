"""How ``backend-kubernetes-provisioner`` reaches its cluster: an API client per provisioner, made on first use.

gateway_provisioners loads the cluster's configuration when its ``k8s`` module
is *imported* (in-cluster, or ``~/.kube/config`` with ``GP_USE_INCLUSTER_CONFIG=false``),
so on a machine outside a cluster merely listing the installed provisioners
fails. We import it with the loaders idle and load the configuration ourselves
at the first launch, from traits (in-cluster, or a kubeconfig file and context),
into a client of our own instead of the process-wide default: two kernelspecs may
name two clusters.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from backend_kernel_provisioner.remote.provisioner import RemoteKernelError

#: Where the cluster's configuration comes from: ``auto`` tries in-cluster, then the kubeconfig file.
CONFIG_SOURCES = ("auto", "in-cluster", "kubeconfig")


@contextmanager
def config_loaders_idle() -> Iterator[None]:
    """While importing gateway_provisioners' ``k8s`` module: its import-time configuration load does nothing.
    (It skips that load itself only under pytest or Sphinx, by environment variables we must not fake.)"""
    saved = config.load_incluster_config, config.load_kube_config
    config.load_incluster_config = config.load_kube_config = _idle
    try:
        yield
    finally:
        config.load_incluster_config, config.load_kube_config = saved


def _idle(*args: Any, **kwargs: Any) -> None:
    return None


def default_config_source() -> str:
    """``BACKEND_KUBE_CONFIG_SOURCE``, else gateway_provisioners' ``GP_USE_INCLUSTER_CONFIG`` if set, else auto."""
    chosen = os.environ.get("BACKEND_KUBE_CONFIG_SOURCE", "").strip().lower()
    if chosen:
        return chosen
    gp = os.environ.get("GP_USE_INCLUSTER_CONFIG", "").strip().lower()
    return {"true": "in-cluster", "false": "kubeconfig"}.get(gp, "auto")


def default_kubeconfig() -> str:
    """``BACKEND_KUBECONFIG``, else ``KUBECONFIG`` (a list of files, as kubectl reads it), else ~/.kube/config.
    Read when a provisioner is made: the kubernetes client reads ``KUBECONFIG`` once, at its import."""
    return os.environ.get("BACKEND_KUBECONFIG") or os.environ.get("KUBECONFIG") or "~/.kube/config"


def make_api_client(source: str, kubeconfig: str, context: str) -> client.ApiClient:
    """A client for the cluster ``source`` names; the error says what was tried and why each failed."""
    tried: list[str] = []
    if source in ("auto", "in-cluster"):
        configuration = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)
            return client.ApiClient(configuration)
        except ConfigException as exc:
            tried.append(f"in-cluster (the pod's service account): {str(exc).rstrip('.')}")
    if source in ("auto", "kubeconfig"):
        configuration = client.Configuration()
        path = os.pathsep.join(os.path.expanduser(part) for part in kubeconfig.split(os.pathsep))
        where = f"kubeconfig {path}" + (f", context {context}" if context else "")
        try:
            config.load_kube_config(config_file=path, context=context or None,
                                    client_configuration=configuration, persist_config=False)
            return client.ApiClient(configuration)
        except (ConfigException, OSError, ValueError, TypeError) as exc:
            tried.append(f"{where}: {type(exc).__name__}: {str(exc).rstrip('.')}")
    if not tried:
        tried.append(f"cluster_config {source!r} is none of {', '.join(CONFIG_SOURCES)}")
    raise RemoteKernelError(
        "cannot reach a Kubernetes cluster; tried " + "; ".join(tried) + ". Run the server in a pod with a "
        "service account, or set kubeconfig/kube_context (env BACKEND_KUBECONFIG, KUBECONFIG, BACKEND_KUBE_CONTEXT) "
        "and cluster_config (env BACKEND_KUBE_CONFIG_SOURCE)")


def create_namespace(api_client: client.ApiClient, name: str, labels: dict[str, str], service_account: str,
                     cluster_role: str) -> None:
    """A namespace for one kernel (gateway_provisioners' ``GP_SHARED_NAMESPACE=false``), and, only if
    ``cluster_role`` is set, a RoleBinding of that ClusterRole to the kernel's service account there.
    (gateway_provisioners binds ``cluster-admin`` by default; our kernels do not call the API.)"""
    core: Any = client.CoreV1Api(api_client)  # dicts as bodies: every client version takes them
    core.create_namespace(
        body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
    if not cluster_role:
        return
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": f"kernel-{cluster_role}", "namespace": name, "labels": labels},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
        "subjects": [{"kind": "ServiceAccount", "name": service_account, "namespace": name}],
    }
    try:
        rbac: Any = client.RbacAuthorizationV1Api(api_client)
        rbac.create_namespaced_role_binding(namespace=name, body=binding)
    except Exception:
        delete_namespace(api_client, name)
        raise


def delete_namespace(api_client: client.ApiClient, name: str) -> None:
    client.CoreV1Api(api_client).delete_namespace(
        name=name, body=client.V1DeleteOptions(grace_period_seconds=0, propagation_policy="Background"))
