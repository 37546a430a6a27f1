"""Built-in launch recipes for ``sshd`` (port 2200) and ``ttyd`` (port 7681).

A recipe prepares what its program needs and returns the command; when the
program is missing it raises :class:`NotAvailable`, which the manager reports
as "not available" instead of failing the kernel.

``sshd`` runs whichever SSH server is installed: OpenSSH's ``sshd`` first,
then dropbear (the runner's, Debian's ``dropbear-bin``); ``BACKEND_SSHD_SERVER``
(``openssh`` or ``dropbear``) in the kernel's environment picks one. ``ttyd``
runs the ttyd program where it is installed and otherwise, since Debian 12 has
no ttyd package, our terminado web terminal
(:mod:`backend_kernel_provisioner.sidecar.services.webterm`) on the same port
and URL shape.

Neighbours on the same host (other kernels, other users) must not get a shell
through them: both listen only on the address the platform configures
(``service_bind_address``, default loopback), sshd takes keys only, and the
web terminal, which has no login of its own, gets HTTP basic authentication
with a :class:`Credential` generated per kernel and reported to the platform.

Nothing of theirs outlives the service: the shared tmux session runs in a tmux
server on a private socket that is a child of the service (``tmux -D``), so a
stop ends it with the rest of the service.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import pwd
import secrets
import shutil
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from backend_kernel_provisioner.sidecar.services.ssh_peers import (
    CLUSTER_HOSTS_ENV,
    parse_cluster_hosts,
    write_client_config,
)


class NotAvailable(RuntimeError):
    """The program behind an intrinsic service is not installed here."""


@dataclass
class Launch:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None


DEFAULT_PORTS = {"sshd": 2200, "ttyd": 7681}
#: The web terminal's credential (``user:password``) travels in this variable, not on a command line.
WEBTERM_CREDENTIAL_ENV = "BACKEND_WEBTERM_CREDENTIAL"
#: The shared tmux session every web terminal attaches to.
TMUX_SESSION = "main"
#: Picks the SSH server (``openssh`` or ``dropbear``) when both are installed.
SSHD_SERVER_ENV = "BACKEND_SSHD_SERVER"


@dataclass(frozen=True)
class Credential:
    """A user name and password for the web terminal's basic authentication (ttyd's ``--credential``)."""

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


def _which(names: tuple[str, ...], path: str | None) -> str | None:
    for name in names:
        if os.path.isabs(name):
            found = name if os.access(name, os.X_OK) else None
        else:
            found = shutil.which(name, path=path)
        if found:
            return found
    return None


async def _run(*argv: str) -> str:
    """Run a key tool; its output, or RuntimeError with its message (the manager reports it)."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"{argv[0]} failed ({proc.returncode}): {err.decode(errors='replace').strip()}")
    return out.decode(errors="replace")


# -- sshd ---------------------------------------------------------------------------------------

#: The SSH servers the recipe knows, in order of preference: (kind, server programs, key tool).
SSH_SERVERS = (
    ("openssh", ("sshd", "/usr/sbin/sshd", "/usr/local/sbin/sshd"), ("ssh-keygen",)),
    ("dropbear", ("dropbear", "/usr/sbin/dropbear", "/usr/local/sbin/dropbear"), ("dropbearkey",)),
)


@dataclass(frozen=True)
class SshServer:
    kind: str
    program: str
    keytool: str


def find_ssh_server(path: str | None, wanted: str = "") -> SshServer:
    """The first SSH server installed (``wanted``: that one only); NotAvailable naming what is missing."""
    wanted = wanted.strip().lower()
    known = [kind for kind, _, _ in SSH_SERVERS]
    if wanted and wanted not in known:
        raise RuntimeError(f"{SSHD_SERVER_ENV}={wanted!r}: use one of {', '.join(known)}")
    for kind, programs, keytool in SSH_SERVERS:
        if wanted and kind != wanted:
            continue
        program, tool = _which(programs, path), _which(keytool, path)
        if program and tool:
            return SshServer(kind, program, tool)
    what = {"openssh": "OpenSSH's sshd / ssh-keygen", "dropbear": "dropbear / dropbearkey"}
    missing = what[wanted] if wanted else " or ".join(what.values())
    raise NotAvailable(f"sshd is not available on this machine (no {missing} found)")


async def _user_key_pair(key: Path, path: str | None) -> None:
    """A fresh ed25519 pair at ``key`` (OpenSSH format, which every client reads) and ``key.pub``.

    ssh-keygen where it exists; on a dropbear-only machine dropbearkey, whose key
    dropbearconvert turns into OpenSSH's format.
    """
    keygen = _which(("ssh-keygen",), path)
    if keygen:
        await _run(keygen, "-q", "-t", "ed25519", "-N", "", "-C", "backend-kernel", "-f", str(key))
        return
    dropbearkey, convert = _which(("dropbearkey",), path), _which(("dropbearconvert",), path)
    if not (dropbearkey and convert):
        raise RuntimeError("cannot make the user's key pair: neither ssh-keygen nor dropbearkey/dropbearconvert")
    native = key.with_name(key.name + ".dropbear")
    native.unlink(missing_ok=True)
    await _run(dropbearkey, "-t", "ed25519", "-f", str(native))
    await _run(convert, "dropbear", "openssh", str(native), str(key))
    public = next(line for line in (await _run(dropbearkey, "-y", "-f", str(native))).splitlines()
                  if line.startswith("ssh-"))
    native.unlink()
    Path(f"{key}.pub").write_text(" ".join(public.split()[:2] + ["backend-kernel"]) + "\n")
    os.chmod(key, 0o600)


async def _authorize_user(home: Path, path: str | None) -> tuple[Path, Path | None]:
    """``~/.ssh/authorized_keys`` (made from a generated pair when missing, mode 600 either way);
    returns it and the pair's private half (``~/id_container``) when there is one."""
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    os.chmod(ssh_dir, 0o700)
    authorized = ssh_dir / "authorized_keys"
    user_key = home / "id_container"  # the private half, where the user can download it
    if not authorized.exists():
        if not user_key.exists():
            await _user_key_pair(user_key, path)
        authorized.write_text(Path(f"{user_key}.pub").read_text())
    os.chmod(authorized, 0o600)
    return authorized, (user_key if user_key.exists() else None)


def _login_name() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:  # a container user without a passwd entry
        return os.environ.get("USER") or str(os.geteuid())


async def sshd(port: int, env: Mapping[str, str], work_dir: str, *, bind_address: str,
               credential: Credential, cluster_hosts: Sequence[str] | None = None) -> Launch:
    """An SSH server with a private host key, keys-only logins, listening on ``bind_address`` only.

    OpenSSH (``sshd -D -e`` with its own config) when installed, else dropbear
    (``dropbear -F -E -s``); see the module docstring. The user's key pair is made
    when ``authorized_keys`` is missing; ``~/.ssh/config`` gets the session's cluster
    peers (``cluster_hosts``, else ``BACKEND_CLUSTER_HOSTS``: see
    :mod:`~backend_kernel_provisioner.sidecar.services.ssh_peers`). ``credential``
    is unused: password logins are off.
    """
    path = env.get("PATH")
    server = find_ssh_server(path, env.get(SSHD_SERVER_ENV, ""))
    try:
        peers = parse_cluster_hosts(cluster_hosts if cluster_hosts is not None else env.get(CLUSTER_HOSTS_ENV, ""))
    except ValueError as exc:
        raise RuntimeError(str(exc)) from None
    private = Path(work_dir) / "sshd"
    private.mkdir(mode=0o700, parents=True, exist_ok=True)
    home = Path(env.get("HOME") or os.path.expanduser("~"))
    authorized, user_key = await _authorize_user(home, path)
    write_client_config(home / ".ssh", peers, _login_name(), user_key)
    if server.kind == "dropbear":
        return await _dropbear(server, port, bind_address, private, home)
    return await _openssh(server, port, bind_address, private, home, authorized)


async def _openssh(server: SshServer, port: int, bind_address: str, private: Path, home: Path,
                   authorized: Path) -> Launch:
    host_key = private / "ssh_host_ed25519_key"
    if not host_key.exists():
        await _run(server.keytool, "-q", "-t", "ed25519", "-N", "", "-f", str(host_key))
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
    return Launch([server.program, "-D", "-e", "-f", str(config), "-p", str(port)], cwd=str(home))


async def _dropbear(server: SshServer, port: int, bind_address: str, private: Path, home: Path) -> Launch:
    """dropbear in the foreground (``-F``), logging to stderr (``-E``), passwords off (``-s``), sessions
    with the kernel's environment (``-e``). It reads the keys of ``~/.ssh/authorized_keys`` in the
    account's home directory (from the passwd entry; it has no option for another file)."""
    host_key = private / "dropbear_ed25519_host_key"
    if not host_key.exists():
        await _run(server.keytool, "-t", "ed25519", "-f", str(host_key))
    address = f"[{bind_address}]" if ":" in bind_address else bind_address
    return Launch([server.program, "-F", "-E", "-e", "-s", "-r", str(host_key), "-p", f"{address}:{port}",
                   "-P", str(private / "dropbear.pid")], cwd=str(home))


# -- ttyd (the web terminal) --------------------------------------------------------------------------

def best_shell(path: str | None) -> str:
    for name in ("zsh", "bash", "ash", "sh"):
        found = shutil.which(name, path=path)
        if found:
            return found
    return "/bin/sh"


def tmux_client(tmux: str, socket_path: str, shell: str) -> list[str]:
    """A tmux client attaching to (or creating) the shared session; ``-N``: it never starts a server itself."""
    return [tmux, "-N", "-S", socket_path, "new-session", "-A", "-s", TMUX_SESSION, shell]


#: Starts the private tmux server (``-D``: in the foreground, so in the service's process group and ended
#: by its stop), waits for its socket, then becomes ttyd (same pid: the service's leader is ttyd).
TMUX_THEN_EXEC = (
    'tmux=$1 sock=$2; shift 2; rm -f "$sock"; "$tmux" -D -S "$sock" </dev/null & '
    'i=0; while [ ! -S "$sock" ] && [ "$i" -lt 200 ]; do sleep 0.05; i=$((i + 1)); done; exec "$@"'
)
#: Runs the web terminal with the very code of this package (the kernel's PYTHONPATH may not name it).
WEBTERM_BOOT = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
                "from backend_kernel_provisioner.sidecar.services.webterm import main; main()")
PACKAGE_PARENT = str(Path(__file__).resolve().parents[3])


async def ttyd(port: int, env: Mapping[str, str], work_dir: str, *, bind_address: str,
               credential: Credential, **_: object) -> Launch:
    """A web terminal with the best shell, in a shared tmux session when tmux exists.

    The ttyd program when installed; otherwise our terminado server (the same
    URL shape: the page at ``/``, its WebSocket at ``/ws``). Either listens on
    ``bind_address`` only and asks for ``credential`` (HTTP basic authentication).
    ttyd reads the credential from its command line only, so local users who can
    read ``/proc/PID/cmdline`` can see it (see docs/services.md); the terminado
    server gets it in its environment.
    """
    path = env.get("PATH")
    shell = best_shell(path)
    tmux = shutil.which("tmux", path=path)
    private = Path(work_dir) / "ttyd"
    private.mkdir(mode=0o700, parents=True, exist_ok=True)
    socket_path = str(private / "tmux.sock")
    program = shutil.which("ttyd", path=path)
    if program is None:
        if importlib.util.find_spec("terminado") is None:
            raise NotAvailable("ttyd is not available on this machine (no ttyd program, and terminado, "
                               "the web terminal used instead, is not installed)")
        argv = [sys.executable, "-c", WEBTERM_BOOT, PACKAGE_PARENT, "--port", str(port), "--bind", bind_address,
                "--shell", shell]
        if tmux:
            argv += ["--tmux", tmux, "--tmux-socket", socket_path]
        secret = {WEBTERM_CREDENTIAL_ENV: f"{credential.username}:{credential.password}"}
        return Launch(argv, env=secret, cwd=env.get("HOME"))
    session = tmux_client(tmux, socket_path, shell) if tmux else [shell]
    argv = [program, "--port", str(port), "--writable", "--interface", bind_address,
            "--credential", f"{credential.username}:{credential.password}", *session]
    if tmux:
        argv = ["/bin/sh", "-c", TMUX_THEN_EXEC, "sh", tmux, socket_path, *argv]
    return Launch(argv, cwd=env.get("HOME"))


#: ``recipe(port, env, work_dir, *, bind_address, credential)``.
RECIPES: dict[str, Callable[..., Awaitable[Launch]]] = {"sshd": sshd, "ttyd": ttyd}
