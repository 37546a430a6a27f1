"""A Kubernetes cluster stand-in at the client's API boundary, for ``backend-kubernetes-provisioner`` (issue 17).

No cluster installs on this machine, so the tests replace ``kubernetes.client.CoreV1Api`` (and
``RbacAuthorizationV1Api``) — the classes the provisioner calls — as gateway_provisioners' own tests
do. What the fake makes real:

* a pod's body is validated as the real client validates it (``V1Pod.model_validate``: unknown
  fields and wrong types are errors), and every answer is a real ``V1Pod`` deserialized by the
  client's own ``ApiClient.deserialize`` from the JSON an API server would send;
* a pod that is "scheduled" really runs its container's command — our launcher, the kernel, its
  services — as local processes, under a small init (:data:`POD_INIT`) that, like a container, is
  the subreaper of everything started inside and takes it all down when the main process ends;
  the pod then reports ``Pending`` (a few reads), ``Running`` with pod IP 127.0.0.1, and the
  process's end as ``Succeeded``/``Failed`` with the container's exit code;
* deleting a pod with a grace period sends SIGTERM to the main process and SIGKILLs what is left
  after it (a pod being deleted is shown until its processes are gone); grace 0 removes it at once.

What it does not do: no user switch (``runAsUser`` is recorded, not applied: the tests run as
root and the processes run as root), no image (the "image" environment is this venv's Python
and the system's ``PATH``), no network namespace (the pod's IP is 127.0.0.1), no scheduler, no
kubelet status sync other than an optional lag, and no limits (``oom_kill`` plays the kernel's
OOM killer: it SIGKILLs the main process and reports ``OOMKilled``, exit code 137).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from backend_kernel_provisioner.common.childproc import proc_stat

#: The fake pods' "image" environment (a container gets its image's ENV; never the server's).
IMAGE_PATH = os.pathsep.join([os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"])
#: Marks every process of a fake pod (inherited), so a test can find leftovers.
MARKER = "FAKE_KUBE_POD"

#: The container's init: subreaper of the pod's processes; when the main process ends, so does the rest.
POD_INIT = r"""
import ctypes, os, signal, sys
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
main = os.fork()
if main == 0:
    os.execvp(sys.argv[1], sys.argv[1:])

def forward(signum, frame):  # SIGUSR1: the OOM killer's SIGKILL to the main process
    try:
        os.kill(main, signal.SIGKILL if signum == signal.SIGUSR1 else signum)
    except ProcessLookupError:
        pass

def descendants():
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [os.getpid()]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found

for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
    signal.signal(signum, forward)
code = None
while True:
    try:
        pid, status = os.wait()
    except ChildProcessError:
        break
    if pid == main:
        code = os.waitstatus_to_exitcode(status)
        code = 128 - code if code < 0 else code
    if code is not None:
        for pid in descendants():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
sys.exit(code)
"""


def model(data: dict[str, Any], kind: str) -> Any:
    """What the real client makes of an API server's JSON answer."""
    return client.ApiClient().deserialize(json.dumps(data), kind, "application/json")


def not_found(name: str) -> ApiException:
    return ApiException(status=404, reason="Not Found")


@dataclass
class FakePod:
    name: str
    namespace: str
    manifest: dict[str, Any]
    scenario: str
    process: subprocess.Popen | None = None
    reads: int = 0
    oom: bool = False
    reported_at: float = 0.0  # until then (monotonic), the pod still says Running after its container died
    deleting: bool = False
    linger: int = 0  # reads that still show a pod deleted with grace 0
    workdir: str = ""

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.manifest["metadata"].get("labels") or {})

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None


@dataclass
class FakeCluster:
    """The pods, namespaces and the calls made, in order; ``scenario`` is what the next pod will do."""

    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    scenario: str = "run"  # run, unschedulable, image-pull-backoff
    pending_reads: int = 2
    kubeconfig: str = ""  # a kubeconfig file naming this "cluster" (written by the test fixture)
    pods: dict[tuple[str, str], FakePod] = field(default_factory=dict)
    namespaces: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str, Any]] = field(default_factory=list)  # (method, pod or namespace, detail)
    created: list[dict[str, Any]] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)  # the API server address of every client made
    lock: threading.RLock = field(default_factory=threading.RLock)
    threads: list[threading.Thread] = field(default_factory=list)
    workdirs: list[str] = field(default_factory=list)  # the pods' home folders, removed at the end

    # -- pods ----------------------------------------------------------------------------------

    def create_pod(self, namespace: str, body: dict[str, Any]) -> Any:
        client.V1Pod.model_validate(body)  # as the real client's validate_call does with a dict body
        name = body["metadata"]["name"]
        with self.lock:
            self.calls.append(("create_namespaced_pod", name, namespace))
            if (namespace, name) in self.pods:
                raise ApiException(status=409, reason="AlreadyExists")
            pod = FakePod(name, namespace, json.loads(json.dumps(body)), self.scenario)
            self.created.append(pod.manifest)
            self.pods[(namespace, name)] = pod
        if pod.scenario == "run":
            self._start(pod)
        return model({**pod.manifest, "status": {"phase": "Pending"}}, "V1Pod")

    def _start(self, pod: FakePod) -> None:
        container = pod.manifest["spec"]["containers"][0]
        env = {e["name"]: e["value"] for e in container.get("env", [])}
        env.update({"PATH": IMAGE_PATH, MARKER: self.run_id})
        pod.workdir = tempfile.mkdtemp(prefix="fake-pod-")
        self.workdirs.append(pod.workdir)
        env.setdefault("HOME", pod.workdir)
        pod.process = subprocess.Popen(
            [sys.executable, "-c", POD_INIT, *container["command"]], env=env,
            cwd=container.get("workingDir") or pod.workdir, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def read_pod(self, name: str, namespace: str) -> Any:
        with self.lock:
            pod = self.pods.get((namespace, name))
            if pod is None:
                self.calls.append(("read_namespaced_pod", name, 404))
                raise not_found(name)
            pod.reads += 1
            status = self._status(pod)
            if pod.deleting and pod.linger > 0:
                pod.linger -= 1
                if pod.linger == 0:
                    del self.pods[(namespace, name)]
            self.calls.append(("read_namespaced_pod", name, (status["phase"], _reason(status))))
        meta = dict(pod.manifest["metadata"])
        if pod.deleting:
            meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
        return model({**pod.manifest, "metadata": meta, "status": status}, "V1Pod")

    def _status(self, pod: FakePod) -> dict[str, Any]:
        image = pod.manifest["spec"]["containers"][0]["image"]
        base = {"name": "kernel", "image": image, "imageID": "", "restartCount": 0, "ready": False}
        if pod.scenario == "unschedulable":
            return {"phase": "Pending", "conditions": [{
                "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 Insufficient memory."}]}
        if pod.scenario == "image-pull-backoff" or pod.reads <= self.pending_reads:
            waiting = ({"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}
                       if pod.scenario == "image-pull-backoff" else {"reason": "ContainerCreating"})
            return {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}],
                    "containerStatuses": [{**base, "state": {"waiting": waiting}}]}
        assert pod.process is not None
        code = pod.process.poll()
        if code is None or time.monotonic() < pod.reported_at:
            return {"phase": "Running", "podIP": "127.0.0.1", "hostIP": "127.0.0.1",
                    "containerStatuses": [{**base, "ready": True, "state": {"running": {}}}]}
        if pod.oom:
            terminated = {"exitCode": 137, "reason": "OOMKilled"}
        else:
            terminated = {"exitCode": code, "reason": "Completed" if code == 0 else "Error"}
        return {"phase": "Succeeded" if code == 0 and not pod.oom else "Failed", "podIP": "127.0.0.1",
                "containerStatuses": [{**base, "state": {"terminated": terminated}}]}

    def delete_pod(self, name: str, namespace: str, grace: int) -> Any:
        with self.lock:
            pod = self.pods.get((namespace, name))
            self.calls.append(("delete_namespaced_pod", name, grace))
            if pod is None:
                raise not_found(name)
            pod.deleting = True
            if grace == 0 and pod.linger == 0:
                del self.pods[(namespace, name)]
        thread = threading.Thread(target=self._terminate, args=(pod, grace), daemon=True)
        thread.start()
        self.threads.append(thread)
        return model({**pod.manifest, "status": {"phase": "Running"}}, "V1Pod")

    def _terminate(self, pod: FakePod, grace: int) -> None:
        """The kubelet: SIGTERM to the container's main process, SIGKILL to all after the grace period."""
        if pod.process is not None:
            if grace > 0 and pod.process.poll() is None:
                pod.process.send_signal(signal.SIGTERM)  # the init passes it to the main process
                try:
                    pod.process.wait(grace)
                except subprocess.TimeoutExpired:
                    pass
            kill_tree(pod.process.pid)
            pod.process.wait()
        with self.lock:
            if pod.linger == 0:
                self.pods.pop((pod.namespace, pod.name), None)

    def oom_kill(self, name: str, namespace: str = "default", status_lag: float = 0.0) -> None:
        """The kernel's OOM killer ends the container's main process; the kubelet reports it ``status_lag``
        seconds later (its status updates lag the container's end)."""
        with self.lock:
            pod = self.pods[(namespace, name)]
            pod.oom, pod.reported_at = True, time.monotonic() + status_lag
        assert pod.process is not None
        pod.process.send_signal(signal.SIGUSR1)  # the init SIGKILLs the main process, then the rest goes
        pod.process.wait(30)

    # -- namespaces ----------------------------------------------------------------------------

    def create_namespace(self, body: dict[str, Any]) -> Any:
        client.V1Namespace.model_validate(body)
        name = body["metadata"]["name"]
        with self.lock:
            self.calls.append(("create_namespace", name, None))
            if name in self.namespaces:
                raise ApiException(status=409, reason="AlreadyExists")
            self.namespaces[name] = body
        return model(body, "V1Namespace")

    def delete_namespace(self, name: str) -> Any:
        with self.lock:
            self.calls.append(("delete_namespace", name, None))
            if self.namespaces.pop(name, None) is None:
                raise not_found(name)
        return model({"apiVersion": "v1", "kind": "Status", "status": "Success"}, "V1Status")

    # -- for the tests -------------------------------------------------------------------------

    def calls_of(self, method: str) -> list[tuple[str, str, Any]]:
        return [c for c in self.calls if c[0] == method]

    def leftovers(self) -> list[int]:
        """Processes of this cluster's pods still running (zombies aside)."""
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if f"{MARKER}={self.run_id}".encode() not in f.read().split(b"\0"):
                        continue
                stat = proc_stat(int(entry))
            except OSError:
                continue
            if stat is not None and stat[1][0] != "Z":
                found.append(int(entry))
        return found

    def shut_down(self) -> list[int]:
        """At the end of a test: what was still running (then killed)."""
        for thread in self.threads:
            thread.join(30)
        deadline = time.monotonic() + 10
        while (left := self.leftovers()) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pod in self.pods.values():
            if pod.process is not None:
                kill_tree(pod.process.pid)
                pod.process.wait()
        for pid in self.leftovers():
            os.kill(pid, signal.SIGKILL)
        for workdir in self.workdirs:
            shutil.rmtree(workdir, ignore_errors=True)
        return left


def _reason(status: dict[str, Any]) -> str:
    for container in status.get("containerStatuses", []):
        for state in container.get("state", {}).values():
            if state.get("reason"):
                return str(state["reason"])
    return str(status.get("reason") or next((c.get("reason") for c in status.get("conditions", [])), "") or "")


def _children(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(int(entry))
            if stat is not None and int(stat[1][1]) == parent:
                found.append(int(entry))
    return sorted(found)


def kill_tree(root: int) -> None:
    """SIGKILL every descendant of ``root`` (depth first, until none is left), then ``root``."""
    for _ in range(50):
        todo, found = [root], []
        while todo:
            for child in _children(todo.pop()):
                found.append(child)
                todo.append(child)
        alive = [pid for pid in found if (s := proc_stat(pid)) is not None and s[1][0] != "Z"]
        if not alive:
            break
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.02)
    try:
        os.kill(root, signal.SIGKILL)
    except ProcessLookupError:
        pass


def fake_api_classes(cluster: FakeCluster) -> tuple[type, type]:
    """``CoreV1Api`` and ``RbacAuthorizationV1Api`` replacements bound to ``cluster``."""

    class FakeCoreV1Api:
        def __init__(self, api_client: Any = None) -> None:
            configuration = getattr(api_client, "configuration", None)
            cluster.hosts.append(getattr(configuration, "host", "") if configuration is not None else "")

        def create_namespaced_pod(self, namespace: str, body: dict[str, Any], **kwargs: Any) -> Any:
            return cluster.create_pod(namespace, body)

        def read_namespaced_pod(self, name: str, namespace: str, **kwargs: Any) -> Any:
            return cluster.read_pod(name, namespace)

        def delete_namespaced_pod(self, name: str, namespace: str, body: Any = None,
                                  grace_period_seconds: int | None = None, **kwargs: Any) -> Any:
            grace = grace_period_seconds if grace_period_seconds is not None else getattr(
                body, "grace_period_seconds", None)
            return cluster.delete_pod(name, namespace, 30 if grace is None else int(grace))

        def create_namespace(self, body: dict[str, Any], **kwargs: Any) -> Any:
            return cluster.create_namespace(body)

        def delete_namespace(self, name: str, body: Any = None, **kwargs: Any) -> Any:
            return cluster.delete_namespace(name)

    class FakeRbacAuthorizationV1Api:
        def __init__(self, api_client: Any = None) -> None:
            pass

        def create_namespaced_role_binding(self, namespace: str, body: dict[str, Any], **kwargs: Any) -> Any:
            client.V1RoleBinding.model_validate(body)
            cluster.calls.append(("create_namespaced_role_binding", namespace, body["roleRef"]["name"]))
            return model(body, "V1RoleBinding")

    return FakeCoreV1Api, FakeRbacAuthorizationV1Api


KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster: {server: "https://fake-cluster.example:6443", insecure-skip-tls-verify: true}
users:
- name: kernels
  user: {token: not-a-real-token}
contexts:
- name: fake
  context: {cluster: fake, user: kernels, namespace: default}
current-context: fake
"""
