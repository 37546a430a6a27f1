"""The SSH client config for a session's cluster peers, written by the intrinsic ``sshd`` recipe.

In a multi-node session every kernel runs its own sshd, and the user expects
``ssh worker1`` to work from any of them, as the runner arranged. The platform
names the peers in ``BACKEND_CLUSTER_HOSTS`` (the spec defines no variable of
its own): comma-separated ``name`` (host ``name``, port 2200, the intrinsic
sshd's) or ``name=host[:port]`` (``[v6-address]:port`` for IPv6).

The entries go into ``~/.ssh/config`` between two marker lines that are
rewritten on every start (and removed when there are no peers), so the user's
own entries around them are kept and stale peers of an earlier session go.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: Where the platform names the session's peers.
CLUSTER_HOSTS_ENV = "BACKEND_CLUSTER_HOSTS"
#: The intrinsic sshd's port: where a peer named without one listens.
PEER_SSH_PORT = 2200
BEGIN = "# BEGIN backend-kernel-provisioner cluster peers (rewritten when sshd starts)"
END = "# END backend-kernel-provisioner cluster peers"

#: ssh_config(5) ``Host`` patterns treat ``*``, ``?`` and ``!`` specially, and whitespace splits them.
_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_HOST = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Peer:
    name: str
    host: str
    port: int = PEER_SSH_PORT


def parse_cluster_hosts(value: str | Sequence[str]) -> list[Peer]:
    """Peers from ``name`` / ``name=host[:port]`` items (a comma-separated string or a list).

    A malformed item is a ValueError naming it: a peer silently missing from the
    config would be harder to find than a start that says why it failed.
    """
    items = value.split(",") if isinstance(value, str) else list(value)
    peers: dict[str, Peer] = {}
    for raw in items:
        item = raw.strip()
        if not item:
            continue
        name, sep, target = (part.strip() for part in item.partition("="))
        if not _NAME.fullmatch(name):
            raise ValueError(f"{CLUSTER_HOSTS_ENV}: bad peer name in {item!r} (letters, digits, '.', '_', '-')")
        host, port = _split_target(target, item) if sep else (name, PEER_SSH_PORT)
        peers[name] = Peer(name, host, port)
    return list(peers.values())


def _split_target(target: str, item: str) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port``; a bare IPv6 address has no port."""
    host, port_text = target, ""
    if target.startswith("["):
        host, bracket, rest = target[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"{CLUSTER_HOSTS_ENV}: bad address in {item!r}")
        port_text = rest[1:]
    elif target.count(":") == 1:
        host, _, port_text = target.partition(":")
    if not (_HOST.fullmatch(host) or _is_ip(host)):
        raise ValueError(f"{CLUSTER_HOSTS_ENV}: bad host in {item!r}")
    if not port_text:
        return host, PEER_SSH_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{CLUSTER_HOSTS_ENV}: bad port in {item!r}")
    return host, int(port_text)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def peer_block(peers: list[Peer], user: str, identity: Path | None) -> str:
    """The marked block of ``Host`` entries (empty without peers)."""
    if not peers:
        return ""
    lines = [BEGIN]
    for peer in peers:
        lines += [f"Host {peer.name}", f"    HostName {peer.host}", f"    Port {peer.port}", f"    User {user}"]
        if identity is not None:
            lines.append(f"    IdentityFile {identity}")
        lines += ["    StrictHostKeyChecking no", "    UserKnownHostsFile /dev/null", "    LogLevel ERROR"]
    lines.append(END)
    return "\n".join(lines) + "\n"


def write_client_config(ssh_dir: Path, peers: list[Peer], user: str, identity: Path | None) -> Path:
    """Put the peers' block into ``ssh_dir/config`` in place of the previous one; keep everything else.

    Blocking (small local files): the recipe runs it before the server starts.
    """
    config = ssh_dir / "config"
    existing = config.read_text() if config.exists() else ""
    kept = _without_block(existing)
    block = peer_block(peers, user, identity)
    if not block and kept == existing:
        return config  # nothing to add, nothing of ours to remove: leave the user's file alone
    if kept and not kept.endswith("\n"):
        kept += "\n"
    text = kept + ("\n" if kept.strip() and block else "") + block
    tmp = config.with_name(".config.backend-kernel-tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o600)  # ssh refuses a config that others may write
    os.replace(tmp, config)
    return config


def _without_block(text: str) -> str:
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    inside = False
    for line in lines:
        stripped = line.strip()
        if stripped == BEGIN:
            inside = True
            if out and not out[-1].strip():
                out.pop()  # the blank line written before the block
            continue
        if stripped == END and inside:
            inside = False
            continue
        if not inside:
            out.append(line)
    return "".join(out)
