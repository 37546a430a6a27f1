"""Built-in launch recipes for ``sshd`` (port 2200) and ``ttyd`` (port 7681).

A recipe prepares what its program needs and returns the command; when the
program is missing it raises :class:`NotAvailable`, which the manager reports
as "not available" instead of failing the kernel.

Neighbours on the same host (other kernels, other users) must not get a shell
through them: both listen only on the address the platform configures
(``service_bind_address``, default loopback), sshd takes keys only, and ttyd,
which has no authentication of its own, gets HTTP basic authentication with a
:class:`Credential` generated per kernel and reported to the platform.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path


class NotAvailable(RuntimeError):
    """The program behind an intrinsic service is not installed here."""


@dataclass
class Launch:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None


DEFAULT_PORTS = {"sshd": 2200, "ttyd": 7681}


@dataclass(frozen=True)
class Credential:
    """A user name and password for a service's basic authentication (ttyd's ``--credential``)."""

    username: str
    password: str

    @classmethod
    def generate(cls) -> Credential:
        """A fresh one: 32 random URL-safe characters (no ``:``, which ends ttyd's user name)."""
        return cls("kernel", secrets.token_urlsafe(24))

    def as_dict(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password}


def access_info(name: str, bind_address: str, ports: list[int], credential: Credential) -> dict[str, object]:
    """What a client needs to reach intrinsic service ``name``: where it listens, and ttyd's credential."""
    info: dict[str, object] = {"name": name, "host": bind_address, "ports": list(ports)}
    if name == "ttyd":
        info["url_template"] = "{protocol}://{host}:{port}/"
        info["credential"] = credential.as_dict()
    return info
SSHD_CANDIDATES = ("sshd", "/usr/sbin/sshd", "/usr/local/sbin/sshd")


def _which(names: tuple[str, ...], path: str | None) -> str | None:
    for name in names:
        if os.path.isabs(name):
            found = name if os.access(name, os.X_OK) else None
        else:
            found = shutil.which(name, path=path)
        if found:
            return found
    return None


async def _run(*argv: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"{argv[0]} failed ({proc.returncode}): {err.decode(errors='replace').strip()}")


async def sshd(port: int, env: Mapping[str, str], work_dir: str, *, bind_address: str,
               credential: Credential) -> Launch:
    """OpenSSH with a private host key and the user's key pair, listening on ``bind_address`` only.

    ``credential`` is unused: sshd takes keys only (password logins are off).
    """
    path = env.get("PATH")
    program = _which(SSHD_CANDIDATES, path)
    keygen = _which(("ssh-keygen",), path)
    if program is None or keygen is None:
        raise NotAvailable("sshd is not available on this machine (no OpenSSH server / ssh-keygen found)")
    private = Path(work_dir) / "sshd"
    private.mkdir(mode=0o700, parents=True, exist_ok=True)
    host_key = private / "ssh_host_ed25519_key"
    if not host_key.exists():
        await _run(keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(host_key))
    home = Path(env.get("HOME") or os.path.expanduser("~"))
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    os.chmod(ssh_dir, 0o700)
    authorized = ssh_dir / "authorized_keys"
    if not authorized.exists():
        user_key = home / "id_container"  # the private half, where the user can download it
        if not user_key.exists():
            await _run(keygen, "-q", "-t", "ed25519", "-N", "", "-C", "backend-kernel", "-f", str(user_key))
        authorized.write_text(Path(f"{user_key}.pub").read_text())
    os.chmod(authorized, 0o600)
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # OpenSSH's privilege separation folder
    config = private / "sshd_config"
    config.write_text(
        "\n".join([
            f"Port {port}",
            f"ListenAddress {bind_address}",
            f"HostKey {host_key}",
            f"PidFile {private / 'sshd.pid'}",
            f"AuthorizedKeysFile {authorized}",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "PermitRootLogin prohibit-password",
            "Subsystem sftp internal-sftp",
            "",
        ])
    )
    return Launch([program, "-D", "-e", "-f", str(config), "-p", str(port)], cwd=str(home))


def best_shell(path: str | None) -> str:
    for name in ("zsh", "bash", "ash", "sh"):
        found = shutil.which(name, path=path)
        if found:
            return found
    return "/bin/sh"


async def ttyd(port: int, env: Mapping[str, str], work_dir: str, *, bind_address: str,
               credential: Credential) -> Launch:
    """A web terminal with the best shell, in a shared tmux session when tmux exists.

    It listens on ``bind_address`` only (``--interface`` takes an address as well as an
    interface name) and asks for ``credential`` (HTTP basic authentication). ttyd reads
    the credential from its command line only, so local users who can read
    ``/proc/PID/cmdline`` can see it: see docs/services.md.
    """
    path = env.get("PATH")
    program = shutil.which("ttyd", path=path)
    if program is None:
        raise NotAvailable("ttyd is not available on this machine (program not found; Debian 12 has no package)")
    shell = best_shell(path)
    tmux = shutil.which("tmux", path=path)
    session = [tmux, "new-session", "-A", "-s", "main", shell] if tmux else [shell]
    return Launch([program, "--port", str(port), "--writable", "--interface", bind_address,
                   "--credential", f"{credential.username}:{credential.password}", *session], cwd=env.get("HOME"))


#: ``recipe(port, env, work_dir, *, bind_address, credential)``.
RECIPES: dict[str, Callable[..., Awaitable[Launch]]] = {"sshd": sshd, "ttyd": ttyd}
