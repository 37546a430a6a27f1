"""The agent client: the runner's operations and result shape (issue 8)."""

from __future__ import annotations

import asyncio

import pytest

from backend_kernel_provisioner.agent import AgentError, AgentKernel
from backend_kernel_provisioner.agent.console import ConsoleBuffer, cut_utf8
from backend_kernel_provisioner.agent.kernel import KERNEL_LOST_EXIT_CODE


def test_console_merges_streams_of_one_kind() -> None:
    console = ConsoleBuffer(1000)
    console.add_stream("stdout", "a")
    console.add_stream("stdout", "b")
    console.add_stream("stderr", "c")
    console.add_display({"image/png": "iVBOR", "text/plain": "<Figure>"})
    console.add_stream("stdout", "d")
    assert console.take() == [["stdout", "ab"], ["stderr", "c"], ["media", ["image/png", "iVBOR"]], ["stdout", "d"]]
    assert console.take() == []


def test_records_cut_on_character_boundaries() -> None:
    text = "é" * 10  # 2 bytes each
    cut = cut_utf8(text, 5)
    assert cut.startswith("éé\n") and "\ufffd" not in cut
    assert "[output truncated: 16 bytes dropped]" in cut
    console = ConsoleBuffer(7)
    for ch in "日本語テキスト":  # 3-byte characters arriving one chunk at a time
        console.add_stream("stdout", ch)
    (kind, merged), = console.take()
    assert merged.startswith("日本\n") and "\ufffd" not in merged


@pytest.mark.kernel
async def test_python_query_input_continue_and_timeout() -> None:
    async with await AgentKernel.start("python") as kernel:
        result = await kernel.execute("r1", "query", "import sys\nprint('out')\nprint('err', file=sys.stderr)")
        assert result["status"] == "finished" and result["exitCode"] == 0
        assert result["console"] == [["stdout", "out\n"], ["stderr", "err\n"]]

        waiting = await kernel.execute("r2", "query", "answer = input('name? ')\nprint('got', answer)")
        assert waiting["status"] == "waiting-input"
        assert waiting["options"] == {"is_password": False}
        done = await kernel.execute("r2", "input", "bob")
        assert done["status"] == "finished" and done["console"] == [["stdout", "got bob\n"]]

        slow = "import time\nfor i in range(4):\n    print(i, flush=True)\n    time.sleep(0.5)"
        first = await kernel.execute("r3", "query", slow, flush_timeout=0.6)
        assert first["status"] == "continued"
        rest = await kernel.execute("r3", "continue", "", flush_timeout=10)
        assert rest["status"] == "finished"
        printed = "".join(text for kind, text in first["console"] + rest["console"] if kind == "stdout")
        assert printed == "0\n1\n2\n3\n"

        timed_out = await kernel.execute("r4", "query", "import time; time.sleep(60)", exec_timeout=1)
        assert timed_out["status"] == "exec-timeout"
        after = await kernel.execute("r5", "query", "raise SystemExit(4)")
        assert after["status"] == "finished" and after["exitCode"] == 4

        assert "import" in await kernel.complete("impo")
        status = await kernel.check_status()
        assert status["alive"] is True and status["started_at"] > 0

        with pytest.raises(AgentError):
            await kernel.execute("nope", "continue", "")


@pytest.mark.kernel
async def test_oom_notice_names_a_vanished_process(tmp_path) -> None:
    async with await AgentKernel.start("python", process_monitor_interval=0.2) as kernel:
        started = await kernel.execute(
            "r1", "query", "import subprocess\np = subprocess.Popen(['sleep', '300'])\nprint(p.pid)"
        )
        pid = int(started["console"][0][1])
        monitor = kernel.provisioner.process_monitor
        while not any(pid in table for table in monitor.snapshots):
            await asyncio.sleep(0.1)
        await kernel.execute("r2", "query", "p.kill(); p.wait()")
        report = kernel.notify_event({"type": "oom"})
        victim = next(entry for entry in report if entry["pid"] == pid)
        assert victim["cmdline"] == "sleep 300"
        assert victim["parents"][0]["pid"] == kernel.provisioner.pid
        assert kernel.notify_event({"type": "other"}) == []


@pytest.mark.kernel
async def test_kernel_death_is_an_event_and_restart_recovers() -> None:
    async with await AgentKernel.start("python") as kernel:
        events = kernel.events()
        # flush_timeout=0 answers before the liveness watch (once a second) can see the death,
        # so the run is deterministically still open when the kernel goes.
        dying = await kernel.execute("r1", "query", "import os; os._exit(7)", flush_timeout=0)
        assert (dying["status"], dying["exitCode"]) == ("continued", None)

        async def first_death() -> dict:
            async for event in events:
                if event["event"] == "kernel-died":
                    return event
            raise AssertionError("the event stream ended without a kernel-died event")

        died = await asyncio.wait_for(first_death(), 30)
        assert died["key"] == "kernel"
        # The dead kernel never replies: the agent abandons the run and reports the runner's
        # "kernel lost" exit code (-1), not the 7 the process exited with, which nothing reports.
        lost = await kernel.execute("r1", "continue", "", flush_timeout=10)
        assert KERNEL_LOST_EXIT_CODE == -1
        assert (lost["runId"], lost["status"], lost["exitCode"]) == ("r1", "finished", KERNEL_LOST_EXIT_CODE)
        assert lost["console"] == [["stderr", "the kernel stopped before the run finished\n"]]
        assert (await kernel.check_status())["running_run"] is None
        await kernel.restart()
        result = await kernel.execute("r2", "query", "print('back')")
        # the restarted kernel's first cell says how the previous one ended (issue 20), once
        notice, back = result["console"]
        assert notice[0] == "stderr" and "died: exited with code 7" in notice[1] and back == ["stdout", "back\n"]
        again = await kernel.execute("r3", "query", "print('again')")
        assert again["console"] == [["stdout", "again\n"]]


def test_an_updated_display_replaces_its_item_until_the_agent_takes_it() -> None:
    """``update_display_data`` (a progress display, an R figure drawn further) is one item, not a second one."""
    console = ConsoleBuffer(1000)
    console.add_stream("stdout", "a\n")
    console.add_display({"text/plain": "plain"})
    console.add_display({"text/html": "<b>1</b>"}, "d1")
    console.add_stream("stdout", "b\n")
    console.add_display({"text/html": "<b>2</b>"}, "d1", update=True)
    assert console.take() == [["stdout", "a\nplain\n"], ["html", "<b>2</b>"], ["stdout", "b\n"]]
    console.add_display({"image/png": "AAAA"}, "d1", update=True)  # taken already: a new item
    assert console.take() == [["media", ["image/png", "AAAA"]]]
