"""``backend-kernel-launcher``: gateway_provisioners' launcher arguments, then ``--`` and the kernel's argv.

Example (what the remote provisioner runs on the kernel's host)::

    backend-kernel-launcher --kernel-id ID --response-address 10.0.0.5:8877 \\
        --public-key MIGf... --port-range 0..0 -- \\
        python -m backend_kernel_provisioner.kernels c -f {connection_file}
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from backend_kernel_provisioner.launcher.connection import parse_port_range
from backend_kernel_provisioner.launcher.launcher import Launcher, LauncherOptions
from backend_kernel_provisioner.sidecar.services.ports import check_bind_address


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="backend-kernel-launcher", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kernel-id", required=True, help="the kernel's id (from the server)")
    parser.add_argument("--response-address", required=True, metavar="HOST:PORT",
                        help="where the server's ResponseManager waits for the connection info")
    parser.add_argument("--public-key", required=True, help="the server's RSA public key (PEM body)")
    parser.add_argument("--port-range", default="0..0", metavar="LOW..HIGH",
                        help="ports for the kernel, the comm port and the channel (0..0: any)")
    parser.add_argument("--transport-encryption", default="", help="CurveZMQ policy; only '' or 'disabled'")
    parser.add_argument("--ip", default="0.0.0.0", help="IPv4 address the kernel and the launcher's ports listen on")
    parser.add_argument("--lease-timeout", type=float, default=10.0,
                        help="seconds without a message from the provisioner after which everything stops")
    parser.add_argument("--stop-grace", type=float, default=5.0,
                        help="seconds between SIGTERM and SIGKILL when the kernel is stopped")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ...")
    parser.add_argument("kernel_argv", nargs=argparse.REMAINDER, help="-- then the kernel's command")
    return parser


def parse_options(argv: Sequence[str]) -> tuple[LauncherOptions, str]:
    parser = _parser()
    args = parser.parse_args(argv)
    kernel = list(args.kernel_argv)
    if kernel and kernel[0] == "--":
        kernel = kernel[1:]
    if not kernel:
        parser.error("the kernel's command is missing: add -- and the kernelspec's argv")
    if args.transport_encryption not in ("", "disabled"):
        parser.error(f"--transport-encryption {args.transport_encryption!r} is not supported by this launcher")
    if args.lease_timeout <= 0:
        parser.error("--lease-timeout must be positive")
    try:
        port_range = parse_port_range(args.port_range)
        ip = check_bind_address(args.ip)
    except ValueError as exc:
        parser.error(str(exc))
    if ":" in ip:
        parser.error(f"--ip {ip}: the launcher listens on IPv4 addresses only (ZeroMQ ports and the port range)")
    options = LauncherOptions(
        kernel_id=args.kernel_id, response_address=args.response_address, public_key=args.public_key,
        kernel_argv=kernel, port_range=port_range, ip=ip, lease_timeout=args.lease_timeout,
        stop_grace=args.stop_grace,
    )
    return options, args.log_level


def main(argv: Sequence[str] | None = None) -> int:
    options, level = parse_options(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=level.upper(), format="[%(levelname)1.1s %(asctime)s launcher] %(message)s")
    log = logging.getLogger("backend_kernel_provisioner.launcher")
    return asyncio.run(Launcher(options, log).run())
