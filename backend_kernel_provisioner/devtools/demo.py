"""The main job's demo: run a short program in every installed backend kernel.

``./dev demo`` installs the kernelspecs into the project's venv and runs
this; it prints what each kernel returned, or why it was skipped.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager

from backend_kernel_provisioner.common.languages import LANGUAGES, LanguageSpec


def missing_needs(spec: LanguageSpec) -> list[str]:
    """What the demo of ``spec`` needs beyond its toolchain and does not find here."""
    return [need for need in spec.demo_needs
            if not (os.environ.get(need[1:]) if need.startswith("$") else shutil.which(need))]


async def run_program(kernel_name: str, cells: list[str]) -> str:
    km = AsyncKernelManager(kernel_name=kernel_name)
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    pieces: list[str] = []

    def on_output(msg: dict) -> None:
        content = msg["content"]
        kind = msg["header"]["msg_type"]
        if kind == "stream":
            pieces.append(content["text"])
        elif kind in ("execute_result", "display_data"):
            pieces.append(content["data"].get("text/plain", "<display>") + "\n")
        elif kind == "error":
            pieces.append(f"{content['ename']}: {content['evalue']}\n")

    try:
        await kc.wait_for_ready(timeout=60)
        for cell in cells:
            await kc.execute_interactive(cell, timeout=120, output_hook=on_output)
    finally:
        kc.stop_channels()
        await km.shutdown_kernel()
    return "".join(pieces).strip()


async def main() -> int:
    specs = KernelSpecManager().find_kernel_specs()
    failures = 0
    for spec in LANGUAGES.values():
        name = spec.spec_name
        if name not in specs:
            print(f"{name:18} skipped: not installed (toolchain missing; see `backend-kernels list`)")
            continue
        missing = missing_needs(spec)
        if missing:
            print(f"{name:18} skipped: the demo needs {', '.join(missing)}")
            continue
        try:
            result = await run_program(name, list(spec.demo))
        except Exception as exc:  # the demo reports every kernel, whatever fails
            failures += 1
            result = f"FAILED: {type(exc).__name__}: {exc}"
        first, *rest = result.splitlines() or [""]
        print(f"{name:18} {first}")
        for line in rest:
            print(f"{'':18} {line}")
    print("\nOpen JupyterLab with these kernels: ./dev lab")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
