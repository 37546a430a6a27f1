"""The main job's demo: run a short program in every installed backend kernel.

``./dev demo`` installs the kernelspecs into the project's venv and runs
this; it prints what each kernel returned, or why it was skipped.
"""

from __future__ import annotations

import asyncio
import sys

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager

#: A small program per language: state across cells where the kernel keeps it.
PROGRAMS: dict[str, list[str]] = {
    "python": ["x = 6 * 7", "print('python says', x)"],
    "c": ['#include <stdio.h>\nint main(void) { printf("C says %d\\n", 6 * 7); return 0; }'],
    "cpp": ['#include <iostream>\nint main() { std::cout << "C++ says " << 6 * 7 << std::endl; }'],
    "go": ['package main\nimport "fmt"\nfunc main() { fmt.Println("Go says", 6*7) }'],
    "rust": ['fn main() { println!("Rust says {}", 6 * 7); }'],
    "java": ['System.out.println("Java says " + 6 * 7);'],
    "nodejs": ["let x = 6 * 7", "console.log('Node.js says', x)"],
    "lua": ["x = 6 * 7", "print('Lua says', x)"],
    "php": ["$x = 6 * 7;", "echo \"PHP says $x\\n\";"],
    "haskell": ["x = 6 * 7 :: Int", 'putStrLn ("Haskell says " ++ show x)'],
    "r": ["x <- 6 * 7", "cat('R says', x, '\\n')"],
    "octave": ["x = 6 * 7;", "printf('Octave says %d\\n', x)"],
    "scheme": ["(define x (* 6 7))", '(display "Scheme says ") (display x) (newline)'],
    "julia": ["x = 6 * 7", 'println("Julia says ", x)'],
    "shell": ["X=$((6 * 7))", 'echo "shell says $X"'],
    "app": ["help"],
}


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
    for language, cells in PROGRAMS.items():
        name = f"backend-{language}"
        if name not in specs:
            print(f"{name:18} skipped: not installed (toolchain missing; see `backend-kernels list`)")
            continue
        try:
            result = await run_program(name, cells)
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
