"""A second host for tests of remote kernels: this machine, reached over SSH at 127.0.0.2.

The tests start their own ``sshd`` (Debian's openssh-server) on a free loopback
port with keys made for the run, so nothing depends on the system's sshd, on
``~/.ssh`` or on any network. The address is 127.0.0.2 and not 127.0.0.1 on
purpose: ``jupyter_client.localinterfaces`` counts 127.0.0.1 and the machine's
own addresses as local, and gateway_provisioners then starts the kernel as a
local child without SSH — the remote path would not be tested at all.

Everything here is synchronous: it runs in a session fixture, before any test's
event loop exists, so there is no loop to block.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

#: The "other host": a loopback address that jupyter_client does not count as local.
REMOTE_ADDRESS = "127.0.0.2"
SSHD = "/usr/sbin/sshd"
#: sshd refuses to start without its privilege-separation directory (made by the init script normally).
PRIVSEP_DIR = "/run/sshd"
#: How long start_sshd waits for sshd to accept a login before giving up (a safety net, not a measure).
START_TIMEOUT = 30.0


@dataclass(frozen=True)
class SshHost:
    """A running private sshd and what a client needs to log in to it."""

    host: str
    port: int
    user: str
    #: Private key of the client (its public half is the only entry of the server's authorized_keys).
    key_file: str
    #: ``[host]:port key`` lines that both OpenSSH's ``ssh`` and paramiko's ``load_host_keys`` read.
    known_hosts_file: str
    sshd_pid: int
    #: The folder holding the keys, the config, the pid file and ``sshd.log``.
    directory: str

    @property
    def log_file(self) -> str:
        """sshd's own log (``-e``), for a failing test to show why a login was refused."""
        return os.path.join(self.directory, "sshd.log")

    def ssh_options(self) -> list[str]:
        """Options that make ``ssh`` use only this run's key and host key, and never prompt.

        ``-F none`` keeps the system's and the user's ssh_config (hashed known hosts,
        GSSAPI, control masters) out; ``IdentitiesOnly`` keeps an agent's keys out.
        """
        return [
            "-F",
            "none",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={self.known_hosts_file}",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "LogLevel=ERROR",
            "-i",
            self.key_file,
            "-p",
            str(self.port),
        ]

    def ssh_argv(self, command: str) -> list[str]:
        """An ``ssh`` command line that runs ``command`` (one shell string) on the "remote" host."""
        return ["ssh", *self.ssh_options(), f"{self.user}@{self.host}", command]


def default_user() -> str:
    """The account to log in as: the one running the tests (root in CI and on the dev machine)."""
    return "root" if os.geteuid() == 0 else getpass.getuser()


def free_port(address: str = REMOTE_ADDRESS) -> int:
    """A port that is free on ``address`` now (start_sshd retries if another process takes it meanwhile)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def _keygen(path: Path, comment: str) -> str:
    """Make an ed25519 key pair without a passphrase; return the public line."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    return path.with_name(path.name + ".pub").read_text().strip()


def _write_config(directory: Path, port: int, host_key: Path) -> Path:
    """The sshd_config of one run: key login only, everything in ``directory``."""
    config = directory / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"ListenAddress {REMOTE_ADDRESS}",
                f"Port {port}",
                f"HostKey {host_key}",
                f"AuthorizedKeysFile {directory / 'authorized_keys'}",
                f"PidFile {directory / 'sshd.pid'}",
                "PermitRootLogin prohibit-password",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                # The tmp folder may be group-writable or owned by another user than the login one.
                "StrictModes no",
                "PrintMotd no",
                # Tests look at sshd.log when a login fails.
                "LogLevel VERBOSE",
                "",
            ]
        )
    )
    return config


def _port_open(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((address, port)) == 0


def _wait_until_ready(proc: subprocess.Popen, host: SshHost) -> None:
    """Wait until sshd accepts connections and a real login runs ``true``; raise with its log if it died."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited with {proc.returncode}: {Path(host.log_file).read_text()}")
        if _port_open(host.host, host.port):
            done = subprocess.run(
                host.ssh_argv("true"),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=START_TIMEOUT,
            )
            if done.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"ssh login failed: {done.stderr.strip()}\nsshd log:\n{Path(host.log_file).read_text()}"
                )
        elif time.monotonic() > deadline:
            raise RuntimeError(f"sshd did not listen on {host.host}:{host.port}: {Path(host.log_file).read_text()}")
        time.sleep(0.05)


def _bind_failed(log_file: str) -> bool:
    """Whether sshd exited because another process took the port between free_port() and its bind."""
    text = Path(log_file).read_text()
    return "Address already in use" in text or "Cannot bind any address" in text


#: The Popen objects of running sshds, so stop_sshd can reap its own child.
_children: dict[int, subprocess.Popen] = {}


def start_sshd(tmp_dir: str | os.PathLike[str], user: str | None = None) -> SshHost:
    """Start a private sshd on 127.0.0.2 with fresh host and client keys kept in ``tmp_dir``.

    sshd runs in the foreground (``-D``) as our child in a session of its own, logging
    to ``tmp_dir/sshd.log``. Returns once a real ``ssh ... true`` has succeeded, so the
    first test never races the daemon's start.
    """
    directory = Path(tmp_dir).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(PermissionError):  # not root: sshd's log will say if it needs the folder
        os.makedirs(PRIVSEP_DIR, mode=0o755, exist_ok=True)

    host_key = directory / "ssh_host_ed25519_key"
    client_key = directory / "id_ed25519"
    host_pub = _keygen(host_key, "bkp-test-host")
    client_pub = _keygen(client_key, "bkp-test-client")
    (directory / "authorized_keys").write_text(client_pub + "\n")
    known_hosts = directory / "known_hosts"
    log_file = directory / "sshd.log"

    for _attempt in range(5):
        port = free_port()
        # OpenSSH and paramiko both look a non-22 port's host up as "[address]:port". The line is plain
        # (no hashed name, no comment) so that both readers, and a person, agree on what it says.
        key_type, key_b64 = host_pub.split()[:2]
        known_hosts.write_text(f"[{REMOTE_ADDRESS}]:{port} {key_type} {key_b64}\n")
        config = _write_config(directory, port, host_key)
        with open(log_file, "wb") as log:
            proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        host = SshHost(
            host=REMOTE_ADDRESS,
            port=port,
            user=user or default_user(),
            key_file=str(client_key),
            known_hosts_file=str(known_hosts),
            sshd_pid=proc.pid,
            directory=str(directory),
        )
        try:
            _wait_until_ready(proc, host)
        except BaseException:
            _stop(proc, host)
            if proc.returncode is not None and _bind_failed(host.log_file):
                continue
            raise
        _children[proc.pid] = proc
        return host
    raise RuntimeError(f"sshd could not bind a port on {REMOTE_ADDRESS}: {log_file.read_text()}")


def _parent_pids() -> dict[int, int]:
    """Each live process's parent, from /proc; zombies are left out (they are gone, only not yet reaped)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                state, ppid = fh.read().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError):
            continue
        if state != "Z":
            parents[int(entry)] = int(ppid)
    return parents


def _logged_in_from(host: SshHost, pid: int) -> bool:
    """Whether ``pid`` came from a login to ``host``: sshd puts ``SSH_CONNECTION=... ADDRESS PORT`` in it."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            environ = fh.read().split(b"\0")
    except OSError:
        return False
    suffix = f" {host.host} {host.port}".encode()
    return any(item.startswith(b"SSH_CONNECTION=") and item.endswith(suffix) for item in environ)


def session_processes(host: SshHost) -> set[int]:
    """Processes that ``host``'s sshd started, still running: its connection children and their
    descendants, and anything started through a login that left its tree (``nohup cmd &`` is
    re-parented to init, but keeps ``SSH_CONNECTION`` naming our address and port).

    The sshd listener itself is not included; zombies are not counted (they have exited).
    Tests can use it to count what a remote kernel left.
    """
    return _session_tree(host, _parent_pids())


def _is_our_sshd(host: SshHost) -> bool:
    """Whether ``host.sshd_pid`` is still this run's listener (and not a reused pid: its children are not ours)."""
    try:
        with open(f"/proc/{host.sshd_pid}/cmdline", "rb") as fh:
            cmdline = fh.read()
    except OSError:
        return False
    # A substring test: sshd rewrites its title to "sshd: /usr/sbin/sshd -D -e -f CONFIG [listener] ...".
    return os.path.join(host.directory, "sshd_config").encode() in cmdline


def _session_tree(host: SshHost, parents: dict[int, int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    todo = list(children.get(host.sshd_pid, [])) if _is_our_sshd(host) else []
    todo += [pid for pid in parents if pid != host.sshd_pid and _logged_in_from(host, pid)]
    while todo:
        pid = todo.pop()
        if pid in found or pid not in parents:
            continue
        found.add(pid)
        todo.extend(children.get(pid, []))
    found.discard(os.getpid())
    return found


def _kill(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _signal_group(pid: int, sig: int) -> None:
    """``sig`` to the process group led by ``pid`` (sshd's own session), or to ``pid`` alone."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        _kill(pid, sig)


def _kill_sessions(host: SshHost) -> None:
    """SIGKILL every session process, leaves first, until none is left.

    Each connection child of sshd runs setsid(), so a signal to sshd's group does not reach
    it. Killing leaves first lets every process be reaped by its still-living parent (a
    shell, sshd's session and monitor processes, the listener): killed all at once, the
    children outlive their parents, are re-parented to PID 1 and stay zombies where PID 1
    is not an init that reaps (as in many containers). Looping also catches a shell's last
    fork. A process that a login detached (``nohup … &``) already belongs to PID 1 either way.
    """
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        parents = _parent_pids()
        left = _session_tree(host, parents)
        if not left:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes of the test sshd on port {host.port} would not die: {sorted(left)}")
        busy_parents = {parents[pid] for pid in left}
        for pid in left - busy_parents:
            _kill(pid, signal.SIGKILL)
        time.sleep(0.02)


def _stop(proc: subprocess.Popen | None, host: SshHost) -> None:
    """Kill every process the logins started, then stop the listener and reap it."""
    _kill_sessions(host)
    if _is_our_sshd(host):
        _signal_group(host.sshd_pid, signal.SIGTERM)
    if proc is not None:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _signal_group(host.sshd_pid, signal.SIGKILL)
            proc.wait()
    # A connection accepted in the last instant would have forked a child before the listener died.
    _kill_sessions(host)


def stop_sshd(host: SshHost) -> None:
    """Stop the sshd of ``host`` and every session process it left; wait for them to exit.

    The sshd is our child (start_sshd keeps its Popen), so it is reaped here; the
    processes of its logins are children of sshd's connection processes or of init,
    which reap them once they die.
    """
    _stop(_children.pop(host.sshd_pid, None), host)


def missing_ssh_programs() -> list[str]:
    """The programs the ssh_host fixture needs that this machine lacks."""
    missing = [SSHD] if not os.access(SSHD, os.X_OK) else []
    return missing + [name for name in ("ssh", "ssh-keygen") if shutil.which(name) is None]


@pytest.fixture(scope="session")
def ssh_host() -> Iterator[SshHost]:
    """One private sshd on 127.0.0.2 for the whole session; stopped and its folder removed at the end."""
    missing = missing_ssh_programs()
    if missing:
        pytest.skip(f"openssh not installed: missing {', '.join(missing)}")
    directory = tempfile.mkdtemp(prefix="bkp-sshd-")
    try:
        host = start_sshd(directory)
        try:
            yield host
        finally:
            stop_sshd(host)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
