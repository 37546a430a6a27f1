"""The faster paths a cell's program takes (issue 21), checked for what they must keep.

* Output past the cell's limit is spliced to /dev/null (kernels/discard.py): the program still
  runs to its end with exit code 0 (no SIGPIPE, no pipe left full), and only the limit is shown.
* A cell's program is started without a Python callback between fork and exec (vfork) when the
  launch is tracked: it still gets default SIGINT and SIGPIPE, its own session, and it is still
  inside the kernel's cgroup.
* The kernel joins its cgroup through a ``/bin/sh`` prefix, not a ``preexec_fn``.
"""

from __future__ import annotations

import asyncio
import os
import signal

from backend_kernel_provisioner.common.cgroups import joining_argv
from backend_kernel_provisioner.common.childproc import spawn
from backend_kernel_provisioner.kernels import process
from backend_kernel_provisioner.kernels.discard import discard_rest
from backend_kernel_provisioner.kernels.process import (
    ChildProcess,
    OutputRelay,
    cell_death_signal,
    find_program,
    run_child,
)

FLOOD = 30 * 1024 * 1024


async def test_a_flood_past_the_limit_runs_to_its_end_and_shows_only_the_limit(monkeypatch) -> None:
    spliced: list[int] = []

    async def counting(pipe):
        spliced.append(await discard_rest(pipe))
        return spliced[-1]

    monkeypatch.setattr(process, "discard_rest", counting)
    shown: list[str] = []
    relay = OutputRelay(lambda _name, text: shown.append(text), limit=4096)
    argv = ["/bin/sh", "-c", f"head -c {FLOOD} /dev/zero | tr '\\0' x; echo finished > done.txt"]
    child = await ChildProcess.start(argv, cwd=os.getcwd(), death_signal=None)
    try:
        result = await run_child(child, relay)
    finally:
        finished = os.path.exists("done.txt")
        if finished:
            os.remove("done.txt")
    assert result.returncode == 0, "the writer must not see a closed pipe"
    assert result.truncated
    assert finished, "the program went on after its flood"
    text = "".join(shown)
    assert text.count("x") == 4096
    assert "output truncated" in text
    assert relay.total == 4096
    assert len(spliced) == 1, "the rest went to /dev/null inside the kernel"
    # What asyncio's reader had buffered when the cut came (at most its 256 KiB read size) is dropped with it.
    accounted = spliced[0] + relay.total + relay.discarded
    assert FLOOD - 256 * 1024 <= accounted <= FLOOD, "nearly every byte went through splice, not Python"


async def test_a_program_under_the_limit_is_relayed_whole() -> None:
    shown: list[str] = []
    relay = OutputRelay(lambda _name, text: shown.append(text), limit=1_000_000)
    child = await ChildProcess.start(["/bin/sh", "-c", "seq 1 20000"], cwd=os.getcwd(), death_signal=None)
    result = await run_child(child, relay)
    assert result.returncode == 0 and not result.truncated
    assert "".join(shown).split() == [str(n) for n in range(1, 20001)]


async def test_a_fast_child_has_default_signals_and_its_own_session(monkeypatch) -> None:
    # Python ignores SIGPIPE, and our kernels catch SIGINT: a vforked child must see both at their default.
    previous = signal.signal(signal.SIGINT, lambda *_: None)
    try:
        proc = await spawn(["/bin/sh", "-c", "grep -E '^(SigIgn|SigCgt)' /proc/self/status; ps -o sid= -p $$"],
                           death_signal=None)
        out, _ = await proc.communicate()
    finally:
        signal.signal(signal.SIGINT, previous)
    fields = dict(line.split(":\t") for line in out.decode().splitlines()[:2])
    ignored = int(fields["SigIgn"], 16)
    assert not ignored & (1 << (signal.SIGINT - 1)), "SIGINT must not be ignored"
    assert not ignored & (1 << (signal.SIGPIPE - 1)), "SIGPIPE must not be ignored"
    assert int(out.decode().splitlines()[2]) == proc.pid, "the child leads its own session"


async def test_an_ignored_sigint_still_gets_reset() -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        proc = await spawn(["/bin/sh", "-c", "grep '^SigIgn' /proc/self/status"], death_signal=None)
        out, _ = await proc.communicate()
    finally:
        signal.signal(signal.SIGINT, previous)
    ignored = int(out.decode().split(":\t")[1], 16)
    assert not ignored & (1 << (signal.SIGINT - 1))


def test_cell_programs_keep_the_parent_death_signal_outside_a_tracked_launch(monkeypatch) -> None:
    monkeypatch.delenv("BACKEND_CGROUP", raising=False)
    monkeypatch.delenv("BACKEND_KERNEL_LAUNCH", raising=False)
    assert cell_death_signal() == signal.SIGKILL
    monkeypatch.setenv("BACKEND_KERNEL_LAUNCH", "123-456-abc")
    assert cell_death_signal() is None


async def test_the_join_prefix_runs_the_command_as_the_same_process(tmp_path) -> None:
    procs = tmp_path / "cgroup.procs"
    procs.write_text("")
    argv = joining_argv([str(procs)], ["/bin/sh", "-c", "echo $$"])
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    assert int(out) == proc.pid, "exec keeps the pid the cgroup was joined with"
    assert procs.read_text().strip() == "0", "the shell wrote 0 (itself) before exec"


async def test_a_join_that_fails_names_the_file_and_does_not_run_the_command(tmp_path) -> None:
    missing = tmp_path / "gone" / "cgroup.procs"
    argv = joining_argv([str(missing)], ["/bin/sh", "-c", "echo ran"])
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 125
    assert out == b""
    assert str(missing) in err.decode()


def test_a_found_program_is_remembered_until_it_is_gone(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    for folder in (first, second):
        tool = folder / "bkp-tool"
        tool.write_text("#!/bin/sh\n")
        tool.chmod(0o755)
    path = f"{first}{os.pathsep}{second}"
    assert find_program("bkp-tool", path) == str(first / "bkp-tool")
    (first / "bkp-tool").unlink()
    assert find_program("bkp-tool", path) == str(second / "bkp-tool"), "a vanished program is looked up again"
    (second / "bkp-tool").chmod(0o644)
    assert find_program("bkp-tool", path) is None, "a program no longer executable is not returned"
    assert find_program("bkp-tool", str(first)) is None
