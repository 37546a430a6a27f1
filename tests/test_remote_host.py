"""The "other host" of the remote-kernel tests: a private sshd on 127.0.0.2 (tests/remote_host.py).

These tests check the fixture itself, so that a failing remote-kernel test can be
blamed on the kernel and not on the SSH set-up: the address really counts as
remote for jupyter_client and gateway_provisioners, logins work with the run's key
through both OpenSSH and paramiko (the library gateway_provisioners uses), a wrong
key or an unknown host key is refused, and stopping the sshd leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path

import pytest

from tests.remote_host import (
    REMOTE_ADDRESS,
    SshHost,
    missing_ssh_programs,
    session_processes,
    start_sshd,
    stop_sshd,
)

# "as ssh_host" marks the fixture as a deliberate re-export, so ruff does not take the test arguments of
# that name for redefinitions of an unused import (F811).
from tests.remote_host import ssh_host as ssh_host


def run_ssh(host: SshHost, command: str) -> subprocess.CompletedProcess[str]:
    """Run ``command`` through ``ssh`` on ``host``."""
    return subprocess.run(host.ssh_argv(command), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)


def paramiko_client(host: SshHost, key_file: str | None = None, known_hosts: str | None = None):
    """A paramiko client connected the strict way: known hosts from the file, unknown hosts rejected."""
    paramiko = pytest.importorskip("paramiko")
    client = paramiko.SSHClient()
    client.load_host_keys(known_hosts or host.known_hosts_file)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(
            host.host,
            port=host.port,
            username=host.user,
            key_filename=key_file or host.key_file,
            look_for_keys=False,
            allow_agent=False,
            timeout=30,
        )
    except BaseException:
        client.close()
        raise
    return client


def running(pid: int) -> bool:
    """Whether ``pid`` is alive (a zombie has exited: it only waits to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_address_counts_as_remote() -> None:
    """127.0.0.2 must not look local, or gateway_provisioners would start kernels without SSH."""
    from jupyter_client.localinterfaces import is_local_ip, is_public_ip

    assert not is_local_ip(REMOTE_ADDRESS)
    assert not is_public_ip(REMOTE_ADDRESS)
    remote_provisioner = pytest.importorskip("gateway_provisioners.remote_provisioner")
    assert remote_provisioner.RemoteProvisionerBase.ip_is_local(REMOTE_ADDRESS) is False


def test_ssh_runs_a_command_through_our_sshd(ssh_host: SshHost) -> None:
    done = run_ssh(ssh_host, 'echo "hello from $(whoami)"; echo "$SSH_CONNECTION"; exit 7')

    assert done.returncode == 7, done.stderr
    greeting, connection = done.stdout.splitlines()
    assert greeting == f"hello from {ssh_host.user}"
    # client-address client-port server-address server-port: the login went through our sshd.
    assert connection.split()[2:] == [REMOTE_ADDRESS, str(ssh_host.port)]
    assert done.stderr == ""


def test_paramiko_connects_with_known_hosts_and_reject_policy(ssh_host: SshHost) -> None:
    client = paramiko_client(ssh_host)
    try:
        _stdin, stdout, _stderr = client.exec_command("echo $$")
        pid = stdout.read().decode().strip()
        assert stdout.channel.recv_exit_status() == 0
    finally:
        client.close()
    assert pid.isdigit() and int(pid) > 1


def test_wrong_key_is_refused(ssh_host: SshHost, tmp_path: Path) -> None:
    paramiko = pytest.importorskip("paramiko")
    other_key = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other_key)], check=True)

    done = run_ssh(dataclasses.replace(ssh_host, key_file=str(other_key)), "true")
    assert done.returncode == 255
    assert "Permission denied" in done.stderr
    with pytest.raises(paramiko.AuthenticationException):
        paramiko_client(ssh_host, key_file=str(other_key))


def test_unknown_host_key_is_refused(ssh_host: SshHost, tmp_path: Path) -> None:
    """The known_hosts file is what lets the clients in: without it both refuse the host."""
    paramiko = pytest.importorskip("paramiko")
    empty = tmp_path / "known_hosts"
    empty.write_text("")

    done = run_ssh(dataclasses.replace(ssh_host, known_hosts_file=str(empty)), "true")
    assert done.returncode == 255
    assert "Host key verification failed" in done.stderr
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        paramiko_client(ssh_host, known_hosts=str(empty))


def test_stop_sshd_leaves_no_process(tmp_path: Path) -> None:
    """stop_sshd ends the daemon, an open session and a process a login left running in the background."""
    missing = missing_ssh_programs()
    if missing:
        pytest.skip(f"openssh not installed: missing {', '.join(missing)}")
    host = start_sshd(tmp_path)
    try:
        # A background sleeper, re-parented away from the session once the shell exits.
        done = run_ssh(host, "nohup sleep 300 >/dev/null 2>&1 </dev/null & echo $!")
        assert done.returncode == 0, done.stderr
        orphan = int(done.stdout)
        # And a session still open when the daemon stops.
        session = subprocess.Popen(
            host.ssh_argv("echo started; exec sleep 300"), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True
        )
        assert session.stdout is not None
        assert session.stdout.readline() == "started\n"
        left = session_processes(host)
        assert orphan in left
        assert len(left) >= 3  # the orphan, the open session's sshd process(es) and its sleep
    finally:
        stop_sshd(host)
    try:
        assert session.wait(timeout=60) == 255  # the connection was cut, not ended by the command
    finally:
        session.kill()
        session.wait()
    assert not running(host.sshd_pid)
    assert not running(orphan)
    assert not [pid for pid in left if running(pid)]
    assert session_processes(host) == set()
    assert os.path.exists(host.log_file)
