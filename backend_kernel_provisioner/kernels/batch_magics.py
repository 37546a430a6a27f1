"""``%clean``, ``%build`` and ``%exec`` in every backend kernel: the runner's batch mode in a cell.

Why magics: the agent client and notebook users drive batch mode the same way
(one cell per step, ``exit_code`` in the reply), and a magic's child gets the
kernel's process control for free - streamed output, stdin through
``input_request``, interrupt of the whole tree. What a step runs is decided by
:mod:`backend_kernel_provisioner.kernels.batch`; a recipe may override its language's
``*`` with a ``batch_heuristics`` class attribute.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from backend_kernel_provisioner.kernels import batch
from backend_kernel_provisioner.kernels.base import BackendKernel
from backend_kernel_provisioner.kernels.magics import register_magic


def kernel_language(kernel: Any) -> str:
    """The batch language of ``kernel``: its table entry's key (``cpp``), else the provisioner's."""
    spec = getattr(kernel, "spec", None)
    if spec is not None:
        return spec.key
    return os.environ.get("BACKEND_KERNEL_LANGUAGE") or str(getattr(kernel, "language_name", ""))


def batch_state(kernel: Any) -> batch.BatchState:
    """The kernel's memory between steps (an exec right after a failed build reports 127)."""
    state = getattr(kernel, "_batch_state", None)
    if state is None:
        state = kernel._batch_state = batch.BatchState()
    return state


async def run_step(kernel: Any, step: str, spec: str) -> int:
    """Resolve and run one batch step in the kernel's working folder; its exit code."""
    cwd = os.getcwd()
    state = batch_state(kernel)
    plan = state.plan(kernel_language(kernel), step, spec, cwd, getattr(kernel, "batch_heuristics", None))
    if plan.command is None:
        if plan.message:
            kernel.stream("stderr", f"%{step}: {plan.message}\n")
        exit_code = plan.exit_code
    else:
        env = {**kernel.child_env(), **plan.env}
        with _interrupts_reach_the_step(kernel):
            result = await kernel.run_program(["/bin/sh", "-c", plan.command], cwd=cwd, env=env)
        exit_code = result.exit_code
    state.record(step, exit_code)
    return exit_code


@contextlib.contextmanager
def _interrupts_reach_the_step(kernel: Any) -> Iterator[None]:
    """While the step runs, an interrupt stops the step's tree (the base kernel's behaviour).

    A persistent-interpreter recipe overrides ``interrupt_cell`` to interrupt its
    interpreter, which is idle during a batch step and must keep its state; the
    step's child is ``kernel.current_child``, which the base implementation signals
    (SIGINT, then SIGKILL to the tree after ``interrupt_grace``).
    """
    kernel.interrupt_cell = BackendKernel.interrupt_cell.__get__(kernel)
    try:
        yield
    finally:
        del kernel.interrupt_cell


def _handler(step: str) -> Any:
    async def handle(kernel: Any, argument: str) -> int:
        return await run_step(kernel, step, argument)

    return handle


_HELP = {
    "clean": "%clean [CMD|*] runs a clean command in the working folder (* = make clean when there is a Makefile).",
    "build": "%build [CMD|*] builds the project in the working folder (* = make, or the language's heuristic).",
    "exec": "%exec [CMD|*] runs the program (* = the language's heuristic; 127 after a failed build); "
            "it sees _BACKEND_BATCH_MODE=1.",
}

for _step in batch.STEPS:
    register_magic(_step, _handler(_step), _HELP[_step])
