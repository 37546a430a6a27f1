"""The kernel's connection file on its host: ports inside the operator's range, a fresh key.

gateway_provisioners passes ``--port-range LOW..HIGH`` (``0..0``: any port) so that
a firewall can be opened for a known range; the kernel's five ports, the comm port
and our channel's port are all taken from it.
"""

from __future__ import annotations

import random
import socket
import uuid
from contextlib import ExitStack

from jupyter_client.connect import write_connection_file

KERNEL_PORTS = ("shell_port", "iopub_port", "stdin_port", "hb_port", "control_port")
ATTEMPTS = 50


def parse_port_range(text: str | None) -> tuple[int, int]:
    """``LOW..HIGH`` → (low, high); ``0..0`` or nothing means any port."""
    if not text:
        return 0, 0
    low, sep, high = text.partition("..")
    if not sep or not low.isdigit() or not high.isdigit() or int(low) > int(high):
        raise ValueError(f"--port-range must be LOW..HIGH, got {text!r}")
    if int(low) == 0 and int(high) != 0:
        raise ValueError(f"--port-range {text!r}: LOW must be a port (1..65535), or use 0..0 for any port")
    return int(low), int(high)


def select_ports(count: int, port_range: tuple[int, int], ip: str = "0.0.0.0") -> list[int]:
    """``count`` distinct free TCP ports in the range (held together while choosing, then released)."""
    low, high = port_range
    ports: list[int] = []
    with ExitStack() as stack:
        for _ in range(count):
            for _attempt in range(ATTEMPTS):
                sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                try:
                    sock.bind((ip, random.randint(low, high) if high else 0))
                except OSError:
                    continue
                ports.append(sock.getsockname()[1])
                break
            else:
                raise RuntimeError(f"no free port in {low}..{high} after {ATTEMPTS} attempts")
    return ports


def write_kernel_connection_file(path: str, ip: str, port_range: tuple[int, int]) -> dict:
    """Write the kernel's connection file (new key, ports from the range); its contents."""
    shell, iopub, stdin, hb, control = select_ports(len(KERNEL_PORTS), port_range, ip)
    _, info = write_connection_file(path, ip=ip, key=str(uuid.uuid4()).encode(), shell_port=shell,
                                    iopub_port=iopub, stdin_port=stdin, hb_port=hb, control_port=control)
    return dict(info)
