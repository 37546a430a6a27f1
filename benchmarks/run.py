"""Run the benchmarks: ``python benchmarks/run.py [--quick] [--out DIR]``.

Every row is a ratio against a baseline measured in the same run; the table
is printed and written as Markdown and JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import cases  # noqa: E402
import report  # noqa: E402


def install_kernelspecs() -> None:
    """Our specs and bash_kernel's into a private prefix, ahead of anything installed."""
    prefix = tempfile.mkdtemp(prefix="bkp-bench-")
    atexit.register(shutil.rmtree, prefix, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "backend_kernel_provisioner", "install", "--all", "--prefix", prefix],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, "-m", "bash_kernel.install", "--prefix", prefix], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.environ["JUPYTER_PATH"] = os.path.join(prefix, "share", "jupyter")


async def main_async(args: argparse.Namespace) -> int:
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
    md_path, json_path = report.write(rows, mode, Path(args.out))
    print()
    print(md_path.read_text())
    print(f"written: {md_path} and {json_path}")
    for failure in failures:
        print(f"failed: {failure}", file=sys.stderr)
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few repeats, small sizes (CI proves it works)")
    parser.add_argument("--out", default=str(HERE / "results"), help="folder for benchmarks.md and .json")
    parser.add_argument("--only", nargs="*", help="run only these cases (function names in cases.py)")
    args = parser.parse_args()
    install_kernelspecs()
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
