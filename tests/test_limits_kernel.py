"""Inside the kernel (issue 20): a cell told what the kernel's limits did to it, ``%limits``, and the
previous launch's death shown once.

Real kernels through jupyter_client, in a real cgroup with real limits: a C program
that touches 400 MB under a 128 MiB limit is OOM-killed by the machine's kernel, a
fork loop meets ``pids.max``. Tests that need a cgroup skip, with the reason, where
none can be made (no memory controller mounted, not root).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from backend_kernel_provisioner.common.cgroups import detect_layout
from backend_kernel_provisioner.common.kernel_cgroups import KernelCgroups
from backend_kernel_provisioner.common.resource_limits import PREVIOUS_DEATH_ENV, Limits
from backend_kernel_provisioner.kernels.limits_magic import NO_CGROUP, limits_text
from backend_kernel_provisioner.kernels.process import ChildProcess
from backend_kernel_provisioner.kernels.resource_report import ResourceWatch, read_oom_records
from tests.helpers import require_programs, run_cell, run_cell_messages, running_kernel

#: Touches every page of 400 MB: under a 128 MiB limit the OOM killer ends it (no swap here).
C_HOG = ('#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n'
         'int main(void) { size_t n = (size_t)400 << 20; char *p = malloc(n);\n'
         '  if (!p) { puts("malloc failed"); return 2; }\n'
         '  memset(p, 1, n); printf("survived %d\\n", p[n - 1]); return 0; }\n')
#: Forks sleeping children until fork() fails, then kills them and exits 1 (a contained fork bomb).
C_FORKER = ('#include <stdio.h>\n#include <signal.h>\n#include <unistd.h>\n#include <sys/wait.h>\n'
            'int main(void) { pid_t kids[4096]; int n = 0;\n'
            '  for (; n < 4096; n++) { pid_t p = fork(); if (p < 0) { perror("fork"); break; }\n'
            '    if (p == 0) { sleep(120); _exit(0); } kids[n] = p; }\n'
            '  printf("started %d children\\n", n); fflush(stdout);\n'
            '  for (int i = 0; i < n; i++) kill(kids[i], SIGKILL);\n'
            '  for (int i = 0; i < n; i++) waitpid(kids[i], 0, 0);\n'
            '  return n < 4096 ? 1 : 0; }\n')
HELLO_C = '#include <stdio.h>\n// {tag}\nint main(void) {{ puts("hello again"); return 0; }}\n'


def require_cgroups() -> None:
    """Skip, naming the reason, where this machine (or this user) cannot make a kernel's cgroup."""
    if detect_layout() is None:
        pytest.skip("no cgroup hierarchy with a memory controller is mounted on this machine")
    tree = None
    try:
        tree = KernelCgroups.for_kernel(f"probe-{uuid.uuid4().hex[:8]}")
        tree.kernel(Limits.of("64M", None, 16))
    except OSError as exc:
        pytest.skip(f"cannot make a cgroup here (run as root?): {exc}")
    finally:
        if tree is not None:
            tree.remove()


@contextlib.asynccontextmanager
async def limited_kernel(name: str, *, memory: str = "128M", pids: int = 0, **kwargs) -> AsyncIterator[tuple]:
    """A kernel the provisioner starts in its own cgroup with these limits."""
    require_cgroups()
    async with running_kernel(name, memory_limit=memory, pids_limit=pids, **kwargs) as (km, kc):
        yield km, kc


@pytest.mark.kernel
async def test_c_program_killed_for_memory_is_named_and_the_cache_survives(tmp_path: Path) -> None:
    require_programs("gcc")
    log = tmp_path / "compiler.log"
    wrapper = tmp_path / "logging-gcc"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> "{log}"\nexec gcc "$@"\n')
    wrapper.chmod(0o755)
    hello = HELLO_C.format(tag=uuid.uuid4())

    def compiles() -> int:
        return sum("main.c" in line for line in log.read_text().splitlines()) if log.exists() else 0

    async with limited_kernel("backend-c", kernel_options={"compiler": str(wrapper)}) as (_, kc):
        assert (await run_cell(kc, hello))["stdout"] == "hello again\n"
        hog = await run_cell(kc, C_HOG, timeout=120)
        reply = hog["reply"]
        assert reply["status"] == "error", hog
        assert reply["ename"] == "OutOfMemory"
        assert reply["evalue"].startswith("killed: out of memory — ./main (pid "), reply["evalue"]
        assert "limit 128 MiB" in reply["evalue"] and "peak " in reply["evalue"]
        assert reply["exit_code"] == 137
        assert [e["ename"] for e in hog["errors"]] == ["OutOfMemory"], "the user sees the error"
        assert "survived" not in hog["stdout"]
        assert compiles() == 2

        again = await run_cell(kc, hello)
        assert again["reply"]["status"] == "ok" and again["stdout"] == "hello again\n"
        assert compiles() == 2, "the kernel's compile cache is kept: the unchanged cell is not compiled again"


@pytest.mark.kernel
async def test_python_subprocess_killed_for_memory_keeps_the_variables() -> None:
    async with limited_kernel("backend-python") as (_, kc):
        assert (await run_cell(kc, "kept = 41"))["reply"]["status"] == "ok"
        cell = ("import subprocess, sys\n"
                "done = subprocess.run([sys.executable, '-c', 'b = b\"x\" * (400 << 20)'])\n"
                "print('returncode', done.returncode)\n")
        hog = await run_cell(kc, cell, timeout=120)
        assert hog["stdout"] == "returncode -9\n", "the subprocess was killed, the kernel was not"
        reply = hog["reply"]
        assert reply["status"] == "error" and reply["ename"] == "OutOfMemory", hog
        assert reply["evalue"].startswith("killed: out of memory — "), reply["evalue"]
        assert "limit 128 MiB" in reply["evalue"]
        assert reply["exit_code"] == 137
        assert [e["ename"] for e in hog["errors"]] == ["OutOfMemory"]
        if any(memcg for memcg, _, _ in read_oom_records()):  # root reads the kernel log: the victim is named
            assert re.search(r"— python[\w.]* \(pid \d+\) —", reply["evalue"]), reply["evalue"]

        after = await run_cell(kc, "print(kept + 1)")
        assert after["reply"]["status"] == "ok" and after["stdout"] == "42\n"


@pytest.mark.kernel
async def test_session_interpreter_killed_for_memory_is_told_and_restarted() -> None:
    require_programs("lua")
    async with limited_kernel("backend-lua") as (_, kc):
        hog = await run_cell(kc, 'big = string.rep("x", 400 * 1024 * 1024)\nprint(#big)', timeout=120)
        reply = hog["reply"]
        assert reply["status"] == "error" and reply["ename"] == "OutOfMemory", hog
        assert re.search(r"— the session's interpreter lua[\d.]* \(pid \d+\) — limit 128 MiB", reply["evalue"]), \
            reply["evalue"]
        assert "session restarted, state lost" in "\n".join(reply["traceback"])
        after = await run_cell(kc, "print(6 * 7)")
        assert after["reply"]["status"] == "ok" and after["stdout"] == "42\n"


@pytest.mark.kernel
async def test_process_limit_stops_a_fork_loop_with_a_clear_error() -> None:
    require_programs("gcc")
    async with limited_kernel("backend-c", pids=64) as (_, kc):
        forks = await run_cell(kc, C_FORKER, timeout=120)
        reply = forks["reply"]
        assert "started" in forks["stdout"] and "fork: Resource temporarily unavailable" in forks["stderr"]
        assert reply["status"] == "error" and reply["ename"] == "ProcessLimit", forks
        assert re.fullmatch(r"\d+ process starts? refused: the kernel's process limit \(pids_limit 64\) was reached",
                            reply["evalue"]), reply["evalue"]
        assert reply["exit_code"] == 1, "the program's own exit code is kept"
        after = await run_cell(kc, HELLO_C.format(tag="after"))
        assert after["reply"]["status"] == "ok" and after["stdout"] == "hello again\n"


@pytest.mark.kernel
@pytest.mark.parametrize("kernel", ["backend-c", "backend-python"])
async def test_limits_magic_shows_the_limits_and_the_use(kernel: str) -> None:
    if kernel == "backend-c":
        require_programs("gcc")
    async with limited_kernel(kernel, pids=64) as (_, kc):
        out = await run_cell(kc, "%limits")
        assert out["reply"]["status"] == "ok", out
        text = out["stdout"]
        memory = re.search(r"^memory: ([\d.]+) (B|KiB|MiB|GiB) used, peak [\d.]+ \w+, limit 128 MiB$", text, re.M)
        assert memory and float(memory[1]) > 0, text
        assert re.search(r"^cpu: [\d.]+ s used, no limit$", text, re.M), text
        assert re.search(r"^processes: \d+ now, limit 64$", text, re.M), text
        assert "out-of-memory kills: 0" in text and "refused process starts: 0" in text
        assert "MEM_LIMIT=134217728" in text
        listed = await run_cell(kc, "%lsmagic")  # ours print, IPython's returns a value
        shown = listed["stdout"] + "".join(d["data"].get("text/plain", "") for d in listed["displays"])
        assert re.search(r"%limits\b", shown), shown


def test_limits_text_without_a_cgroup() -> None:
    assert limits_text(None, {}) == NO_CGROUP + "\n"
    assert limits_text(None, {"MEM_LIMIT": "1024"}) == f"{NO_CGROUP}\nMEM_LIMIT=1024\n"


@pytest.mark.kernel
@pytest.mark.parametrize("kernel", ["backend-c", "backend-python"])
async def test_previous_death_is_told_once_and_not_inherited(kernel: str) -> None:
    death = f"the previous launch of this kernel was killed: out of memory ({uuid.uuid4().hex[:6]})"
    if kernel == "backend-c":
        require_programs("gcc")
        cell = ('#include <stdio.h>\n#include <stdlib.h>\n'
                f'int main(void) {{ const char *v = getenv("{PREVIOUS_DEATH_ENV}"); puts(v ? v : "unset"); }}\n')
    else:
        cell = (f"import os, subprocess\nprint(os.environ.get('{PREVIOUS_DEATH_ENV}', 'unset'))\n"
                f"print(subprocess.run(['sh', '-c', 'echo ${{{PREVIOUS_DEATH_ENV}:-unset}}'], capture_output=True, "
                "text=True).stdout, end='')\n")
    async with running_kernel(kernel, env={PREVIOUS_DEATH_ENV: death}) as (_, kc):
        reply, messages = await run_cell_messages(kc, cell)
        assert reply["status"] == "ok", messages
        streams = [(m["name"], m["text"]) for kind, m in messages if kind == "stream"]
        assert streams[0] == ("stderr", f"[{death}]\n"), "the death is told first, on stderr"
        assert death not in "".join(text for name, text in streams[1:])
        assert "".join(text for name, text in streams if name == "stdout").split() == ["unset"] * (
            1 if kernel == "backend-c" else 2), "no cell program inherits the variable"
        second = await run_cell(kc, cell)
        assert death not in second["stderr"] + second["stdout"], "told once"


def test_kernel_log_records_name_the_victims(tmp_path: Path) -> None:
    log = tmp_path / "kmsg"
    log.write_text(
        "6,2150,25536079479,-;podman0: port 1(veth0) entered blocking state\n"
        "4,2201,41653219293,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,"
        "oom_memcg=/bkp-1-2-k/kernel,task_memcg=/bkp-1-2-k/kernel,task=main,pid=6038,uid=0\n"
        "3,2202,41653219313,-;Memory cgroup out of memory: Killed process 6038 (main) total-vm:426156kB\n")
    assert read_oom_records(str(log)) == [("/bkp-1-2-k/kernel", "main", 6038)]
    assert read_oom_records(str(tmp_path / "missing")) == []


async def test_without_the_kernel_log_the_program_killed_by_sigkill_is_named(tmp_path: Path) -> None:
    """Where the kernel log cannot be read (not root, a container), the kernel still names the program it ran
    that died by SIGKILL; a victim the log names but the kernel did not start is named by its command."""
    require_cgroups()
    tree = KernelCgroups.for_kernel(f"watch-{uuid.uuid4().hex[:8]}")
    try:
        watch = ResourceWatch(tree.kernel(Limits.of("64M")), work_dir=str(tmp_path))
        watch.cell_started(None)
        program = tmp_path / "build" / "main"
        program.parent.mkdir()
        shutil.copy("/bin/sleep", program)
        child = await ChildProcess.start([str(program), "30"])
        watch.program_started(str(program), child)
        child.kill_tree()
        await child.proc.wait()
        expected = f"killed: out of memory — ./main (pid {child.pid}) — limit 64 MiB, peak "
        assert watch.describe_oom([]).startswith(expected)
        assert watch.describe_oom([("main", child.pid)]).startswith(expected)
        assert watch.describe_oom([("python3", 99)]).startswith("killed: out of memory — python3 (pid 99) — ")
    finally:
        tree.remove()
