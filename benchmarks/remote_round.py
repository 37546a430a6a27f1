"""One round of a kernel's lifecycle, timed in a process of its own: start, restart, shutdown.

``benchmarks/remote.py`` runs this once per round and variant. A fresh process
per round is what makes the stock baseline measurable at all: gateway_provisioners
reads ``GP_SSH_PORT``, ``GP_RESPONSE_PORT`` and ``GP_KERNEL_LOG_DIR`` once, at
import, and paramiko finds its keys and known hosts under ``$HOME`` — so each
variant gets its settings from this process's environment. It also lets the
caller kill a stuck round as one process group.

The remote host is this machine, so the round also sees when the processes
really exit: the replaced kernel after a restart, every process of the kernel
(launcher included) after a shutdown — jupyter_client's calls can return while
they still run.

Prints one JSON line on stdout: seconds for ``start``, ``first_cell`` (a cell
right after the start, to its reply), ``restart``, ``restart_old_exited`` (from
the restart call until the old kernel process has exited), ``shutdown`` and
``shutdown_all_exited`` (from the shutdown call until no process of the kernel
is left). With ``--in-container`` the kernel's pid is the container's own
(another pid namespace), so ``restart_old_exited`` is not measured;
``shutdown_container_gone`` (until no container of the kernel is left, in any
state) is, through the Docker API of ``DOCKER_HOST``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from kernel_procs import alive, kernel_processes

#: Seconds a kernel may take to answer kernel_info after a start or restart (a safety net, not a measure).
READY_TIMEOUT = 120.0
#: The longest wait for a kernel's processes to exit; a round that reaches it records this value.
GONE_TIMEOUT = 120.0
#: Seconds between looks at /proc while waiting for processes to exit.
POLL_INTERVAL = 0.02


def _choose_provisioner(km: AsyncKernelManager, name: str, config: dict[str, Any]) -> None:
    """Run the kernelspec's argv with another provisioner, as ``AgentKernel.start(provisioner=...)`` does."""
    spec = km.kernel_spec
    if spec is None:
        raise ValueError(f"no kernelspec {km.kernel_name!r}")
    chosen = dict(spec.metadata.get("kernel_provisioner") or {})
    chosen["provisioner_name"] = name
    chosen["config"] = {**chosen.get("config", {}), **config}
    spec.metadata = {**spec.metadata, "kernel_provisioner": chosen}


async def _ready(km: AsyncKernelManager) -> AsyncKernelClient:
    """A fresh client once the kernel answers kernel_info (a restarted remote kernel may have new ports)."""
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=READY_TIMEOUT)
    except BaseException:
        kc.stop_channels()
        raise
    return kc


async def _kernel_pid(kc: AsyncKernelClient) -> int:
    """The kernel's own process, asked of the kernel itself (for ipykernel-based kernels, the one running cells)."""
    output: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream":
            output.append(msg["content"]["text"])

    await kc.execute_interactive("import os; print(os.getpid())", timeout=READY_TIMEOUT, output_hook=hook)
    return int("".join(output).strip())


async def _until(done: Callable[[], bool], since: float) -> float:
    """Seconds from ``since`` until ``done()`` (a /proc scan, run in a thread) holds; GONE_TIMEOUT if it never does."""
    deadline = since + GONE_TIMEOUT
    while not await asyncio.to_thread(done):
        if time.perf_counter() > deadline:
            return GONE_TIMEOUT
        await asyncio.sleep(POLL_INTERVAL)
    return time.perf_counter() - since


async def one_round(args: argparse.Namespace) -> dict[str, float]:
    if args.warm_response_manager:
        # The ResponseManager (an RSA key pair and the response socket) is made once per server, at its
        # first remote kernel; a long-running server has paid it already, so no round should.
        from gateway_provisioners.response_manager import ResponseManager

        ResponseManager.instance()
    km = AsyncKernelManager(kernel_name=args.kernel_name)
    if args.provisioner:
        _choose_provisioner(km, args.provisioner, json.loads(args.config))
    options = json.loads(args.options)
    times: dict[str, float] = {}
    try:
        begin = time.perf_counter()
        await km.start_kernel(kernel_id=args.kernel_id, **options)
        kc = await _ready(km)
        times["start"] = time.perf_counter() - begin
        begin = time.perf_counter()
        old_pid = await _kernel_pid(kc)
        times["first_cell"] = time.perf_counter() - begin
        kc.stop_channels()

        begin = time.perf_counter()
        await km.restart_kernel(now=False)
        kc = await _ready(km)
        times["restart"] = time.perf_counter() - begin
        if not args.in_container:
            times["restart_old_exited"] = await _until(lambda: not alive(old_pid), begin)
        kc.stop_channels()

        begin = time.perf_counter()
        await km.shutdown_kernel(now=False)
        times["shutdown"] = time.perf_counter() - begin
        times["shutdown_all_exited"] = await _until(lambda: not kernel_processes(args.kernel_id), begin)
        if args.in_container:
            times["shutdown_container_gone"] = await _until(lambda: not _containers(args.kernel_id), begin)
    except BaseException:
        if km.has_kernel:
            # Best effort; the caller sweeps whatever is left by kernel id and by SSH session.
            await asyncio.wait_for(km.shutdown_kernel(now=True), timeout=60)
        raise
    return times


def _containers(kernel_id: str) -> list[str]:
    """Containers of the kernel in any state (gateway_provisioners' and ours carry the ``kernel_id`` label)."""
    import docker

    client = docker.DockerClient.from_env()
    try:
        return [c.id for c in client.containers.list(all=True, filters={"label": f"kernel_id={kernel_id}"})]
    finally:
        client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kernel-name", required=True, help="kernelspec to start")
    parser.add_argument("--kernel-id", required=True, help="chosen by the caller, which sweeps by it afterwards")
    parser.add_argument("--provisioner", default="", help="switch the spec to this provisioner")
    parser.add_argument("--config", default="{}", help="JSON: provisioner config merged into the spec's")
    parser.add_argument("--options", default="{}", help="JSON: keyword arguments of start_kernel()")
    parser.add_argument("--in-container", action="store_true",
                        help="the kernel runs in a container: measure its removal, not its pid")
    parser.add_argument("--warm-response-manager", action="store_true",
                        help="make gateway_provisioners' ResponseManager before timing")
    args = parser.parse_args()
    times = asyncio.run(one_round(args))
    print(json.dumps(times), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
