"""complete, inspect and is_complete answered while a cell runs, in every kernel and through AgentKernel.

ipykernel queues every shell request behind the running cell, so a frontend's completion waited for
the cell (5.6 s in the shell kernel, 10.3 s in Python); the runner answered completions while code ran.
Here each kernel runs a cell that waits on `sleep 100`; the requests must be answered while that cell
still runs (the figure is in the benchmarks; the bound below only catches a wait for the cell).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from backend_kernel_provisioner.agent import AgentKernel

from .helpers import require_programs
from .test_interrupt_hardening import runs_sleep

pytestmark = pytest.mark.kernel

#: kernel: (programs, a cell that leaves state for completion or "", a cell that runs `sleep 100`)
SLEEPING = {
    "backend-python": (("python3",), "", "import subprocess\nsubprocess.run(['sleep', '100'])"),
    "backend-shell": (("bash",), "", "sleep 100"),
    "backend-r": (("R",), "", 'system("sleep 100")'),
    "backend-lua": (("lua5.4",), "", "os.execute('sleep 100')"),
    "backend-nodejs": (("node",), "", "require('child_process').execSync('sleep 100')"),
    "backend-php": (("php",), "", 'system("sleep 100");'),
    "backend-octave": (("octave-cli",), "", "system('sleep 100');"),
    "backend-scheme": (("guile",), "", '(system "sleep 100")'),
    "backend-haskell": (("ghci",), "import System.Process", 'callCommand "sleep 100"'),
    "backend-c": (("gcc",), "", '#include <stdlib.h>\nint main(void) { return system("sleep 100"); }'),
    "backend-cpp": (("g++",), "", "#include <cstdlib>\nint main() { return std::system(\"sleep 100\"); }"),
    "backend-go": (("go",), "", 'package main\nimport "os/exec"\nfunc main() { exec.Command("sleep", "100").Run() }'),
    "backend-rust": (("rustc",), "",
                     'fn main() { std::process::Command::new("sleep").arg("100").status().unwrap(); }'),
    "backend-java": (("javac", "java"), "",
                     'new ProcessBuilder("sleep", "100").start().waitFor();'),
}

#: Far below the cell's 100 s: a request that waited for the cell would miss it by minutes.
NOT_BEHIND_THE_CELL = 5.0


async def shell_reply(kc, msg_id: str, timeout: float = 60) -> dict:
    while True:
        msg = await kc.get_shell_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") == msg_id:
            return msg


@pytest.mark.parametrize("kernel_name", sorted(SLEEPING))
async def test_introspection_is_answered_while_a_cell_runs(kernel_name: str) -> None:
    from jupyter_client.manager import AsyncKernelManager

    programs, setup, sleeping = SLEEPING[kernel_name]
    require_programs(*programs, "sleep")
    km = AsyncKernelManager(kernel_name=kernel_name)
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=60)
        if setup:
            await kc.execute_interactive(setup, timeout=120, output_hook=lambda msg: None)
        await shell_reply(kc, kc.complete("sl", 2))  # the first completion may start a session or jedi
        cell = kc.execute(sleeping)
        started = asyncio.Event()
        for _ in range(2400):  # a compile may come first: up to 120 s
            if await runs_sleep(km, started):
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the cell never started its `sleep 100`")
        for request in (lambda: kc.complete("pri", 3), lambda: kc.inspect("print", 3),
                        lambda: kc.is_complete("x")):
            begin = time.perf_counter()
            reply = await shell_reply(kc, request(), timeout=30)
            waited = time.perf_counter() - begin
            assert reply["content"]["status"] in ("ok", "complete", "incomplete", "invalid", "unknown"), reply
            assert waited < NOT_BEHIND_THE_CELL, f"{reply['msg_type']} waited {waited:.1f} s for the cell"
        assert await runs_sleep(km, started), "the cell should still be running"
        await km.interrupt_kernel()
        done = await shell_reply(kc, cell)
        assert done["msg_type"] == "execute_reply"
    finally:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)


async def test_agent_complete_while_a_query_runs() -> None:
    require_programs("bash", "sleep")
    async with await AgentKernel.start("shell") as kernel:
        first = await kernel.execute("q1", "query", "sleep 100", flush_timeout=0.5)
        assert first["status"] == "continued"
        begin = time.perf_counter()
        matches = await kernel.complete("slee")
        assert "sleep" in matches
        assert time.perf_counter() - begin < NOT_BEHIND_THE_CELL
        assert (await kernel.check_status())["running_run"] == "q1"
        await kernel.interrupt()
