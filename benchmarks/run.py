"""Run the benchmarks: ``python benchmarks/run.py [--quick] [--peers] [--out DIR] [--only CASE ...]``.

Every row is a ratio against a baseline measured in the same run; the table
is printed and written as Markdown and JSON. ``--peers`` adds the peer table
(our kernels beside the kernels a user would install instead, peer_cases.py),
written as peers.md and peers.json in the same folder; ``--only peer_cases``
runs only that part (or ``peer_pairs``, ``peer_targets``, ``peer_interrupts``).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import compileall
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import cases  # noqa: E402
import peer_cases  # noqa: E402
import peer_report  # noqa: E402
import peer_setup  # noqa: E402
import report  # noqa: E402

#: --only names of the peer table's parts, and what each runs.
PEER_PARTS = {"peer_cases": {"pairs", "targets", "interrupts"}, "peer_pairs": {"pairs"},
              "peer_targets": {"targets"}, "peer_interrupts": {"interrupts"}}


def install_kernelspecs() -> str:
    """Our specs and bash_kernel's into a private prefix, ahead of anything installed; the prefix."""
    prefix = tempfile.mkdtemp(prefix="bkp-bench-")
    atexit.register(shutil.rmtree, prefix, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "backend_kernel_provisioner", "install", "--all", "--prefix", prefix],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, "-m", "bash_kernel.install", "--prefix", prefix], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.environ["JUPYTER_PATH"] = os.path.join(prefix, "share", "jupyter")
    return prefix


def compile_our_package() -> None:
    """Byte-compile our package first, as ``pip install .`` does: from an editable install under
    ``PYTHONDONTWRITEBYTECODE`` every kernel would compile our modules from source at each start."""
    import backend_kernel_provisioner

    compileall.compile_dir(os.path.dirname(backend_kernel_provisioner.__file__), quiet=1)


async def run_peers(args: argparse.Namespace, prefix: str) -> list[str]:
    """Install the peers, measure the pairs, print and write the peer table; our kernels' problems."""
    parts = set().union(*(PEER_PARTS[name] for name in args.only or () if name in PEER_PARTS))
    print("setting up the peers ...", flush=True)
    peers = await asyncio.to_thread(peer_setup.ensure_peers, prefix)
    settings = peer_cases.QUICK if args.quick else peer_cases.FULL
    table = await peer_cases.peer_cases(settings, peers, parts or PEER_PARTS["peer_cases"])
    md_path, json_path = peer_report.write(table, "quick" if args.quick else "full", Path(args.out))
    print()
    print(md_path.read_text())
    print(f"written: {md_path} and {json_path}")
    return [f"peer table: {failure}" for failure in table.failures]


async def main_async(args: argparse.Namespace, prefix: str = "") -> int:
    settings = (cases.Settings(repeats=2, scale_kernels=4, stream_mb=5, remote_rounds=1, lifecycle_rounds=1)
                if args.quick else cases.Settings(repeats=7, scale_kernels=32, stream_mb=50, remote_rounds=5))
    chosen = [c for c in cases.ALL if not args.only or c.__name__ in args.only]
    rows, failures = [], []
    for case in chosen:
        print(f"running {case.__name__} ...", flush=True)
        try:
            rows.extend(await case(settings))
        except Exception as exc:  # one broken row must not hide the others
            failures.append(f"{case.__name__}: {type(exc).__name__}: {exc}")
            print(f"  FAILED: {failures[-1]}", flush=True)
    mode = "quick" if args.quick else "full"
    if chosen:  # --only peer_cases alone leaves an earlier benchmarks.md as it was
        md_path, json_path = report.write(rows, mode, Path(args.out))
        print()
        print(md_path.read_text())
        print(f"written: {md_path} and {json_path}")
    if args.peers:
        try:
            failures.extend(await run_peers(args, prefix))
        except Exception as exc:  # the harness itself is broken (a missing peer is a row, not an exception)
            failures.append(f"peer table: {type(exc).__name__}: {exc}")
    for failure in failures:
        print(f"failed: {failure}", file=sys.stderr)
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few repeats, small sizes (CI proves it works)")
    parser.add_argument("--out", default=str(HERE / "results"), help="folder for benchmarks.md and .json")
    parser.add_argument("--peers", action="store_true",
                        help="also the peer table: our kernels beside the kernels a user would install instead "
                             "(installs them: benchmarks/peer_setup.py)")
    parser.add_argument("--only", nargs="*", help="run only these cases (function names in cases.py, or "
                        f"{', '.join(PEER_PARTS)}, which imply --peers)")
    args = parser.parse_args()
    unknown = set(args.only or ()) - {case.__name__ for case in cases.ALL} - set(PEER_PARTS)
    if unknown:
        parser.error(f"unknown case(s): {', '.join(sorted(unknown))}")
    args.peers = args.peers or bool(set(args.only or ()) & set(PEER_PARTS))
    compile_our_package()
    prefix = install_kernelspecs()
    return asyncio.run(main_async(args, prefix))


if __name__ == "__main__":
    sys.exit(main())
