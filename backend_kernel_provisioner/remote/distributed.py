"""``backend-distributed-provisioner``: our kernels on SSH hosts, on gateway_provisioners' ``DistributedProvisioner``.

gateway_provisioners starts the launcher over SSH (``nohup … &`` on the chosen
host, or directly when that host is this machine) and waits for its payload; our
mixin does the rest. What we change in the engine itself:

* SSH settings are traits (port, user, key file, known-hosts file), not only
  environment variables read once at import; host keys are still checked
  (an unknown host is refused);
* the blocking SSH calls and name lookups run in a worker thread, never on the
  server's event loop; startup is confirmed as soon as the payload arrives
  (the stock loop sleeps 0.5 s per round);
* a launcher that must be killed (it cannot answer) is killed over SSH by pid.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import signal
import subprocess
from socket import gethostbyname
from typing import Any

import paramiko
from gateway_provisioners.distributed import DistributedProvisioner
from gateway_provisioners.remote_provisioner import RemoteProvisionerBase
from traitlets import Int, Unicode, default

from backend_kernel_provisioner.remote.provisioner import BackendRemoteProvisionerMixin, RemoteKernelError

#: Seconds between checks of the launch payload while a launcher starts.
CONFIRM_INTERVAL = 0.02


class BackendDistributedProvisioner(BackendRemoteProvisionerMixin, DistributedProvisioner):
    """Our kernels on the hosts of ``remote_hosts``, their services and model servers next to them."""

    ssh_port = Int(
        config=True, help="SSH port of the kernel hosts (env: BACKEND_SSH_PORT, then GP_SSH_PORT; default 22)."
    )
    ssh_user = Unicode(
        config=True, help="User to log in as on the kernel hosts (env: GP_REMOTE_USER; default: this user)."
    )
    ssh_key_file = Unicode(
        config=True,
        help="Private key for the kernel hosts (env: BACKEND_SSH_KEY_FILE; default: ~/.ssh's keys and the agent).",
    )
    ssh_known_hosts_file = Unicode(
        config=True,
        help="Known-hosts file with the kernel hosts' keys, in addition to ~/.ssh/known_hosts "
        "(env: BACKEND_SSH_KNOWN_HOSTS); an unknown host key is refused.",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._init_remote_state()

    @default("ssh_port")
    def _default_ssh_port(self) -> int:
        return int(os.environ.get("BACKEND_SSH_PORT") or os.environ.get("GP_SSH_PORT") or 22)

    @default("ssh_user")
    def _default_ssh_user(self) -> str:
        return os.environ.get("GP_REMOTE_USER") or getpass.getuser()

    @default("ssh_key_file")
    def _default_ssh_key_file(self) -> str:
        return os.environ.get("BACKEND_SSH_KEY_FILE", "")

    @default("ssh_known_hosts_file")
    def _default_ssh_known_hosts_file(self) -> str:
        return os.environ.get("BACKEND_SSH_KNOWN_HOSTS", "")

    # -- starting the launcher ---------------------------------------------------------------

    async def _start_launcher(self, cmd: list[str], **kwargs: Any) -> None:
        self.kernel_log = None
        self.remote_user = self.ssh_user
        self.assigned_host = self._determine_next_host(kwargs.get("env", {}))
        self.ip = self.assigned_ip = await asyncio.to_thread(gethostbyname, self.assigned_host)
        launch_kwargs = RemoteProvisionerBase._scrub_kwargs(kwargs)
        output = await asyncio.to_thread(self._launch_remote_process, cmd, **launch_kwargs)
        try:
            self.pid = int(output)
        except (TypeError, ValueError):
            raise RemoteKernelError(
                f"the launcher did not start on {self.assigned_host}: {str(output).strip() or 'no output'}"
            ) from None
        self.log_kernel_launch(cmd)
        await self.confirm_remote_startup()

    async def confirm_remote_startup(self) -> None:
        """Until the launcher's payload arrives; a launcher that died here fails the start at once."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.launch_timeout
        while True:
            if await self.receive_connection_info():
                return
            self._check_abandoned()
            if self.local_proc is not None and self.local_proc.poll() is not None:
                raise RemoteKernelError(
                    f"the launcher for kernel {self.kernel_id} exited with code {self.local_proc.returncode} "
                    f"before announcing the kernel (its log: {self.kernel_log})")
            if loop.time() > deadline:
                raise RemoteKernelError(
                    f"kernel {self.kernel_id}: no launch payload from {self.assigned_host} within "
                    f"{self.launch_timeout} s (the launcher's log on that host: {self.kernel_log})")
            await asyncio.sleep(CONFIRM_INTERVAL)

    def _get_ssh_client(self, host: str) -> paramiko.SSHClient | None:
        """paramiko with our SSH settings; the host key must be known."""
        client = paramiko.SSHClient()
        client.load_system_host_keys()
        if self.ssh_known_hosts_file:
            client.load_host_keys(self.ssh_known_hosts_file)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(
                gethostbyname(host), port=self.ssh_port, username=self.ssh_user,
                key_filename=self.ssh_key_file or None, password=self.remote_pwd or None,
                look_for_keys=not self.ssh_key_file, allow_agent=not self.ssh_key_file, timeout=30,
            )
        except (paramiko.SSHException, OSError) as exc:
            client.close()
            raise RemoteKernelError(
                f"cannot log in to {self.ssh_user}@{host}:{self.ssh_port} over SSH: {type(exc).__name__}: {exc} "
                "(check ssh_key_file, ssh_known_hosts_file and that the key is authorized there)"
            ) from None
        return client

    # -- stopping it --------------------------------------------------------------------------

    async def _kill_launcher(self) -> None:
        """SIGTERM to the launcher (it stops the kernel and services), by pid on its host."""
        if self.local_proc is not None:
            if self.local_proc.poll() is None:
                self.local_proc.send_signal(signal.SIGTERM)
            return
        if self.pid and self.ip:
            command = f"kill -TERM {int(self.pid)} 2>/dev/null; true"
            try:
                await asyncio.to_thread(self._rsh, self.ip, command)
            except (RemoteKernelError, paramiko.SSHException, OSError) as exc:
                self.log.warning("kernel %s: could not signal its launcher (pid %s on %s): %s",
                                 self.kernel_id, self.pid, self.assigned_host, exc)

    async def _await_launcher_exit(self) -> None:
        """A launcher started here is our child: reap it (SIGKILL if it outstays the stop timeout)."""
        proc: subprocess.Popen | None = self.local_proc  # type: ignore[has-type]
        self.local_proc = None
        if proc is None:
            return
        try:
            await asyncio.to_thread(proc.wait, self.launcher_stop_timeout)
        except Exception:
            proc.kill()
            await asyncio.to_thread(proc.wait)
