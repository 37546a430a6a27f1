"""``stop_on_error`` aborts the cells queued behind a failed cell, never the cell sent after its reply.

ipykernel marks the end of the queue only after sending the error reply, so a
frontend that answers the reply with the next cell at once could see that cell
``aborted`` (it happened after interrupts: JupyterLab, the agent and papermill
all send the next cell right away). Our kernels mark it before the reply.
"""

from __future__ import annotations

import pytest

from .helpers import require_programs, running_kernel

pytestmark = pytest.mark.kernel

CASES = {  # kernel: (a failing cell, a slow failing cell, a good cell)
    "backend-shell": ("false", "sleep 0.5; false", "echo ok"),
    "backend-python": ("1/0", "import time; time.sleep(0.5); 1/0", "print('ok')"),
}


async def _reply(kc, msg_id: str) -> dict:
    while True:
        msg = await kc.get_shell_msg(timeout=60)
        if msg["parent_header"].get("msg_id") == msg_id:
            return msg["content"]


@pytest.mark.parametrize("kernel", list(CASES))
async def test_the_cell_after_an_error_reply_runs(kernel: str) -> None:
    require_programs("bash")
    failing, _, good = CASES[kernel]
    async with running_kernel(kernel) as (_, kc):
        for _ in range(25):
            assert (await _reply(kc, kc.execute(failing)))["status"] == "error"
            reply = await _reply(kc, kc.execute(good))  # sent the moment the error reply arrived
            assert reply["status"] == "ok", reply


@pytest.mark.parametrize("kernel", list(CASES))
async def test_cells_queued_behind_a_failed_cell_are_aborted(kernel: str) -> None:
    _, slow_failing, good = CASES[kernel]
    async with running_kernel(kernel) as (_, kc):
        first, queued = kc.execute(slow_failing), kc.execute(good)
        assert (await _reply(kc, first))["status"] == "error"
        assert (await _reply(kc, queued))["status"] == "aborted"
        assert (await _reply(kc, kc.execute(good)))["status"] == "ok"
