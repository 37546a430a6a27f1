"""backend-python: ipykernel through our provisioner (issue 2, acceptance 3)."""

from __future__ import annotations

import asyncio

import pytest

from tests.helpers import kernel_process_tree, pid_alive, run_cell, running_kernel

pytestmark = pytest.mark.kernel  # every test starts backend-python through running_kernel


async def test_prints_reads_input_interrupts_restarts_and_cleans_up() -> None:
    async with running_kernel("backend-python") as (km, kc):
        assert type(km.provisioner).__name__ == "BackendKernelProvisioner"

        out = await run_cell(kc, "print('hello', 6 * 7)")
        assert out["stdout"] == "hello 42\n"
        assert out["reply"]["status"] == "ok"

        out = await run_cell(kc, "name = input('who? ')\nprint('hi', name)", stdin_answers=["ada"])
        assert out["prompts"] == ["who? "]
        assert "hi ada" in out["stdout"]

        loop = asyncio.ensure_future(run_cell(kc, "while True: pass", timeout=60))
        await asyncio.sleep(1.5)
        await km.interrupt_kernel()
        out = await loop
        assert out["reply"]["status"] == "error"
        assert out["reply"]["ename"] == "KeyboardInterrupt" and out["reply"]["exit_code"] == 130
        out = await run_cell(kc, "print(name.upper())")
        assert out["stdout"] == "ADA\n"

        out = await run_cell(kc, "import os; print(os.getpid())")
        first_pid = int(out["stdout"])
        await km.restart_kernel()
        await kc.wait_for_ready(timeout=60)
        out = await run_cell(kc, "import os; print(os.getpid())")
        assert int(out["stdout"]) != first_pid
        assert not pid_alive(first_pid)

        out = await run_cell(kc, "import subprocess; p = subprocess.Popen(['sleep', '300']); print(p.pid)")
        child = int(out["stdout"])
        tree = kernel_process_tree(km.provisioner.pid)
        assert child in tree

    for pid in tree:
        assert not pid_alive(pid), f"process {pid} outlived the kernel"


async def test_completion_works() -> None:
    async with running_kernel("backend-python") as (_, kc):
        await run_cell(kc, "unusual_variable_name = 1")
        reply = await kc.complete("unusual_var", reply=True, timeout=30)
        assert "unusual_variable_name" in reply["content"]["matches"]


async def test_reply_carries_exit_code_and_extension_is_loaded() -> None:
    async with running_kernel("backend-python") as (_, kc):
        ok = await run_cell(kc, "1 + 1")
        assert ok["reply"]["exit_code"] == 0
        failed = await run_cell(kc, "1 / 0")
        assert failed["reply"]["status"] == "error" and failed["reply"]["exit_code"] == 1
        exited = await run_cell(kc, "raise SystemExit(3)")
        assert exited["reply"]["exit_code"] == 3
        loaded = await run_cell(kc, "print('backend_kernel_provisioner.kernels.python.extension' in get_ipython().extension_manager.loaded)")
        assert loaded["stdout"].strip() == "True"
