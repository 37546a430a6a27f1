"""Remote kernels: start, restart and shutdown over SSH, ours against gateway_provisioners' stock engine.

The "remote" host is this machine at 127.0.0.2, reached through a private sshd
that this case starts and stops (``tests/remote_host.py``'s fixture code): the
kernels really go through SSH, ``nohup`` and the launch payload, as on another
host, but nothing depends on the network or on ``~/.ssh``.

Three variants, interleaved round by round so that drift on the machine hits all
of them alike, each round in a fresh process (``remote_round.py``):

* ours: ``backend-python`` through ``backend-distributed-provisioner``;
* stock: ipykernel through gateway_provisioners' ``DistributedProvisioner`` and
  its ``launch_ipykernel.py``: the ``ssh_python`` kernelspec, made by its installer;
* local: ``backend-python`` through our local provisioner, the floor a remote
  kernel is compared with.

A round that hangs is killed after ``ROUND_TIMEOUT``; after every round, whatever
is left of its kernel (found by kernel id on a command line or in an environment,
and by SSH session) is counted and killed, so the run leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from kernel_procs import kernel_processes, parent_and_state
from measure import Samples
from remote_round import GONE_TIMEOUT
from report import Row

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from backend_kernel_provisioner.common.leftovers import remove_stale_folders  # noqa: E402
from tests.remote_host import SshHost, missing_ssh_programs, session_processes, start_sshd, stop_sshd  # noqa: E402

WORKER = Path(__file__).resolve().parent / "remote_round.py"
#: A round's hard limit (each of its waits has a cap of its own); a stock round takes about a minute.
ROUND_TIMEOUT = 600.0
#: How long a round's processes may take to exit on their own after it returned, before they count as left.
EXIT_GRACE = 3.0
STOCK_SPEC = "bkp-bench-gp-ssh-python"
#: What a round measures (see remote_round.py), and the title of its rows.
OPERATIONS = {
    "start": "remote kernel start over SSH (start_kernel → kernel_info reply)",
    "restart": "remote kernel restart (restart_kernel → kernel_info reply)",
    "restart_old_exited": "remote kernel restart: replaced kernel process exited (from restart_kernel)",
    "shutdown": "remote kernel shutdown (shutdown_kernel(now=False) returns)",
    "shutdown_all_exited": "remote kernel shutdown: every process of the kernel exited (from shutdown_kernel)",
}


@dataclass
class Variant:
    """One way of running the kernel, and what its rounds measured."""

    name: str
    args: list[str]
    #: Seconds per operation, one value per round.
    samples: dict[str, Samples] = field(default_factory=lambda: {op: Samples() for op in OPERATIONS})
    #: Processes of its kernel still running after a round had returned (killed by the sweep).
    left: list[int] = field(default_factory=list)
    #: How many waits for processes to exit reached GONE_TIMEOUT (the value recorded is then the cap).
    capped: int = 0


def free_port() -> int:
    """A TCP port free on every interface now (gateway_provisioners' response socket binds the public IP)."""
    with socket.socket() as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


def install_stock_kernelspec(installer: str, prefix: Path, name: str, *options: str) -> None:
    """A gateway_provisioners kernelspec made by its own installer (``gateway_provisioners.cli.<installer>``) in
    a private prefix.

    The installer assembles its launcher (``launch_ipykernel.py`` and the shared ``server_listener.py``, or
    ``launch_docker.py``) into the spec folder; only the interpreter changes, from ``python`` to this one's
    absolute path (neither an SSH session's PATH nor the server's need have this venv).
    """
    subprocess.run(
        [sys.executable, "-m", f"gateway_provisioners.cli.{installer}", "install", f"--prefix={prefix}",
         f"--kernel-name={name}", *options],
        check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    spec_file = prefix / "share" / "jupyter" / "kernels" / name / "kernel.json"
    spec = json.loads(spec_file.read_text())
    spec["argv"][0] = sys.executable
    spec_file.write_text(json.dumps(spec, indent=1))


def _private_home(home: Path, host: SshHost) -> None:
    """A HOME whose ~/.ssh holds only the fixture's key and host key: where stock paramiko looks."""
    ssh = home / ".ssh"
    ssh.mkdir(parents=True, mode=0o700)
    shutil.copy(host.key_file, ssh / "id_ed25519")
    os.chmod(ssh / "id_ed25519", 0o600)
    shutil.copy(host.known_hosts_file, ssh / "known_hosts")


def _variants(host: SshHost) -> list[Variant]:
    ours_options = {"remote_hosts": [host.host], "ssh_port": host.port, "ssh_key_file": host.key_file,
                    "ssh_known_hosts_file": host.known_hosts_file}
    return [
        Variant("ours", ["--kernel-name", "backend-python", "--provisioner", "backend-distributed-provisioner",
                         "--options", json.dumps(ours_options), "--warm-response-manager"]),
        Variant("stock", ["--kernel-name", STOCK_SPEC, "--warm-response-manager"]),
        Variant("local", ["--kernel-name", "backend-python"]),
    ]


# -- cleaning up after a round ----------------------------------------------------------------------


def _leftovers(kernel_id: str, host: SshHost) -> dict[int, int]:
    """Processes of a round still running (with their parents): they carry its kernel id, or our sshd made them."""
    found = kernel_processes(kernel_id)
    for pid in session_processes(host) - found.keys() - {os.getpid()}:
        info = parent_and_state(pid)
        if info is not None:
            found[pid] = info[0]
    return found


async def _sweep(kernel_id: str, host: SshHost) -> list[int]:
    """Wait EXIT_GRACE for the round's processes to end, then SIGKILL the rest, leaves first; return the rest."""
    deadline = time.monotonic() + EXIT_GRACE
    left = await asyncio.to_thread(_leftovers, kernel_id, host)
    while left and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        left = await asyncio.to_thread(_leftovers, kernel_id, host)
    killed = sorted(left)
    kill_deadline = time.monotonic() + 30
    while left:
        if time.monotonic() > kill_deadline:
            raise RuntimeError(f"processes of kernel {kernel_id} would not die: {sorted(left)}")
        # Leaves first, so that each dies while its parent can still reap it (PID 1 here may not reap).
        for pid in left.keys() - set(left.values()):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(0.02)
        left = await asyncio.to_thread(_leftovers, kernel_id, host)
    for stale in Path(tempfile.gettempdir()).glob(f"kernel-{kernel_id}_*.json"):
        stale.unlink(missing_ok=True)  # launch_ipykernel.py's connection file, when it had no time to remove it
    for pid in killed:  # our launcher's temp folder, which a killed launcher (and its reaper) could not remove
        await asyncio.to_thread(remove_stale_folders, owner=pid)
    return killed


# -- running the rounds -----------------------------------------------------------------------------


async def run_round(variant: Variant, env: dict[str, str], sweep: Callable[[str], Awaitable[list[int]]]) -> None:
    """One start/restart/shutdown of ``variant`` in its own process group; a stuck one is killed; ``sweep``
    then removes whatever is left of its kernel (and returns what it had to remove)."""
    kernel_id = str(uuid.uuid4())
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(WORKER), "--kernel-id", kernel_id, *variant.args,
        env={**env, "GP_RESPONSE_PORT": str(free_port())},
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), ROUND_TIMEOUT)
    except asyncio.TimeoutError:
        out, err = b"", f"no result within {ROUND_TIMEOUT:g} s; killed".encode()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # still running, so the group is still ours
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        variant.left += await sweep(kernel_id)
    lines = out.decode().strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = "\n".join(err.decode(errors="replace").strip().splitlines()[-15:])
        raise RuntimeError(f"{variant.name} round failed (exit {proc.returncode}):\n{tail}")
    times = json.loads(lines[-1])
    for op in variant.samples:
        variant.samples[op].values.append(times[op])
        variant.capped += times[op] >= GONE_TIMEOUT
    print(f"  {variant.name}: " + ", ".join(f"{op} {times[op]:.2f} s" for op in variant.samples), flush=True)


def _environment(workdir: Path, host: SshHost) -> dict[str, str]:
    """Settings shared by every variant; gateway_provisioners reads them at import, paramiko under HOME."""
    home, prefix, logs = workdir / "home", workdir / "jupyter", workdir / "logs"
    _private_home(home, host)
    install_stock_kernelspec("ssh_specapp", prefix, STOCK_SPEC, f"--remote-hosts={host.host}")
    logs.mkdir()
    paths = [str(prefix / "share" / "jupyter"), *os.environ.get("JUPYTER_PATH", "").split(os.pathsep)]
    return {
        **os.environ,
        "HOME": str(home),
        "JUPYTER_PATH": os.pathsep.join(filter(None, paths)),
        "GP_SSH_PORT": str(host.port),
        # gateway_provisioners refuses root by default (its KERNEL_USERNAME check); the run may be root.
        "GP_UNAUTHORIZED_USERS": "nobody",
        "GP_KERNEL_LOG_DIR": str(logs),
    }


#: What would bring each of our figures closer to its floor (a local kernel's), for the report's notes.
NOTES = {
    "start": "SSH login, nohup and the launcher's own Python start come on top of a local start; "
             "an SSH connection kept open, or a launcher started ahead of the kernel, would remove most of it",
    "restart": "only the kernel child restarts, next to a launcher that stays (no SSH login); "
               "the floor is a local restart",
    "restart_old_exited": "at the floor: the launcher stops the old kernel child before it starts the new one",
    "shutdown": "the call also waits for the launcher to confirm that the kernel and its services have stopped "
                "(a round trip on the launcher's channel); the floor is a local shutdown",
    "shutdown_all_exited": "kernel, launcher and the launcher's reaper exit with the call (the reaper skips its "
                           "grace period when nothing was left to signal); the floor is a local shutdown",
}


def _rows(ours: Variant, stock: Variant, local: Variant) -> list[Row]:
    ours_label = "backend-python + backend-distributed-provisioner"
    stock_label = "ipykernel + gateway_provisioners DistributedProvisioner (stock)"
    local_label = "backend-python, local provisioner"
    facts = [f"{v.name}: {len(v.left)} process(es) still running {EXIT_GRACE:g} s after its rounds (killed)"
             for v in (ours, stock) if v.left]
    facts += [f"{v.name}: {v.capped} wait(s) for an exit reached the {GONE_TIMEOUT:g} s cap"
              for v in (ours, stock) if v.capped]
    rows = []
    for op, title in OPERATIONS.items():
        note = "; ".join(filter(None, [NOTES[op], *facts]))
        rows.append(Row(title, ours_label, stock_label, ours.samples[op], stock.samples[op], note))
        rows.append(Row(title, ours_label, local_label, ours.samples[op], local.samples[op], ""))
    return rows


async def remote_lifecycle(s) -> list[Row]:
    """Rows for start, restart and shutdown of a remote kernel: ours against stock, and against a local kernel."""
    missing = missing_ssh_programs()
    if missing:
        print(f"  skipped: openssh not installed (missing {', '.join(missing)})", flush=True)
        return []
    with tempfile.TemporaryDirectory(prefix="bkp-bench-remote-") as folder:
        workdir = Path(folder)
        host = await asyncio.to_thread(start_sshd, workdir / "sshd")
        try:
            env = await asyncio.to_thread(_environment, workdir, host)  # runs gateway_provisioners' installer
            variants = _variants(host)
            for number in range(s.remote_rounds):
                print(f"  round {number + 1} of {s.remote_rounds}", flush=True)
                for variant in variants:
                    await run_round(variant, env, lambda kernel_id: _sweep(kernel_id, host))
        finally:
            await asyncio.to_thread(stop_sshd, host)
    return _rows(*variants)
