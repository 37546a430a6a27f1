"""Kernels in containers: start, first cell, restart and shutdown, ours against gateway_provisioners' stock engine.

Both run in the same image (our kernel image, ``backend_kernel_provisioner.install.image``)
on Podman's Docker-compatible API, which this case starts on a private socket and
stops (``tests/podman_host.py``'s code):

* ours: ``backend-python`` through ``backend-docker-provisioner`` (our launcher is
  the container's command; a restart keeps the container);
* stock: ipykernel through gateway_provisioners' ``DockerProvisioner`` and its
  ``launch_docker.py``, with the kernelspec its installer makes
  (``jupyter-docker-spec``); the container runs the image's default command,
  gateway_provisioners' ``bootstrap-kernel.sh`` and ``launch_ipykernel.py``.

Rounds are interleaved (ours, stock, ours, ...), each in a fresh process
(``remote_round.py --in-container``); after each, any container of its kernel
still there is counted and removed.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

from measure import Samples
from remote import EXIT_GRACE, Variant, install_stock_kernelspec, run_round
from remote_round import GONE_TIMEOUT
from report import Row

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from backend_kernel_provisioner.install.image import ImageBuildError, ensure_kernel_image  # noqa: E402
from backend_kernel_provisioner.remote.docker import force_remove  # noqa: E402
from tests.podman_host import DEFAULT_NETWORK, missing_podman_programs, start_service, stop_service  # noqa: E402

STOCK_SPEC = "bkp-bench-gp-docker-python"
OPERATIONS = {
    "start": "container kernel start (start_kernel → kernel_info reply)",
    "first_cell": "container kernel: first cell after the start (execute → reply)",
    "restart": "container kernel restart (restart_kernel → kernel_info reply)",
    "shutdown": "container kernel shutdown (shutdown_kernel(now=False) returns)",
    "shutdown_container_gone": "container kernel shutdown: its container removed (from shutdown_kernel)",
}
NOTES = {
    "start": "the container's creation and the launcher's Python start come on top of a local start",
    "first_cell": "the same cell in a local kernel is the floor",
    "restart": "ours restarts the kernel child in the container that stays; the stock engine deletes the "
               "container and makes a new one",
    "shutdown": "ours: the kernel's own shutdown (a local one's 0.2 s), the launcher's confirmation that kernel and "
                "services stopped (20 ms), then the engine's forced removal of the container, which the call "
                "waits for so that nothing is left when it returns (about 0.25 s on Podman); the stock engine "
                "returns before its container is gone",
    "shutdown_container_gone": "the engine's removal is the floor of both; Podman lists a removed container "
                               "for a while after the removal call returned",
}


def _containers_of(kernel_id: str, *, remove: bool = False) -> int:
    """How many containers of a round are there (in any state); with ``remove``, they are removed."""
    import docker

    client = docker.DockerClient.from_env()
    try:
        found = client.containers.list(all=True, filters={"label": f"kernel_id={kernel_id}"})
        for container in found if remove else ():
            force_remove(container)
        return len(found)
    finally:
        client.close()


async def _sweep(kernel_id: str) -> list[int]:
    """Containers still there EXIT_GRACE after a round are removed; one entry per container."""
    if await asyncio.to_thread(_containers_of, kernel_id):
        await asyncio.sleep(EXIT_GRACE)
    return list(range(await asyncio.to_thread(_containers_of, kernel_id, remove=True)))


def _rows(ours: Variant, stock: Variant) -> list[Row]:
    facts = [f"{v.name}: {len(v.left)} container(s) still there {EXIT_GRACE:g} s after its rounds (removed)"
             for v in (ours, stock) if v.left]
    facts += [f"{v.name}: {v.capped} wait(s) reached the {GONE_TIMEOUT:g} s cap" for v in (ours, stock) if v.capped]
    return [
        Row(title, "backend-python + backend-docker-provisioner", "ipykernel + gateway_provisioners DockerProvisioner "
            "(stock), same image", ours.samples[op], stock.samples[op], "; ".join(filter(None, [NOTES[op], *facts])))
        for op, title in OPERATIONS.items()
    ]


async def container_lifecycle(s) -> list[Row]:
    """Rows for a container kernel's start, first cell, restart and shutdown: ours against the stock engine."""
    missing = missing_podman_programs()
    if missing:
        print(f"  skipped: missing {', '.join(missing)} (Debian packages)", flush=True)
        return []
    try:
        image = await asyncio.to_thread(ensure_kernel_image, log=lambda line: print(f"  {line}", flush=True))
    except ImageBuildError as exc:
        print(f"  skipped: the kernel image cannot be built: {exc}", flush=True)
        return []
    with tempfile.TemporaryDirectory(prefix="bkp-bench-containers-") as folder:
        workdir = Path(folder)
        proc, docker_host = await asyncio.to_thread(start_service, str(workdir))
        try:
            await asyncio.to_thread(install_stock_kernelspec, "docker_specapp", workdir / "jupyter", STOCK_SPEC,
                                    f"--image-name={image}")
            specs = str(workdir / "jupyter" / "share" / "jupyter")
            paths = [specs, *os.environ.get("JUPYTER_PATH", "").split(os.pathsep)]
            env = {**os.environ, "DOCKER_HOST": docker_host, "GP_DOCKER_NETWORK": DEFAULT_NETWORK,
                   "GP_UNAUTHORIZED_USERS": "nobody",
                   "KERNEL_UID": "1000", "KERNEL_GID": "100", "JUPYTER_PATH": os.pathsep.join(filter(None, paths))}
            os.environ["DOCKER_HOST"] = docker_host  # for the sweep's client, in this process
            common = ["--in-container", "--warm-response-manager"]
            variants = [
                Variant("ours", ["--kernel-name", "backend-python", "--provisioner", "backend-docker-provisioner",
                                 "--options", json.dumps({"image_name": image}), *common],
                        samples={op: Samples() for op in OPERATIONS}),
                Variant("stock", ["--kernel-name", STOCK_SPEC, *common], samples={op: Samples() for op in OPERATIONS}),
            ]
            for number in range(s.remote_rounds):
                print(f"  round {number + 1} of {s.remote_rounds}", flush=True)
                for variant in variants:
                    await run_round(variant, env, _sweep)
        finally:
            os.environ.pop("DOCKER_HOST", None)
            await asyncio.to_thread(stop_service, proc)
    return _rows(*variants)
