"""``backend-kubernetes-provisioner`` without a cluster (issue 17, acceptance 2).

The Kubernetes client is replaced at its API boundary (:mod:`tests.fake_kubernetes`: ``CoreV1Api``),
whose pods really run their container's command — our launcher, a real kernel, its services — as
local processes. Everything above that boundary is the real thing: jupyter_client's
``AsyncKernelManager`` through ``AgentKernel``, gateway_provisioners' ``KubernetesProvisioner`` and
ResponseManager, our launcher, the cluster configuration loaded from a kubeconfig file. The pod
manifest is validated offline against the Kubernetes schema twice: by the client's models and by
kubectl's compiled-in API types.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.utils import parse_quantity
from traitlets import TraitError

from backend_kernel_provisioner.agent import AgentKernel
from tests.fake_kubernetes import IMAGE_PATH, KUBECONFIG, FakeCluster, fake_api_classes
from tests.test_agent_services import next_event

DATA = Path(__file__).parent / "data"
K8S = "backend-kubernetes-provisioner"
IMAGE = "localhost/backend-kernel:test"


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCluster]:
    """The fake cluster behind ``kubernetes.client``; the test fails if any pod's process outlives it."""
    fake = FakeCluster()
    core, rbac = fake_api_classes(fake)
    monkeypatch.setattr(client, "CoreV1Api", core)
    monkeypatch.setattr(client, "RbacAuthorizationV1Api", rbac)
    config = tmp_path / "kubeconfig"
    config.write_text(KUBECONFIG)
    fake.kubeconfig = str(config)
    yield fake
    left = fake.shut_down()
    assert left == [], f"processes of fake pods left running: {left}"


def kube_options(cluster: FakeCluster, **extra: Any) -> dict[str, Any]:
    """Keywords for a kernel in a fake pod (root is allowed: the tests run as root; no user switch happens)."""
    return {
        "provisioner": K8S, "cluster_config": "kubeconfig", "kubeconfig": cluster.kubeconfig,
        "unauthorized_users": set(), "launcher_python": sys.executable, "image_name": IMAGE,
        "lease_timeout": 10.0, "launch_timeout": 120, **extra,
    }


def validate_offline(manifest: dict[str, Any], tmp_path: Path) -> None:
    """The pod against the Kubernetes schema, without a cluster: the client's models (strict: unknown fields and
    wrong types fail) with a round trip that must give the same dict, then kubectl's own API types."""
    strict = client.V1Pod.model_validate(manifest)
    assert client.ApiClient().sanitize_for_serialization(strict) == manifest
    read = client.ApiClient().deserialize(json.dumps(manifest), "V1Pod", "application/json")
    assert client.ApiClient().sanitize_for_serialization(read) == manifest
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        print("kubectl not installed: only the client's models checked the manifest")
        return
    # `kubectl create --dry-run=client` needs the API server's discovery; `kubectl set ... --local` does not, and
    # decodes the file into kubectl's compiled-in v1.Pod (wrong types and bad quantities fail; unknown fields are
    # dropped, which the comparison shows).
    path = tmp_path / "pod.json"
    path.write_text(json.dumps(manifest))
    done = subprocess.run(
        [kubectl, "set", "env", "--local", "-f", str(path), "-c", "kernel", "CHECKED_BY=kubectl", "-o", "json"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "KUBECONFIG": str(tmp_path / "none")})
    assert done.returncode == 0, done.stderr
    decoded = json.loads(done.stdout)
    decoded["metadata"].pop("creationTimestamp", None)
    decoded.pop("status", None)
    expected = json.loads(json.dumps(manifest))
    expected["spec"]["containers"][0]["env"].append({"name": "CHECKED_BY", "value": "kubectl"})
    for pod in (decoded, expected):  # quantities come back canonical ("1.5G" as "1500M"): compare their values
        resources = pod["spec"]["containers"][0].get("resources", {})
        for kind in resources.values():
            kind.update({name: parse_quantity(value) for name, value in kind.items()})
    assert decoded == expected


async def until(predicate: Any, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "condition not reached"
        await asyncio.sleep(0.1)


# -- 1. launch ----------------------------------------------------------------------------------


@pytest.mark.kernel
async def test_a_cell_runs_in_the_pod_made_from_our_template(cluster: FakeCluster, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVER_ONLY_SECRET", "never in a pod")
    options = kube_options(cluster, memory_limit="512m", memory_request="256Mi", cpu_limit=1.5, cpu_request=0.5,
                           gpu_limit=1, node_selector={"pool": "kernels"},
                           tolerations=[{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}])
    env = {"KERNEL_UID": "1234", "KERNEL_GID": "1234"}
    async with await AgentKernel.start("shell", env=env, **options) as kernel:
        ran = await kernel.execute("k1", "query", 'echo "$KERNEL_POD_NAME|$KERNEL_NAMESPACE|$PATH|${SERVER_ONLY_SECRET-unset}"')
        assert ran["status"] == "finished" and ran["exitCode"] == 0, ran
        pod_name, namespace, path, secret = ran["console"][0][1].strip().split("|")
        provisioner = kernel.provisioner
        assert (pod_name, namespace) == (provisioner.container_name, "default")
        assert path.split(os.pathsep)[-len(IMAGE_PATH.split(os.pathsep)):] == IMAGE_PATH.split(os.pathsep)
        assert secret == "unset"

    [manifest] = cluster.created
    kernel_id = str(kernel.km.kernel_id)
    assert manifest["metadata"] == {"name": pod_name, "namespace": "default",
                                    "labels": {"app": "backend-kernel", "component": "kernel", "kernel_id": kernel_id}}
    assert pod_name == f"root-{kernel_id}"  # gateway_provisioners' rule: KERNEL_USERNAME-kernel_id
    spec = manifest["spec"]
    [container] = spec["containers"]
    assert spec["restartPolicy"] == "Never"
    assert container["name"] == "kernel" and container["image"] == IMAGE
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["command"][:3] == [sys.executable, "-m", "backend_kernel_provisioner.launcher"]
    assert "--kernel-id" in container["command"] and kernel_id in container["command"]
    assert container["resources"] == {
        "requests": {"memory": "256Mi", "cpu": "500m"},
        "limits": {"memory": "512Mi", "cpu": "1500m", "nvidia.com/gpu": "1"},  # Docker's 512m is 512 MiB
    }
    names = {e["name"] for e in container["env"]}
    assert not names & {"PATH", "HOME", "VIRTUAL_ENV", "PYTHONPATH", "SERVER_ONLY_SECRET", "KUBECONFIG"}
    assert {"KERNEL_UID", "KERNEL_GID", "KERNEL_POD_NAME", "KERNEL_NAMESPACE", "KERNEL_ID"} <= names
    assert container["securityContext"] == {"runAsUser": 1234, "runAsGroup": 1234, "runAsNonRoot": True,
                                            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] == 1234
    assert spec["automountServiceAccountToken"] is False
    assert spec["nodeSelector"] == {"pool": "kernels"} and spec["tolerations"][0]["key"] == "gpu"
    validate_offline(manifest, tmp_path)
    # the cluster was reached through the kubeconfig given, not a process-wide default
    assert set(cluster.hosts) == {"https://fake-cluster.example:6443"}
    # the pod was seen Pending before Running, and deleted at the end
    phases = [c[2][0] for c in cluster.calls_of("read_namespaced_pod") if c[2] != 404]
    assert phases[0] == "Pending" and "Running" in phases
    assert cluster.pods == {}


# -- 2. pending with a reason ---------------------------------------------------------------------


@pytest.mark.kernel
@pytest.mark.parametrize(("scenario", "reason", "message"), [
    ("unschedulable", "Unschedulable", "0/3 nodes are available: 3 Insufficient memory."),
    ("image-pull-backoff", "ImagePullBackOff", f'Back-off pulling image "{IMAGE}"'),
])
async def test_a_pod_pending_for_a_reason_fails_the_start_at_once(
        cluster: FakeCluster, caplog: pytest.LogCaptureFixture, scenario: str, reason: str, message: str) -> None:
    cluster.scenario = scenario
    options = kube_options(cluster, launch_timeout=3600)
    with caplog.at_level(logging.ERROR), pytest.raises(RuntimeError) as failed:
        await AgentKernel.start("shell", **options)
    text = str(failed.value)
    assert "did not start" in text and reason in text and message in text, text
    assert "no launch payload" not in text  # not the launch timeout (an hour here)
    assert any(reason in r.getMessage() and "did not start" in r.getMessage() for r in caplog.records)
    assert cluster.pods == {}  # deleted
    [(_, pod_name, _)] = cluster.calls_of("create_namespaced_pod")
    order = [(c[0], c[2]) for c in cluster.calls if c[1] == pod_name]
    first_delete = next(i for i, c in enumerate(order) if c[0] == "delete_namespaced_pod")
    assert any(c[0] == "read_namespaced_pod" and c[1][1] == reason for c in order[:first_delete])


@pytest.mark.kernel
async def test_a_cluster_that_cannot_be_reached_is_named(cluster: FakeCluster, tmp_path: Path) -> None:
    options = kube_options(cluster, cluster_config="auto", kubeconfig=str(tmp_path / "missing"))
    with pytest.raises(RuntimeError) as failed:
        await AgentKernel.start("shell", **options)
    text = str(failed.value)
    assert "cannot reach a Kubernetes cluster" in text and "in-cluster" in text and str(tmp_path / "missing") in text
    assert cluster.calls == []


# -- 3. OOMKilled ---------------------------------------------------------------------------------


@pytest.mark.kernel
async def test_oomkilled_is_reported_before_the_pod_is_deleted_and_a_restart_makes_a_new_pod(
        cluster: FakeCluster, caplog: pytest.LogCaptureFixture) -> None:
    async with await AgentKernel.start("shell", **kube_options(cluster, memory_limit="256Mi")) as kernel:
        events = kernel.events()
        provisioner = kernel.provisioner
        first = provisioner.container_name
        assert (await kernel.execute("o1", "query", "echo before"))["console"] == [["stdout", "before\n"]]
        with caplog.at_level(logging.WARNING):
            cluster.oom_kill(first, status_lag=2.0)  # the kubelet says so 2 s later
            terminated = await next_event(events, lambda e: e.get("event") == "kernel-terminated")
            oom = await next_event(events, lambda e: e.get("type") == "oom")
        assert terminated["reason"] == "OOMKilled" and terminated["exit_code"] == 137
        assert terminated["during_start"] is False and terminated["container"] == first
        assert oom["memory_limit"] == "256Mi" and oom["kernel_id"] == str(kernel.km.kernel_id)
        assert any("OOMKilled" in r.getMessage() and first in r.getMessage() for r in caplog.records)
        assert not await kernel.km.is_alive()

        await kernel.restart()
        ran = await kernel.execute("o2", "query", "echo after")
        assert ran["console"] == [["stdout", "after\n"]]
        assert len(cluster.created) == 2 and provisioner.container_name == first  # a new pod, the same name
        reads = [i for i, c in enumerate(cluster.calls) if c[0] == "read_namespaced_pod" and c[2] != 404
                 and c[2][1] == "OOMKilled"]
        deletes = [i for i, c in enumerate(cluster.calls) if c[0] == "delete_namespaced_pod"]
        creates = [i for i, c in enumerate(cluster.calls) if c[0] == "create_namespaced_pod"]
        assert reads and deletes and reads[0] < deletes[0] < creates[1]  # the reason was read before the delete


@pytest.mark.kernel
async def test_a_silent_launcher_waits_for_the_kubelets_verdict_before_the_pod_is_deleted(
        cluster: FakeCluster) -> None:
    """The channel gives the launcher up (lease_timeout) before the kubelet has reported the container's end:
    the restart reads the pod until it says why, then deletes it."""
    options = kube_options(cluster, memory_limit="256Mi", lease_timeout=1.0, termination_read_timeout=60.0)
    async with await AgentKernel.start("shell", **options) as kernel:
        events = kernel.events()
        provisioner = kernel.provisioner
        cluster.oom_kill(provisioner.container_name, status_lag=5.0)
        await until(lambda: provisioner.channel is not None and not provisioner.channel.alive)
        assert provisioner.termination is None  # the pod still says Running: nothing to report yet
        await kernel.restart()
        terminated = await next_event(events, lambda e: e.get("event") == "kernel-terminated")
        assert terminated["reason"] == "OOMKilled" and terminated["during_start"] is False
        reads = [i for i, c in enumerate(cluster.calls) if c[0] == "read_namespaced_pod" and c[2] != 404
                 and c[2][1] == "OOMKilled"]
        deletes = [i for i, c in enumerate(cluster.calls) if c[0] == "delete_namespaced_pod"]
        assert reads and deletes and reads[0] < deletes[0]
        assert (await kernel.execute("v1", "query", "echo back"))["console"] == [["stdout", "back\n"]]


# -- 4. restart keeps the pod ---------------------------------------------------------------------


@pytest.mark.kernel
async def test_a_restart_keeps_the_pod_and_its_services(cluster: FakeCluster) -> None:
    options = kube_options(cluster, service_defs_dir=str(DATA / "service-defs"))
    async with await AgentKernel.start("shell", **options) as kernel:
        provisioner = kernel.provisioner
        started = await kernel.start_service({"name": "httpd", "protocol": "http", "options": {}})
        assert started["status"] == "started", started
        service_pid = (await provisioner.services.status("httpd"))["pid"]
        await kernel.execute("r1", "query", "export KEPT=yes")
        kernel_pid = provisioner.kernel_pid

        await kernel.restart()
        after = await kernel.execute("r2", "query", 'echo "[${KEPT-}]"')
        assert after["console"] == [["stdout", "[]\n"]]  # a new kernel process: its state is gone
        assert provisioner.kernel_pid != kernel_pid
        assert len(cluster.created) == 1 and cluster.calls_of("delete_namespaced_pod") == []
        assert (await provisioner.services.status("httpd"))["pid"] == service_pid
        page = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{started['ports'][0]}/", timeout=10).read())
        assert f"served on {started['ports'][0]}".encode() in page
    assert cluster.pods == {}


# -- 5. shutdown ----------------------------------------------------------------------------------


@pytest.mark.kernel
async def test_shutdown_deletes_the_pod_and_its_own_namespace(cluster: FakeCluster) -> None:
    options = kube_options(cluster, shared_namespace=False)
    kernel = await AgentKernel.start("shell", **options)
    provisioner = kernel.provisioner
    pod_name = provisioner.container_name
    assert (await kernel.execute("s1", "query", "echo $KERNEL_NAMESPACE"))["console"] == [["stdout", f"{pod_name}\n"]]
    assert list(cluster.namespaces) == [pod_name]
    assert cluster.namespaces[pod_name]["metadata"]["labels"]["kernel_id"] == str(kernel.km.kernel_id)
    assert cluster.calls_of("create_namespaced_role_binding") == []  # no cluster role unless asked for
    pid = next(iter(cluster.pods.values())).pid
    await kernel.shutdown()
    assert cluster.pods == {} and cluster.namespaces == {}
    [(_, _, grace)] = cluster.calls_of("delete_namespaced_pod")
    assert grace == 0  # the launcher confirmed that the kernel and services stopped: the pod goes at once
    await until(lambda: not cluster.leftovers())
    assert pid is not None and (not os.path.exists(f"/proc/{pid}") or _is_zombie(pid))  # the pod's init too


def _is_zombie(pid: int | None) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


# -- 6. the manifest, offline ---------------------------------------------------------------------

KERNEL_ID = "0b7c2a5e-3d44-4a5e-9c1f-5b2d1e7a9c30"


def make_provisioner(cluster: FakeCluster | None = None, **traits: Any) -> Any:
    """A provisioner as ``pre_launch`` leaves it (pod name and namespace chosen), without a kernel."""
    from jupyter_client.kernelspec import KernelSpec

    from backend_kernel_provisioner.remote.kubernetes import BackendKubernetesProvisioner

    spec = KernelSpec(argv=[sys.executable, "-m", "backend_kernel_provisioner.kernels", "shell", "-f",
                            "{connection_file}"], display_name="Shell", language="bash", env={"SPEC_VAR": "from spec"})
    if cluster is not None:
        traits = {"cluster_config": "kubeconfig", "kubeconfig": cluster.kubeconfig, **traits}
    provisioner = BackendKubernetesProvisioner(kernel_id=KERNEL_ID, kernel_spec=spec, image_name=IMAGE, **traits)
    provisioner.kernel_pod_name = f"alice-{KERNEL_ID}"
    provisioner.kernel_namespace = "kernels"
    return provisioner


SERVER_ENV = {"KERNEL_UID": "1000", "KERNEL_GID": "100", "KERNEL_USERNAME": "alice", "KERNEL_ID": KERNEL_ID,
              "PATH": "/server/bin:/usr/bin", "HOME": "/root", "AWS_SECRET_ACCESS_KEY": "server's"}


def test_the_full_manifest_is_a_valid_pod(tmp_path: Path) -> None:
    from backend_kernel_provisioner.remote.pod_manifest import pod_manifest

    provisioner = make_provisioner(
        memory_limit="2g", memory_request="1Gi", cpu_limit=2.0, cpu_request=0.25, gpu_limit=2,
        gpu_resource="amd.com/gpu", service_account_name="kernels", image_pull_secrets=["regcred"],
        node_selector={"pool": "gpu"}, tolerations=[{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
        volumes=[{"name": "defs", "configMap": {"name": "service-defs"}}],
        volume_mounts=[{"name": "defs", "mountPath": "/etc/backend/services", "readOnly": True}],
        mounts=[f"{tmp_path}:/data:ro"], container_working_dir="/home/kernel/work", container_stop_timeout=20.0)
    manifest = pod_manifest(provisioner.pod_request(["/opt/backend/bin/python", "-m", "launcher"], SERVER_ENV))
    validate_offline(manifest, tmp_path)
    [container] = manifest["spec"]["containers"]
    assert container["resources"] == {"requests": {"memory": "1Gi", "cpu": "250m"},
                                      "limits": {"memory": "2Gi", "cpu": "2", "amd.com/gpu": "2"}}
    assert {e["name"]: e["value"] for e in container["env"]} == {
        "KERNEL_UID": "1000", "KERNEL_GID": "100", "KERNEL_USERNAME": "alice", "KERNEL_ID": KERNEL_ID,
        "SPEC_VAR": "from spec"}  # no PATH, HOME or other server variables
    assert container["workingDir"] == "/home/kernel/work"
    assert container["volumeMounts"][0] == {"name": "mount-0", "mountPath": "/data", "readOnly": True}
    spec = manifest["spec"]
    assert spec["volumes"][0] == {"name": "mount-0", "hostPath": {"path": str(tmp_path), "type": "Directory"}}
    assert spec["serviceAccountName"] == "kernels" and spec["imagePullSecrets"] == [{"name": "regcred"}]
    assert spec["terminationGracePeriodSeconds"] == 20
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


def test_bad_settings_are_refused_in_the_traits_words() -> None:
    from backend_kernel_provisioner.remote.provisioner import RemoteKernelError

    with pytest.raises(RemoteKernelError, match="memory request 2Gi is above its limit 1Gi"):
        make_provisioner(memory_limit="1Gi", memory_request="2Gi").pod_request(["x"], SERVER_ENV)
    with pytest.raises(TraitError, match="memory_limit: 'lots' is not a size"):  # refused as soon as it is set
        make_provisioner(memory_limit="lots")
    with pytest.raises(RemoteKernelError, match="KERNEL_UID/KERNEL_GID must be numbers"):
        make_provisioner().pod_request(["x"], {**SERVER_ENV, "KERNEL_UID": "kernel"})
    with pytest.raises(RemoteKernelError, match="is not SOURCE:TARGET"):
        make_provisioner(mounts=["/only-a-source"]).pod_request(["x"], SERVER_ENV)


@pytest.mark.parametrize(("given", "meant"), [
    ("512m", "512Mi"), ("2g", "2Gi"), ("1.5G", "1.5G"), ("512Mi", "512Mi"), ("2Gi", "2Gi"), ("1024b", "1024"),
    ("500M", "500M"), ("100k", "100k"),
])
def test_memory_sizes_mean_what_the_user_meant(given: str, meant: str) -> None:
    from backend_kernel_provisioner.remote.pod_manifest import memory_quantity

    assert memory_quantity(given, "memory_limit") == meant


# -- what a pod's status means ----------------------------------------------------------------------


def pod(status: dict[str, Any]) -> Any:
    from tests.fake_kubernetes import model

    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "kernel", "image": IMAGE}]}, "status": status}
    return model(body, "V1Pod")


def kernel_status(state: dict[str, Any], last: dict[str, Any] | None = None) -> dict[str, Any]:
    found = {"name": "kernel", "image": IMAGE, "imageID": "", "restartCount": 0, "ready": False, "state": state}
    return {**found, "lastState": last} if last else found


@pytest.mark.parametrize(("status", "expected"), [
    ({"phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: memory.",
      "containerStatuses": [kernel_status({"terminated": {"exitCode": 137, "reason": "ContainerStatusUnknown"}})]},
     ("terminated", "Evicted", "The node was low on resource: memory.", 137, False)),
    ({"phase": "Failed", "containerStatuses": [kernel_status({"terminated": {"exitCode": 137, "reason": "OOMKilled"}})]},
     ("terminated", "OOMKilled", "", 137, False)),
    ({"phase": "Failed", "containerStatuses": [kernel_status(
        {"waiting": {"reason": "Unknown"}}, last={"terminated": {"exitCode": 137, "reason": "OOMKilled"}})]},
     ("terminated", "OOMKilled", "", 137, False)),
    ({"phase": "Succeeded", "containerStatuses": [kernel_status({"terminated": {"exitCode": 0, "reason": "Completed"}})]},
     ("terminated", "Completed", "", 0, False)),
    ({"phase": "Failed", "containerStatuses": [kernel_status(
        {"terminated": {"exitCode": 2, "reason": "Error", "message": "launcher: no such option"}})]},
     ("terminated", "Error", "launcher: no such option", 2, False)),
    ({"phase": "Pending", "containerStatuses": [kernel_status(
        {"waiting": {"reason": "CreateContainerConfigError", "message": 'secret "db" not found'}})]},
     ("pending", "CreateContainerConfigError", 'secret "db" not found', None, True)),
    ({"phase": "Pending", "containerStatuses": [kernel_status(
        {"waiting": {"reason": "ErrImagePull", "message": "pull access denied"}})]},
     ("pending", "ErrImagePull", "pull access denied", None, True)),
    ({"phase": "Pending", "containerStatuses": [kernel_status({"waiting": {"reason": "ContainerCreating"}})]},
     ("pending", "pending", "", None, False)),
    ({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                          "message": "0/1 nodes are available"}]},
     ("pending", "Unschedulable", "0/1 nodes are available", None, True)),
    ({"phase": "Running"}, ("pending", "running", "", None, False)),  # no pod IP yet
])
def test_a_pods_status_in_the_provisioners_words(status: dict[str, Any], expected: tuple) -> None:
    from backend_kernel_provisioner.remote.pod_status import FAIL_FAST_REASONS, pod_state

    state = pod_state(pod(status), set(FAIL_FAST_REASONS))
    assert (state.phase, state.reason, state.message, state.exit_code, state.fail_fast) == expected


def test_unschedulable_can_be_waited_out_where_an_autoscaler_adds_nodes() -> None:
    from backend_kernel_provisioner.remote.pod_status import pod_state

    waiting = pod({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                                                       "reason": "Unschedulable", "message": "pod triggered scale-up"}]})
    reasons = set(make_provisioner(fail_fast_reasons=["ImagePullBackOff"]).fail_fast_reasons)
    state = pod_state(waiting, reasons)
    assert (state.phase, state.reason, state.fail_fast) == ("pending", "Unschedulable", False)
    running = pod({"phase": "Running", "podIP": "10.1.2.3", "hostIP": "192.168.0.7"})
    assert (pod_state(running, reasons).ip, pod_state(running, reasons).node_ip) == ("10.1.2.3", "192.168.0.7")


# -- a pod of the same name ------------------------------------------------------------------------


def test_a_previous_pod_still_going_is_waited_for_and_a_foreign_one_refused(cluster: FakeCluster) -> None:
    from backend_kernel_provisioner.remote.provisioner import RemoteKernelError

    cluster.scenario = "unschedulable"  # no process: only the API objects matter here
    provisioner = make_provisioner(cluster)
    provisioner._create_container(["launcher"], SERVER_ENV)
    name = provisioner.container_name
    cluster.pods[("kernels", name)].linger = 3  # deleted, but shown for three more reads
    cluster.delete_pod(name, "kernels", 0)
    cluster.calls.clear()
    provisioner._create_container(["launcher"], SERVER_ENV)
    methods = [c[0] for c in cluster.calls]
    assert methods[0] == "create_namespaced_pod" and methods[-1] == "create_namespaced_pod"
    assert ("read_namespaced_pod", name, 404) in cluster.calls  # waited until the old one was gone
    assert len(cluster.created) == 2

    cluster.pods[("kernels", name)].manifest["metadata"]["labels"]["kernel_id"] = "someone-else"
    with pytest.raises(RemoteKernelError, match="already exists .* not this kernel's"):
        provisioner._create_container(["launcher"], SERVER_ENV)
    assert ("kernels", name) in cluster.pods  # not deleted
    cluster.delete_pod(name, "kernels", 0)


# -- importing anywhere ------------------------------------------------------------------------------

IMPORT_CHECK = """
import kubernetes.config, sys
from jupyter_client.provisioning.factory import KernelProvisionerFactory
import backend_kernel_provisioner.remote.kubernetes as ours
assert kubernetes.config.load_incluster_config.__module__ == "kubernetes.config.incluster_config"
found = KernelProvisionerFactory.instance()._get_provisioner("backend-kubernetes-provisioner").load()
assert found is ours.BackendKubernetesProvisioner
print("imported", found.__name__)
"""


def test_the_entry_point_imports_outside_a_cluster(tmp_path: Path) -> None:
    clean = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no KUBERNETES_SERVICE_*, no kubeconfig, no PYTEST_*
    stock = subprocess.run([sys.executable, "-c", "import gateway_provisioners.k8s"], env=clean, capture_output=True,
                           text=True, timeout=120)
    assert stock.returncode != 0 and "ConfigException" in stock.stderr  # what importing the stock module does here
    ours = subprocess.run([sys.executable, "-c", IMPORT_CHECK], env=clean, capture_output=True, text=True,
                          timeout=120)
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout.strip() == "imported BackendKubernetesProvisioner"
