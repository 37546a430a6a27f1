"""Starting kernels by name, timing round trips, and the idle memory of a kernel."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from jupyter_client.manager import AsyncKernelManager
from measure import tree_rss


@contextlib.asynccontextmanager
async def kernel(name: str, **start_kwargs) -> AsyncIterator[tuple[AsyncKernelManager, object]]:
    km = AsyncKernelManager(kernel_name=name)
    await km.start_kernel(**start_kwargs)
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=120)
        yield km, kc
    finally:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)


async def start_to_info(name: str) -> float:
    """start_kernel() → first kernel_info reply, in seconds; then shut down (not timed)."""
    km = AsyncKernelManager(kernel_name=name)
    start = time.perf_counter()
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=120)
        return time.perf_counter() - start
    finally:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)


async def round_trip(kc, code: str, timeout: float = 300) -> float:
    """One execute_request → execute_reply with outputs drained, in seconds."""
    start = time.perf_counter()
    reply = await kc.execute_interactive(code, timeout=timeout, output_hook=lambda msg: None)
    elapsed = time.perf_counter() - start
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"cell failed: {reply['content']}")
    return elapsed


async def idle_rss(name: str) -> float:
    async with kernel(name) as (km, kc):
        await round_trip(kc, _TRIVIAL.get(name, ""))
        await asyncio.sleep(1.0)
        return float(tree_rss(km.provisioner.pid))


_TRIVIAL = {"python3": "1", "backend-python": "1", "bash": "true", "backend-nodejs": "1",
            "backend-c": "int main(void) { return 0; }"}
