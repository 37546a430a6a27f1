"""Completion while a cell runs: ours answer beside the cell; stock kernels queue it behind the cell."""

from __future__ import annotations

import asyncio
import shutil
import time

from kernels import kernel
from measure import Samples
from report import Row

#: kernel: a cell that runs for CELL_SECONDS (a child process, as user code usually waits).
BUSY_CELLS = {
    "python3": "import subprocess; subprocess.run(['sleep', '{s}'])",
    "backend-python": "import subprocess; subprocess.run(['sleep', '{s}'])",
    "bash": "sleep {s}",
    "backend-shell": "sleep {s}",
    "backend-nodejs": "require('child_process').execSync('sleep {s}')",
    "backend-r": 'system("sleep {s}")',
}
CELL_SECONDS = 2.0


async def _reply(kc, msg_id: str, early: dict[str, dict]) -> dict:
    """The reply to ``msg_id``; replies to other requests that come first are kept in ``early`` (a stock
    kernel sends the cell's reply before the completion's)."""
    while msg_id not in early:
        msg = await kc.get_shell_msg(timeout=60)
        early[msg["parent_header"].get("msg_id")] = msg
    return early.pop(msg_id)


async def busy_completions(name: str, repeats: int) -> Samples:
    """complete_request → reply, sent 0.5 s into a cell that runs CELL_SECONDS."""
    samples, early = Samples(), {}
    async with kernel(name) as (_, kc):
        await _reply(kc, kc.complete("pri", 3), early)  # warm: jedi, the interpreter session
        for _ in range(repeats):
            cell = kc.execute(BUSY_CELLS[name].format(s=CELL_SECONDS))
            await asyncio.sleep(0.5)
            begin = time.perf_counter()
            await _reply(kc, kc.complete("pri", 3), early)
            samples.values.append(time.perf_counter() - begin)
            await _reply(kc, cell, early)
    return samples


async def completion_beside_cell(s) -> list[Row]:
    rows = []
    pairs = [("backend-python", "python3", "ipykernel (python3)"), ("backend-shell", "bash", "bash_kernel"),
             ("backend-nodejs", "python3", "ipykernel (python3)"), ("backend-r", "python3", "ipykernel (python3)")]
    stock: dict[str, Samples] = {}
    for ours, peer, label in pairs:
        program = {"backend-nodejs": "node", "backend-r": "R"}.get(ours, "sleep")
        if shutil.which(program) is None:
            print(f"  {ours}: not measured ({program} is not installed)", flush=True)
            continue
        if peer not in stock:
            stock[peer] = await busy_completions(peer, s.repeats)
        mine = await busy_completions(ours, s.repeats)
        rows.append(Row(f"complete while a cell runs ({ours})", ours, f"{label}, same request", mine, stock[peer],
                        f"the stock kernel answers after the cell ({CELL_SECONDS:g} s cell, request at 0.5 s); "
                        "ours answer beside it: the floor is one shell round trip" if not rows else ""))
    return rows
