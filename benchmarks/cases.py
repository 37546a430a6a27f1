"""Each benchmark: ours and its baseline, measured side by side in this run."""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass

from containers import container_lifecycle
from introspection import completion_beside_cell
from jupyter_client.manager import AsyncKernelManager
from kernels import idle_rss, kernel, round_trip, start_to_info
from lifecycle import shutdown_restart
from measure import Samples, sample, tree_rss
from remote import remote_lifecycle
from report import Row
from service_cases import health_transition, service_readiness


@dataclass
class Settings:
    repeats: int
    scale_kernels: int
    stream_mb: int
    #: Rounds of remote start/restart/shutdown per variant (a stock round takes about a minute).
    remote_rounds: int = 5
    #: Lives (start, cell, restart, cell, shutdown) of every kernel, interleaved with ipykernel's.
    lifecycle_rounds: int = 20


C_HELLO = '#include <stdio.h>\nint main(void) {{ puts("hello {tag}"); return 0; }}\n'
C_STREAM = (
    "#include <stdio.h>\n#include <string.h>\n"
    "int main(void) {{ static char line[1025]; memset(line, 'x', 1023); line[1023] = '\\n';"
    " for (int i = 0; i < {lines}; i++) fputs(line, stdout); return 0; }}\n"
)


async def kernel_start(s: Settings) -> list[Row]:
    ours = await sample(lambda: start_to_info("backend-python"), s.repeats)
    base = await sample(lambda: start_to_info("python3"), s.repeats)
    return [Row("kernel start (start_kernel → kernel_info reply)", "backend-python", "python3 + LocalProvisioner",
                ours, base, "the provisioner adds only environment building; the rest is ipykernel's import time")]


async def own_kernel_start(s: Settings) -> list[Row]:
    rows = []
    ipy = await sample(lambda: start_to_info("python3"), s.repeats)
    bash = await sample(lambda: start_to_info("bash"), s.repeats)
    for name in ("backend-c", "backend-nodejs"):
        ours = await sample(lambda name=name: start_to_info(name), s.repeats)
        rows.append(Row(f"our kernel's own start ({name})", name, "ipykernel (python3)", ours, ipy,
                        "ipykernel's import time is the floor; the interpreter starts after kernel_info"))
        rows.append(Row(f"our kernel's own start ({name})", name, "bash_kernel", ours, bash, ""))
    return rows


def _plain_c_run(source: str) -> float:
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "main.c")
        with open(path, "w") as fh:
            fh.write(source)
        start = time.perf_counter()
        subprocess.run(["gcc", "-Wall", path, "-o", os.path.join(folder, "main")], check=True)
        subprocess.run([os.path.join(folder, "main")], check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - start


async def c_cells(s: Settings) -> list[Row]:
    async with kernel("backend-c") as (_, kc):
        first = await sample(lambda: round_trip(kc, C_HELLO.format(tag=uuid.uuid4().hex)), s.repeats)
        fixed = C_HELLO.format(tag="cached")
        await round_trip(kc, fixed)
        rerun = await sample(lambda: round_trip(kc, fixed), s.repeats)
    plain = await sample(lambda: asyncio.to_thread(_plain_c_run, C_HELLO.format(tag=uuid.uuid4().hex)), s.repeats)
    return [
        Row("C hello-world cell, first run", "backend-c cell round trip", "gcc + run as plain processes",
            first, plain,
            "the kernel's own part is hashing, the build folder and manifest, and the messaging (target: under 10 ms)"),
        Row("C cell, unchanged re-run", "backend-c cell round trip (cached)", "the first run", rerun, first,
            "the floor is one exec and a cell round trip; starting without the stdin watcher would take the rest"),
    ]


def _time_process(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


async def small_cells(s: Settings) -> list[Row]:
    rows = []
    recipes = [("backend-nodejs", "console.log(1)", ["node", "-e", "console.log(1)"]),
               ("backend-lua", "print(1)", ["lua5.4", "-e", "print(1)"])]
    async with kernel("python3") as (_, ipy_kc):
        ipy = await sample(lambda: round_trip(ipy_kc, "1"), s.repeats * 5)
    async with kernel("bash") as (_, bash_kc):
        bash = await sample(lambda: round_trip(bash_kc, "true"), s.repeats * 5)
    for name, cell, argv in recipes:
        async with kernel(name) as (_, kc):
            await round_trip(kc, cell)
            ours = await sample(lambda kc=kc, cell=cell: round_trip(kc, cell), s.repeats * 5)
        per_process = await sample(lambda argv=argv: asyncio.to_thread(_time_process, argv), s.repeats * 5)
        label = f"{name} small cell (persistent session)"
        rows.append(Row(label, name, f"one `{argv[0]} -e` process per cell", ours, per_process,
                        "the cell's end marker arrives on a side channel; the floor is one pipe round trip"))
        rows.append(Row(label, name, "ipykernel trivial cell", ours, ipy, ""))
        rows.append(Row(label, name, "bash_kernel trivial cell", ours, bash, ""))
    return rows


async def streamed_output(s: Settings) -> list[Row]:
    lines = s.stream_mb * 1024
    source = C_STREAM.format(lines=lines)
    with tempfile.TemporaryDirectory() as folder:
        src = os.path.join(folder, "stream.c")
        with open(src, "w") as fh:
            fh.write(source)
        binary = os.path.join(folder, "stream")
        await asyncio.to_thread(subprocess.run, ["gcc", "-O2", src, "-o", binary], check=True)

        def to_devnull() -> float:
            start = time.perf_counter()
            subprocess.run([binary], check=True, stdout=subprocess.DEVNULL)
            return time.perf_counter() - start

        def to_pipe() -> float:  # the floor of any reader: the program writing into a pipe, read by cat
            start = time.perf_counter()
            subprocess.run(f"{binary} | cat > /dev/null", shell=True, check=True)
            return time.perf_counter() - start

        base = await sample(lambda: asyncio.to_thread(to_devnull), s.repeats)
        piped = await sample(lambda: asyncio.to_thread(to_pipe), s.repeats)
    async with kernel("backend-c") as (_, kc):
        await round_trip(kc, source)  # compile once; the rows time the streaming
        ours = await sample(lambda: round_trip(kc, source), s.repeats)
    label = f"streamed output ({s.stream_mb} MB printed by a C program)"
    return [Row(label, "backend-c cell round trip", "the same program writing to /dev/null", ours, base,
                "the kernel caps what reaches the frontend and splices the rest to /dev/null; the floor is the "
                "program's writes into a pipe"),
            Row(label, "backend-c cell round trip", "the same program into a pipe read by `cat`", ours, piped, "")]


async def scale(s: Settings) -> list[Row]:
    n = s.scale_kernels

    async def one(name: str) -> None:
        km = AsyncKernelManager(kernel_name=name)
        await km.start_kernel()
        kc = km.client()
        kc.start_channels()
        await kc.wait_for_ready(timeout=300)
        kc.stop_channels()
        await km.shutdown_kernel(now=True)

    async def start_ready() -> tuple[AsyncKernelManager, object]:
        """Start a kernel and wait for kernel_info; once more, on fresh ports, if it lost jupyter_client's
        free-port race (a port picked free, then taken by another socket before the kernel bound it; a
        restart would keep the same ports)."""
        for attempt in range(3):
            if attempt:
                concurrent.port_races += 1  # type: ignore[attr-defined]
            km = AsyncKernelManager(kernel_name="backend-python")
            await km.start_kernel()
            kc = km.client()
            kc.start_channels()
            try:
                await kc.wait_for_ready(timeout=600)
                return km, kc
            except RuntimeError:
                kc.stop_channels()
                await km.shutdown_kernel(now=True)
        raise RuntimeError("a kernel died three times while starting")

    async def concurrent() -> float:
        start = time.perf_counter()
        started = await asyncio.gather(*(start_ready() for _ in range(n)))
        managers = [km for km, _ in started]
        peak = sum(tree_rss(km.provisioner.pid) for km in managers)
        for _, kc in started:
            kc.stop_channels()
        await asyncio.gather(*(km.shutdown_kernel(now=True) for km in managers))
        concurrent.peak_per_kernel = peak / n  # type: ignore[attr-defined]
        return time.perf_counter() - start

    async def sequential() -> float:
        start = time.perf_counter()
        for _ in range(n):
            await one("backend-python")
        return time.perf_counter() - start

    concurrent.port_races = 0  # type: ignore[attr-defined]
    ours = await sample(concurrent, 1)
    base = await sample(sequential, 1)
    races = concurrent.port_races  # type: ignore[attr-defined]
    peak = Samples([concurrent.peak_per_kernel], unit="B")  # type: ignore[attr-defined]
    single = Samples([await idle_rss("backend-python")], unit="B")
    return [
        Row(f"scale: {n} kernels started concurrently, then shut down", f"{n} × backend-python at once",
            f"one kernel × {n} sequentially", ours, base,
            "two cores bound the speed-up; ipykernel's import time dominates each start"
            + (f" ({races} kernel(s) lost jupyter_client's free-port race and were restarted)" if races else "")),
        Row(f"scale: peak memory per kernel ({n} running)", "RSS per kernel tree", "one idle kernel alone",
            peak, single, "shared pages are counted once per kernel here (RSS, not PSS)"),
    ]


async def memory(s: Settings) -> list[Row]:
    rows = []
    ipy = Samples([await idle_rss("python3")], unit="B")
    bash = Samples([await idle_rss("bash")], unit="B")
    for name in ("backend-c", "backend-nodejs"):
        ours = Samples([await idle_rss(name)], unit="B")
        rows.append(Row(f"memory: idle RSS of {name}'s process tree", name, "ipykernel idle", ours, ipy,
                        "our kernels are ipykernel-based: the floor is ipykernel plus the interpreter session"))
        rows.append(Row(f"memory: idle RSS of {name}'s process tree", name, "bash_kernel idle", ours, bash, ""))
    return rows


ALL = [kernel_start, own_kernel_start, c_cells, small_cells, streamed_output, service_readiness,
       health_transition, scale, memory, completion_beside_cell, shutdown_restart, remote_lifecycle,
       container_lifecycle]
